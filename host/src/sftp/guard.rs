//! Guards for a transfer's temporary file: while the file may exist it is recorded in the
//! [`journal`] (so that a crash leaves a trace the next transfer acts on) and registered
//! as active (so that scans for stale leftovers leave it alone); unless the transfer
//! disarms the guard (the file was published, or never created), the file is removed on
//! failure, on cancellation, or in the background when the guard is dropped.
//!
//! [`Tracked`] holds what both sides share; [`RemoteTemp`] removes over SFTP,
//! [`LocalTemp`] from the local file system.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh_sftp::protocol::StatusCode;

use super::SftpChannel;
use super::error::status_code;
use super::journal;
use super::temp::ActiveTemp;

/// What a transfer's driver needs of the guard of its temporary file, remote or local.
pub(super) trait TempGuard {
    /// Removes the temporary file now (on failure or cancellation).
    async fn remove_now(&mut self);
}

/// How long removing a remote temporary file may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A temporary file being tracked: its path, its journal record and its registration.
struct Tracked<P> {
    path: P,
    record: journal::Record,
    _active: ActiveTemp,
}

impl<P> Tracked<P> {
    /// Starts tracking `path` (file name `name`, journal text `shown`, on `target` or
    /// locally), before the file is created.
    fn new(path: P, shown: &str, name: &str, target: Option<&str>) -> Self {
        Tracked {
            _active: ActiveTemp::register(name),
            record: journal::Record::new(target, shown),
            path,
        }
    }

    /// The file is gone: the journal forgets it.
    fn gone(self) {
        self.record.done();
    }

    /// Ends the tracking in `slot`, if any: the file is gone.
    fn end(slot: &mut Option<Self>) {
        if let Some(tracked) = slot.take() {
            tracked.gone();
        }
    }
}

/// A remote temporary file, removed unless disarmed.
pub(super) struct RemoteTemp {
    sftp: Arc<SftpChannel>,
    tracked: Option<Tracked<String>>,
}

impl RemoteTemp {
    pub(super) fn new(sftp: Arc<SftpChannel>) -> Self {
        RemoteTemp {
            sftp,
            tracked: None,
        }
    }

    /// Starts tracking the temporary file `path` (named `name`), before it is created.
    pub(super) fn track(&mut self, path: String, name: &str) {
        let target = self.sftp.target.clone();
        self.tracked = Some(Tracked::new(path.clone(), &path, name, Some(&target)));
    }

    /// The file is gone (published, or never created): stop tracking it.
    pub(super) fn disarm(&mut self) {
        Tracked::end(&mut self.tracked);
    }
}

impl TempGuard for RemoteTemp {
    /// Removes the temporary file now (on failure or cancellation). If it cannot be
    /// removed (the connection failed), the journal keeps it for the next transfer to
    /// this host.
    async fn remove_now(&mut self) {
        let Some(tracked) = self.tracked.take() else {
            return;
        };
        if !self.sftp.is_alive() {
            tracing::info!(path = %tracked.path, "the connection failed; the temporary file will be removed by the next transfer to this host");
            return;
        }
        if remove_remote(&self.sftp, &tracked.path).await {
            tracing::debug!(path = %tracked.path, "removed the temporary file");
            tracked.gone();
        } else {
            tracing::warn!(path = %tracked.path, "could not remove the temporary file; the next transfer to this host will");
        }
    }
}

impl Drop for RemoteTemp {
    fn drop(&mut self) {
        if let Some(tracked) = self.tracked.take() {
            let sftp = self.sftp.clone();
            crate::cleanup::spawn(async move {
                if remove_remote(&sftp, &tracked.path).await {
                    tracked.gone();
                }
            });
        }
    }
}

/// Removes the remote file `path`; true when it is gone (removed, or already missing).
async fn remove_remote(sftp: &SftpChannel, path: &str) -> bool {
    match tokio::time::timeout(REMOVE_TIMEOUT, sftp.raw().remove(path.to_string())).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => status_code(&e) == Some(StatusCode::NoSuchFile),
        Err(_) => false,
    }
}

/// A local temporary file, removed unless disarmed.
#[derive(Default)]
pub(super) struct LocalTemp {
    tracked: Option<Tracked<PathBuf>>,
}

impl LocalTemp {
    /// Starts tracking the temporary file `path` (named `name`), before it is created.
    pub(super) fn track(&mut self, path: PathBuf, name: &str) {
        let shown = path.display().to_string();
        self.tracked = Some(Tracked::new(path, &shown, name, None));
    }

    /// The file is gone (published, or never created): stop tracking it.
    pub(super) fn disarm(&mut self) {
        Tracked::end(&mut self.tracked);
    }
}

impl TempGuard for LocalTemp {
    /// Removes the temporary file now (on failure or cancellation).
    async fn remove_now(&mut self) {
        let Some(tracked) = self.tracked.take() else {
            return;
        };
        match tokio::task::spawn_blocking(move || (remove_local(&tracked.path), tracked)).await {
            Ok((true, tracked)) => tracked.gone(),
            Ok((false, tracked)) => self.tracked = Some(tracked),
            Err(_) => {}
        }
    }
}

impl Drop for LocalTemp {
    fn drop(&mut self) {
        if let Some(tracked) = self.tracked.take()
            && remove_local(&tracked.path)
        {
            tracked.gone();
        }
    }
}

/// Removes the local file `path`; true when it is gone (removed, or already missing).
fn remove_local(path: &std::path::Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}
