//! The host side of the file capability interfaces: `remote-read`, `remote-write`,
//! `transfer` and `local-read`. Each turns a guest's request into a call on `sftp` or
//! `local` and the outcome back into WIT data, after checking the component's grant scope
//! (remote paths are resolved on the server first; the request then acts on the path
//! that was checked). Time spent here counts as host time; a cancelled call stops
//! waiting (a transfer also removes its temporary file).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::bindings::WitError;
use super::bindings::mcpssh::plugin::{local_read, remote_read, remote_write, transfer, types};
use super::grants::Scope;
use super::state::CallState;
use crate::error::{HostError, HostResult};
use crate::files::{FileInfo, FileKind, Space};
use crate::local::{self, LocalPolicy};
use crate::sftp::{self, TransferControl, TransferRequest, WriteMode};
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

    /// Runs `f`, which changes something (`what`), with the session's connection and
    /// SFTP channel, as host time, once the policy allows it.
    async fn with_sftp<T, F, Fut>(
        &mut self,
        what: &str,
        session: Option<String>,
        f: F,
    ) -> Result<T, WitError>
    where
        F: FnOnce(Arc<Connection>, Arc<sftp::SftpChannel>) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        let pool = self.services.pool.clone();
        let gate = self.call.gate.clone();
        let what = what.to_string();
        self.host_work(async move {
            gate.check_remote(&pool, session.as_deref(), "write", Some(&what))
                .await?;
            let (conn, channel) = pool.sftp(session.as_deref()).await?;
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
        let gate = self.call.gate.clone();
        self.host_work(async move {
            gate.check_remote(&pool, session.as_deref(), "read", None)
                .await?;
            let (conn, channel) = pool.sftp(session.as_deref()).await?;
            match f(conn, channel.clone()).await {
                Err(HostError::Connection(_)) if !channel.is_alive() => {
                    let (conn, channel) = pool.sftp(session.as_deref()).await?;
                    f(conn, channel).await
                }
                other => other,
            }
        })
        .await
    }

    /// Checks the component's grant scope for a request on `session` that touches the
    /// remote `paths` (each with how the request uses it) and, when `change` names it,
    /// changes something. Returns the paths the request must act on: under a
    /// `remote_paths` scope, the absolute paths that were checked (resolved on the
    /// server, see [`Access`]), so the request uses what was checked; otherwise the paths
    /// as given.
    async fn in_scope<const N: usize>(
        &mut self,
        change: Option<&str>,
        session: &Option<String>,
        paths: [(&str, Access); N],
    ) -> Result<[String; N], WitError> {
        let scope = self.scope.clone();
        if let Some(what) = change {
            scope.check_change(what).map_err(WitError::from)?;
        }
        scope
            .check_session(session.as_deref())
            .map_err(WitError::from)?;
        let paths = paths.map(|(path, access)| (path.to_string(), access));
        if !scope.limits_remote_paths() {
            return Ok(paths.map(|(path, _)| path));
        }
        self.with_sftp_retry(session.clone(), |_, s| {
            let (paths, scope) = (paths.clone(), scope.clone());
            async move {
                let mut checked = Vec::with_capacity(N);
                for (path, access) in &paths {
                    checked.push(checked_path(&s, &scope, path, *access).await?);
                }
                Ok(checked
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("one checked path per path")))
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
        let access = if follow {
            Access::Follow
        } else {
            Access::Entry
        };
        let [checked] = self.in_scope(None, &session, [(&path, access)]).await?;
        let checked = &checked;
        let mut info = self
            .with_sftp_retry(session, |_, s| async move {
                sftp::stat(&s, checked, follow).await
            })
            .await?;
        info.name = path;
        Ok(wit_info(info))
    }

    async fn list_dir(
        &mut self,
        session: Option<String>,
        path: String,
        limit: u32,
    ) -> Result<(Vec<types::FileInfo>, bool), WitError> {
        let [path] = self
            .in_scope(None, &session, [(&path, Access::Follow)])
            .await?;
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
        let [path] = self
            .in_scope(None, &session, [(&path, Access::Follow)])
            .await?;
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
        let [path] = self
            .in_scope(None, &session, [(&path, Access::Follow)])
            .await?;
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
        let [path] = self
            .in_scope(Some("removing a file"), &session, [(&path, Access::Entry)])
            .await?;
        self.with_sftp("removing a file", session, |_, s| async move {
            sftp::remove_file(&s, &path).await
        })
        .await
    }

    async fn make_dir(&mut self, session: Option<String>, path: String) -> Result<(), WitError> {
        let [path] = self
            .in_scope(
                Some("creating a directory"),
                &session,
                [(&path, Access::Entry)],
            )
            .await?;
        self.with_sftp("creating a directory", session, |_, s| async move {
            sftp::make_dir(&s, &path).await
        })
        .await
    }

    async fn rename(
        &mut self,
        session: Option<String>,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<(), WitError> {
        let [source, destination] = self
            .in_scope(
                Some("renaming a file"),
                &session,
                [(&source, Access::Entry), (&destination, Access::Entry)],
            )
            .await?;
        self.with_sftp("renaming a file", session, |_, s| async move {
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
        mut request: transfer::TransferRequest,
        direction: Direction,
    ) -> Result<transfer::TransferReport, WitError> {
        let (what, access) = match direction {
            Direction::Upload => ("uploading a file", Access::WriteBeside),
            Direction::Download => ("downloading a file", Access::Follow),
        };
        let pool = self.services.pool.clone();
        let gate = self.call.gate.clone();
        let session = request.session.clone();
        let remote_path = request.remote_path.clone();
        let upload = matches!(direction, Direction::Upload);
        let mut max_size = request.max_size;
        self.host_work(async {
            gate.check_transfer(
                &pool,
                session.as_deref(),
                upload,
                &remote_path,
                &mut max_size,
            )
            .await
        })
        .await?;
        request.max_size = max_size;
        let [remote] = self
            .in_scope(
                Some(what),
                &request.session,
                [(&request.remote_path, access)],
            )
            .await?;
        request.remote_path = remote;
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
        self.call.gate.check_local(&local)?;
        let cancel = self.call.cancel.clone();
        let pool = self.services.pool.clone();
        let (conn, channel) = tokio::select! {
            c = pool.sftp(request.session.as_deref()) => c?,
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
            Direction::Upload => sftp::upload(conn, channel, req, control).await?,
            Direction::Download => sftp::download(conn, channel, req, control).await?,
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
        let gate = self.call.gate.clone();
        self.host_work(async move {
            blocking(move || {
                let resolved = policy.resolve(&path)?;
                scope.check_local(&resolved)?;
                gate.check_local(&resolved)?;
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
        let gate = self.call.gate.clone();
        self.host_work(async move {
            blocking(move || {
                let resolved = policy.resolve(&path)?;
                scope.check_local(&resolved)?;
                gate.check_local(&resolved)?;
                local::space(&resolved)
            })
            .await
        })
        .await
        .map(wit_space)
    }
}

/// How a request uses a remote path, which decides what its scope check resolves.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// The request follows a final symlink (stat, list, read): the canonical path is
    /// checked (for a path that does not exist, its canonical directory plus its name).
    Follow,
    /// The request acts on the directory entry itself, never following a final symlink
    /// (remove, rename, lstat, make a directory): the canonical directory plus the final
    /// name is checked, and `.` and `..` are refused as final names.
    Entry,
    /// The request writes the file, through a symlink to an existing file, by way of a
    /// temporary file beside it (uploads): the file as for [`Access::Follow`], and the
    /// directory the temporary file goes in.
    WriteBeside,
}

/// Resolves `path` on the server as `access` says and checks the result against
/// `scope`; returns the path checked.
async fn checked_path(
    sftp: &sftp::SftpChannel,
    scope: &Scope,
    path: &str,
    access: Access,
) -> HostResult<String> {
    let checked = match access {
        Access::Follow | Access::WriteBeside => resolve_followed(sftp, path).await?,
        Access::Entry => resolve_entry(sftp, path).await?,
    };
    scope.check_remote(&checked)?;
    if let Access::WriteBeside = access {
        let (dir, _) = sftp::split_remote(&checked);
        scope.check_remote_for(
            &dir,
            &format!("the directory {dir}, where writing {checked} puts a temporary file,"),
        )?;
    }
    Ok(checked)
}

/// The canonical form of a remote path (final symlink followed), or of its directory
/// plus its name when it does not exist yet.
async fn resolve_followed(sftp: &sftp::SftpChannel, path: &str) -> HostResult<String> {
    match sftp::canonicalize(sftp, path).await {
        Err(HostError::NotFound(_)) => resolve_entry(sftp, path).await,
        other => other,
    }
}

/// The canonical form of a remote path's directory plus its final name (a final symlink
/// is not followed). Refuses a path whose final name is `.` or `..` or missing: it would
/// name a directory other than the one checked.
async fn resolve_entry(sftp: &sftp::SftpChannel, path: &str) -> HostResult<String> {
    let (dir, name) = sftp::split_remote(&sftp::remote_arg(path)?);
    if name.is_empty() || name == "." || name == ".." {
        return Err(HostError::Invalid(format!(
            "the remote path {path:?} does not end in a file name (it ends in {:?}); \
             give the path of the file or directory itself",
            if name.is_empty() { "/" } else { name.as_str() }
        )));
    }
    Ok(sftp::join_remote(
        &sftp::canonicalize(sftp, &dir).await?,
        &name,
    ))
}

/// Runs blocking file system work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> HostResult<T> + Send + 'static,
) -> HostResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Other(format!("a local file system call failed: {e}")))?
}
