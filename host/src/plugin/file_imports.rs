//! The host side of the file capability interfaces: `remote-read`, `remote-write`,
//! `transfer` and `local-read`. Each turns a guest's request into a call on `sftp` or
//! `local` and the outcome back into WIT data. Time spent here counts as host time; a
//! cancelled call stops waiting (a transfer also removes its temporary file).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::bindings::WitError;
use super::bindings::mcpssh::plugin::{local_read, remote_read, remote_write, transfer, types};
use super::state::CallState;
use crate::error::{HostError, HostResult};
use crate::local::{self, LocalPolicy};
use crate::sftp::{self, FileInfo, FileKind, Space, TransferControl, TransferRequest, WriteMode};
use crate::ssh::Connection;

fn wit_kind(kind: FileKind) -> types::FileKind {
    match kind {
        FileKind::File => types::FileKind::File,
        FileKind::Directory => types::FileKind::Directory,
        FileKind::Symlink => types::FileKind::Symlink,
        FileKind::Other => types::FileKind::Other,
    }
}

fn wit_info(info: FileInfo) -> types::FileInfo {
    types::FileInfo {
        name: info.name,
        kind: wit_kind(info.kind),
        size: info.size,
        mode: info.mode,
        modified: info.modified,
        uid: info.uid,
        gid: info.gid,
    }
}

fn wit_space(s: Space) -> types::Space {
    types::Space {
        total: s.total,
        free: s.free,
        available: s.available,
    }
}

impl CallState {
    /// Runs `work` as host time, stopping when the call is cancelled.
    async fn host_work<T>(
        &mut self,
        work: impl Future<Output = HostResult<T>>,
    ) -> Result<T, WitError> {
        let since = Instant::now();
        let cancel = self.call.cancel.clone();
        let result = tokio::select! {
            r = work => r,
            _ = cancel.cancelled() => Err(HostError::Cancelled),
        };
        self.host_time += since.elapsed();
        result.map_err(WitError::from)
    }

    /// Runs `f` with the session's connection and SFTP channel, as host time.
    async fn with_sftp<T, F, Fut>(&mut self, session: Option<String>, f: F) -> Result<T, WitError>
    where
        F: FnOnce(Arc<Connection>, Arc<sftp::SftpChannel>) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        let pool = self.services.pool.clone();
        self.host_work(async move {
            let (conn, channel) = sftp::open_for(&pool, session.as_deref()).await?;
            f(conn, channel).await
        })
        .await
    }

    /// Like [`Self::with_sftp`] for requests that change nothing: when the SFTP channel
    /// turns out to be dead (the connection dropped, or the server's sftp process
    /// ended), it is reopened and the request made once more.
    async fn with_sftp_retry<T, F, Fut>(
        &mut self,
        session: Option<String>,
        f: F,
    ) -> Result<T, WitError>
    where
        F: Fn(Arc<Connection>, Arc<sftp::SftpChannel>) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        let pool = self.services.pool.clone();
        self.host_work(async move {
            let (conn, channel) = sftp::open_for(&pool, session.as_deref()).await?;
            match f(conn, channel.clone()).await {
                Err(HostError::Connection(_)) if !channel.is_alive() => {
                    let (conn, channel) = sftp::open_for(&pool, session.as_deref()).await?;
                    f(conn, channel).await
                }
                other => other,
            }
        })
        .await
    }

    /// Checks the component's grant scope for a request on `session` that touches the
    /// remote `paths` and, when `change` names it, changes something. Remote paths are
    /// resolved on the server (symlinks followed) before they are compared.
    async fn in_scope(
        &mut self,
        change: Option<&str>,
        session: &Option<String>,
        paths: &[&str],
    ) -> Result<(), WitError> {
        let scope = self.scope.clone();
        if let Some(what) = change {
            scope.check_change(what).map_err(WitError::from)?;
        }
        scope
            .check_session(session.as_deref())
            .map_err(WitError::from)?;
        if !scope.limits_remote_paths() || paths.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        self.with_sftp_retry(session.clone(), |_, s| {
            let (paths, scope) = (paths.clone(), scope.clone());
            async move {
                for path in &paths {
                    scope.check_remote(&resolve_for_scope(&s, path).await?)?;
                }
                Ok(())
            }
        })
        .await
    }

    /// The local path policy of the configuration.
    fn local_policy(&self) -> HostResult<LocalPolicy> {
        LocalPolicy::from_settings(&self.services.settings)
    }
}

impl remote_read::Host for CallState {
    async fn stat(
        &mut self,
        session: Option<String>,
        path: String,
        follow: bool,
    ) -> Result<types::FileInfo, WitError> {
        self.in_scope(None, &session, &[&path]).await?;
        let path = &path;
        self.with_sftp_retry(
            session,
            |_, s| async move { sftp::stat(&s, path, follow).await },
        )
        .await
        .map(wit_info)
    }

    async fn list_dir(
        &mut self,
        session: Option<String>,
        path: String,
        limit: u32,
    ) -> Result<(Vec<types::FileInfo>, bool), WitError> {
        self.in_scope(None, &session, &[&path]).await?;
        let path = &path;
        let (entries, more) = self
            .with_sftp_retry(session, |_, s| async move {
                sftp::list_dir(&s, path, limit).await
            })
            .await?;
        Ok((entries.into_iter().map(wit_info).collect(), more))
    }

    async fn disk_space(
        &mut self,
        session: Option<String>,
        path: String,
    ) -> Result<types::Space, WitError> {
        self.in_scope(None, &session, &[&path]).await?;
        let path = &path;
        self.with_sftp_retry(
            session,
            |c, s| async move { sftp::space(&c, &s, path).await },
        )
        .await
        .map(wit_space)
    }

    async fn canonicalize(
        &mut self,
        session: Option<String>,
        path: String,
    ) -> Result<String, WitError> {
        self.in_scope(None, &session, &[&path]).await?;
        let path = &path;
        self.with_sftp_retry(
            session,
            |_, s| async move { sftp::canonicalize(&s, path).await },
        )
        .await
    }
}

impl remote_write::Host for CallState {
    async fn remove_file(&mut self, session: Option<String>, path: String) -> Result<(), WitError> {
        self.in_scope(Some("removing a file"), &session, &[&path])
            .await?;
        self.with_sftp(
            session,
            |_, s| async move { sftp::remove_file(&s, &path).await },
        )
        .await
    }

    async fn make_dir(&mut self, session: Option<String>, path: String) -> Result<(), WitError> {
        self.in_scope(Some("creating a directory"), &session, &[&path])
            .await?;
        self.with_sftp(
            session,
            |_, s| async move { sftp::make_dir(&s, &path).await },
        )
        .await
    }

    async fn rename(
        &mut self,
        session: Option<String>,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<(), WitError> {
        self.in_scope(Some("renaming a file"), &session, &[&source, &destination])
            .await?;
        self.with_sftp(session, |_, s| async move {
            sftp::rename(&s, &source, &destination, overwrite).await
        })
        .await
    }
}

/// Which way a transfer goes.
#[derive(Clone, Copy)]
enum Direction {
    Upload,
    Download,
}

impl CallState {
    async fn transfer(
        &mut self,
        request: transfer::TransferRequest,
        direction: Direction,
    ) -> Result<transfer::TransferReport, WitError> {
        let what = match direction {
            Direction::Upload => "uploading a file",
            Direction::Download => "downloading a file",
        };
        self.in_scope(Some(what), &request.session, &[&request.remote_path])
            .await?;
        let since = Instant::now();
        let result = self.transfer_inner(request, direction).await;
        self.host_time += since.elapsed();
        result.map_err(WitError::from)
    }

    async fn transfer_inner(
        &mut self,
        request: transfer::TransferRequest,
        direction: Direction,
    ) -> HostResult<transfer::TransferReport> {
        let policy = self.local_policy()?;
        let local_path = request.local_path.clone();
        let local = tokio::task::spawn_blocking(move || policy.resolve(&local_path))
            .await
            .map_err(|e| HostError::Other(format!("resolving the local path failed: {e}")))??;
        self.scope.check_local(&local)?;
        let cancel = self.call.cancel.clone();
        let pool = self.services.pool.clone();
        let conn = tokio::select! {
            c = pool.get(request.session.as_deref()) => c?,
            _ = cancel.cancelled() => return Err(HostError::Cancelled),
        };
        let reconnected = conn.take_reconnected();
        let verb = match direction {
            Direction::Upload => "uploaded",
            Direction::Download => "downloaded",
        };
        let progress = self.call.progress.clone().map(|sink| {
            Arc::new(move |done: u64, total: u64| {
                sink(
                    done as f64,
                    Some(total as f64),
                    Some(format!("{verb} {done} of {total} bytes")),
                );
            }) as sftp::TransferProgress
        });
        let control = TransferControl {
            cancel,
            progress,
            stale_age: self.services.settings.stale_temp_age(),
            window: sftp::transfer::DEFAULT_WINDOW,
        };
        let req = TransferRequest {
            local,
            remote: request.remote_path,
            mode: match request.mode {
                transfer::WriteMode::CreateNew => WriteMode::CreateNew,
                transfer::WriteMode::Overwrite => WriteMode::Overwrite,
            },
            max_size: request.max_size,
        };
        let report = match direction {
            Direction::Upload => sftp::upload(conn, req, control).await?,
            Direction::Download => sftp::download(conn, req, control).await?,
        };
        Ok(transfer::TransferReport {
            local_path: report.local_path,
            remote_path: report.remote_path,
            bytes: report.bytes,
            duration_ms: report.duration.as_millis() as u64,
            replaced: report.replaced,
            reconnected,
        })
    }
}

impl transfer::Host for CallState {
    async fn upload(
        &mut self,
        request: transfer::TransferRequest,
    ) -> Result<transfer::TransferReport, WitError> {
        self.transfer(request, Direction::Upload).await
    }

    async fn download(
        &mut self,
        request: transfer::TransferRequest,
    ) -> Result<transfer::TransferReport, WitError> {
        self.transfer(request, Direction::Download).await
    }
}

impl local_read::Host for CallState {
    async fn stat(&mut self, path: String) -> Result<types::FileInfo, WitError> {
        let policy = self.local_policy().map_err(WitError::from)?;
        let scope = self.scope.clone();
        self.host_work(async move {
            blocking(move || {
                let resolved = policy.resolve(&path)?;
                scope.check_local(&resolved)?;
                local::stat(&resolved, &path)
            })
            .await
        })
        .await
        .map(wit_info)
    }

    async fn disk_space(&mut self, path: String) -> Result<types::Space, WitError> {
        let policy = self.local_policy().map_err(WitError::from)?;
        let scope = self.scope.clone();
        self.host_work(async move {
            blocking(move || {
                let resolved = policy.resolve(&path)?;
                scope.check_local(&resolved)?;
                local::space(&resolved)
            })
            .await
        })
        .await
        .map(wit_space)
    }
}

/// The canonical form of a remote path, or of its directory when it does not exist yet.
async fn resolve_for_scope(sftp: &sftp::SftpChannel, path: &str) -> HostResult<String> {
    match sftp::canonicalize(sftp, path).await {
        Err(HostError::NotFound(_)) => {
            let (dir, name) = sftp::split_remote(path);
            let dir = if dir.is_empty() { "." } else { dir.as_str() };
            Ok(sftp::join_remote(
                &sftp::canonicalize(sftp, dir).await?,
                &name,
            ))
        }
        other => other,
    }
}

/// Runs blocking file system work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> HostResult<T> + Send + 'static,
) -> HostResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Other(format!("a local file system call failed: {e}")))?
}
