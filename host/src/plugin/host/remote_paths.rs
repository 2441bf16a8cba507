//! What the remote file interfaces (`remote-read`, `remote-write`, `transfer`) share: the
//! session's SFTP channel, opened once the policy allows the request (and reopened once
//! for a request that changes nothing, when it turns out dead), and the grant scope's
//! check of remote paths, which resolves them on the server first so the request acts on
//! the path that was checked.

use std::future::Future;
use std::sync::Arc;

use crate::error::{HostError, HostResult};
use crate::plugin::scope::Scope;
use crate::plugin::state::CallHost;
use crate::sftp::{self, SftpChannel};
use crate::ssh::Connection;

/// How a request uses a remote path, which decides what its scope check resolves.
#[derive(Debug, Clone, Copy)]
pub enum Access {
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

impl CallHost {
    /// Runs `f`, which changes something (`what`), with the session's connection and
    /// SFTP channel, once the policy allows it.
    pub async fn with_sftp<T, F, Fut>(
        &self,
        what: &str,
        session: Option<String>,
        f: F,
    ) -> HostResult<T>
    where
        F: FnOnce(Arc<Connection>, Arc<SftpChannel>) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        let pool = &self.services.pool;
        self.call
            .gate
            .check_remote(pool, session.as_deref(), "write", Some(what))
            .await?;
        let (conn, channel) = pool.sftp(session.as_deref()).await?;
        f(conn, channel).await
    }

    /// Like [`Self::with_sftp`] for requests that change nothing: when the SFTP channel
    /// turns out to be dead (the connection dropped, or the server's sftp process
    /// ended), it is reopened and the request made once more.
    pub async fn with_sftp_retry<T, F, Fut>(&self, session: Option<String>, f: F) -> HostResult<T>
    where
        F: Fn(Arc<Connection>, Arc<SftpChannel>) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        let pool = &self.services.pool;
        self.call
            .gate
            .check_remote(pool, session.as_deref(), "read", None)
            .await?;
        let (conn, channel) = pool.sftp(session.as_deref()).await?;
        match f(conn, channel.clone()).await {
            Err(HostError::Connection(_)) if !channel.is_alive() => {
                let (conn, channel) = pool.sftp(session.as_deref()).await?;
                f(conn, channel).await
            }
            other => other,
        }
    }

    /// Checks the component's grant scope for a request on `session` that touches the
    /// remote `paths` (each with how the request uses it) and, when `change` names it,
    /// changes something. Returns the paths the request must act on: under a
    /// `remote_paths` scope, the absolute paths that were checked (resolved on the
    /// server, see [`Access`]), so the request uses what was checked; otherwise the paths
    /// as given.
    pub async fn in_scope<const N: usize>(
        &self,
        change: Option<&str>,
        session: &Option<String>,
        paths: [(&str, Access); N],
    ) -> HostResult<[String; N]> {
        let scope = &self.scope;
        if let Some(what) = change {
            scope.check_change(what)?;
        }
        scope.check_session(session.as_deref())?;
        let paths = paths.map(|(path, access)| (path.to_string(), access));
        if !scope.limits_remote_paths() {
            return Ok(paths.map(|(path, _)| path));
        }
        self.with_sftp_retry(session.clone(), |_, s| {
            let paths = paths.clone();
            async move {
                let mut checked = Vec::with_capacity(N);
                for (path, access) in &paths {
                    checked.push(checked_path(&s, scope, path, *access).await?);
                }
                Ok(checked
                    .try_into()
                    .unwrap_or_else(|_| unreachable!("one checked path per path")))
            }
        })
        .await
    }
}

/// Resolves `path` on the server as `access` says and checks the result against
/// `scope`; returns the path checked.
async fn checked_path(
    sftp: &SftpChannel,
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
async fn resolve_followed(sftp: &SftpChannel, path: &str) -> HostResult<String> {
    match sftp::canonicalize(sftp, path).await {
        Err(HostError::NotFound(_)) => resolve_entry(sftp, path).await,
        other => other,
    }
}

/// The canonical form of a remote path's directory plus its final name (a final symlink
/// is not followed). Refuses a path whose final name is `.` or `..` or missing: it would
/// name a directory other than the one checked.
async fn resolve_entry(sftp: &SftpChannel, path: &str) -> HostResult<String> {
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
