//! The SFTP side of the host (russh-sftp over one channel per connection): remote
//! metadata and changes (`meta`), the pipelined, atomic transfer engine (`transfer`,
//! spreading a large file over several SFTP channels with `lanes`, closing remote
//! handles with `handle`, removing unpublished temporary files with `guard`),
//! temporary-file naming (`temp`) and the record that lets crash leftovers be removed
//! (`journal`), and the mapping of SFTP failures to [`HostError`]s (`error`). Nothing
//! here knows about MCP or wasm.
//!
//! An [`SftpChannel`] runs on a channel of an SSH [`Connection`] it is given; which
//! channel a session keeps and shares between calls is decided above, by
//! `crate::sessions`. This module never reaches the session pool.

pub mod error;
mod guard;
mod handle;
mod head;
pub mod journal;
mod lanes;
pub mod meta;
pub mod temp;
pub mod transfer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::ChannelMsg;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::rawsession::Limits;
use russh_sftp::extensions;

use crate::error::{HostError, HostResult};
use crate::files::{FileInfo, FileKind};
use crate::ssh::connection::{ChannelSlot, Connection};
use crate::ssh::russh_error::describe_russh_error;

pub use head::read_head;
pub use meta::{canonicalize, list_dir, make_dir, remove_file, rename, space, stat};
pub use transfer::{
    TransferControl, TransferProgress, TransferReport, TransferRequest, WriteMode, download, upload,
};

/// How long one SFTP request may wait for its answer. Generous: with many large
/// requests in flight on a slow link the last one waits for all before it.
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Largest read or write we ask for: OpenSSH's limit (256 KiB messages minus headers).
pub const MAX_IO_LEN: u32 = 255 * 1024;

/// Read and write size when the server does not announce its limits: the size every
/// server must accept.
pub const FALLBACK_IO_LEN: u32 = 32 * 1024;

/// Largest SFTP message we accept from the server.
const MAX_PACKET_LEN: u32 = 1024 * 1024;

/// The extension that replaces the destination of a rename atomically.
pub const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// Metadata from SFTP attributes.
pub trait FromAttrs {
    fn from_attrs(name: String, attrs: &russh_sftp::protocol::FileAttributes) -> FileInfo;
}

impl FromAttrs for FileInfo {
    /// Metadata from SFTP attributes. A missing mode gives kind `Other`.
    fn from_attrs(name: String, attrs: &russh_sftp::protocol::FileAttributes) -> FileInfo {
        let mode = attrs.permissions.unwrap_or(0);
        FileInfo {
            name,
            kind: if attrs.permissions.is_some() {
                FileKind::from_mode(mode)
            } else {
                FileKind::Other
            },
            size: attrs.size.unwrap_or(0),
            mode: mode & 0o7777,
            modified: attrs.mtime.map(u64::from),
            uid: attrs.uid,
            gid: attrs.gid,
        }
    }
}

/// One open SFTP session on its own channel of a connection.
pub struct SftpChannel {
    raw: RawSftpSession,
    /// The extensions the server announced, with their versions.
    extensions: HashMap<String, String>,
    /// Bytes asked for per read request.
    pub read_len: u32,
    /// Bytes sent per write request.
    pub write_len: u32,
    /// Set once the channel failed; the connection then opens a new one.
    dead: AtomicBool,
    /// The session's name, for messages.
    pub session: String,
    /// `user@host:port`, naming the remote side in the temporary-file journal.
    pub target: String,
    _slot: ChannelSlot,
}

impl SftpChannel {
    /// Opens a channel on `conn`, starts the `sftp` subsystem on it and negotiates the
    /// protocol and the server's limits.
    pub async fn open(conn: &Connection) -> HostResult<SftpChannel> {
        let name = conn.info.name.clone();
        let opened = tokio::time::timeout(Duration::from_secs(30), Self::open_inner(conn)).await;
        opened.unwrap_or_else(|_| {
            Err(HostError::TimedOut(format!(
                "starting SFTP on {name} took longer than 30 s; the server may be overloaded, try again"
            )))
        })
    }

    /// Another SFTP session on its own channel, if the connection can spare a channel
    /// (see [`Connection::try_open_spare_channel`]) and the server accepts at once;
    /// `None` (logged) otherwise.
    pub async fn try_open(conn: &Connection) -> Option<SftpChannel> {
        let (channel, slot) = conn.try_open_spare_channel().await?;
        let started =
            tokio::time::timeout(Duration::from_secs(10), Self::start(conn, channel, slot)).await;
        match started {
            Ok(Ok(sftp)) => Some(sftp),
            Ok(Err(e)) => {
                tracing::debug!(session = %conn.info.name, "extra SFTP session refused: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(session = %conn.info.name, "extra SFTP session took over 10 s");
                None
            }
        }
    }

    async fn open_inner(conn: &Connection) -> HostResult<SftpChannel> {
        let (channel, slot) = conn.open_channel().await?;
        Self::start(conn, channel, slot).await
    }

    /// Starts the subsystem on an open channel and negotiates.
    async fn start(
        conn: &Connection,
        mut channel: russh::Channel<russh::client::Msg>,
        slot: ChannelSlot,
    ) -> HostResult<SftpChannel> {
        let name = conn.info.name.clone();
        channel.request_subsystem(true, "sftp").await.map_err(|e| {
            HostError::Connection(format!(
                "cannot start SFTP on {name}: {}",
                describe_russh_error(&e)
            ))
        })?;
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => {
                    return Err(HostError::Other(format!(
                        "the server {name} refused the SFTP subsystem; it needs `Subsystem sftp ...` in its sshd_config"
                    )));
                }
                Some(ChannelMsg::Close) | Some(ChannelMsg::Eof) | None => {
                    return Err(HostError::Connection(format!(
                        "the server {name} closed the channel while SFTP was starting"
                    )));
                }
                Some(_) => {}
            }
        }
        let config = russh_sftp::client::Config {
            max_packet_len: MAX_PACKET_LEN,
            request_timeout_secs: REQUEST_TIMEOUT_SECS,
            ..Default::default()
        };
        let mut raw = RawSftpSession::new_with_config(channel.into_stream(), config);
        let version = raw.init().await.map_err(|e| {
            HostError::Connection(format!("the SFTP handshake with {name} failed: {e}"))
        })?;
        let extensions = version.extensions;
        let mut read_len = FALLBACK_IO_LEN;
        let mut write_len = FALLBACK_IO_LEN;
        if extensions.get(extensions::LIMITS).is_some_and(|v| v == "1") {
            match raw.limits().await {
                Ok(ext) => {
                    let limits = Limits::from(ext);
                    (read_len, write_len) = io_lengths(&limits);
                    raw.set_limits(limits);
                }
                Err(e) => tracing::debug!(session = %name, "limits@openssh.com failed: {e}"),
            }
        }
        tracing::debug!(session = %name, read_len, write_len, extensions = ?extensions.keys().collect::<Vec<_>>(), "SFTP session open");
        Ok(SftpChannel {
            raw,
            extensions,
            read_len,
            write_len,
            dead: AtomicBool::new(false),
            session: name,
            target: format!(
                "{}@{}:{}",
                conn.target.username, conn.target.host, conn.target.port
            ),
            _slot: slot,
        })
    }

    /// The protocol session, for requests.
    pub fn raw(&self) -> &RawSftpSession {
        &self.raw
    }

    /// True until the channel failed.
    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::Relaxed)
    }

    /// Marks the channel as failed: the next user opens a fresh one.
    pub fn mark_dead(&self) {
        if !self.dead.swap(true, Ordering::Relaxed) {
            tracing::info!(session = %self.session, "SFTP channel failed; a new one will be opened on next use");
        }
    }

    /// True when the server announced extension `name` at version `version`.
    pub fn has_extension(&self, name: &str, version: &str) -> bool {
        self.extensions.get(name).is_some_and(|v| v == version)
    }
}

/// Read and write request sizes within the server's limits (and ours).
fn io_lengths(limits: &Limits) -> (u32, u32) {
    // Leave 1 KiB of each packet for the headers (type, id, handle, offset), as OpenSSH does.
    let by_packet = limits.packet_len.map(|p| p.saturating_sub(1024));
    let pick = |len: Option<u64>| {
        [len, by_packet]
            .into_iter()
            .flatten()
            .fold(u64::from(MAX_IO_LEN), u64::min)
            .max(512) as u32
    };
    (pick(limits.read_len), pick(limits.write_len))
}

/// The path to send for a remote path as a user wrote it: `~` and `~/...` mean the home
/// directory, which is where SFTP resolves relative paths.
///
/// Every remote path a caller gives passes here before it reaches the server, and one
/// holding a NUL byte is refused: no remote path can hold one, and OpenSSH's
/// `sftp-server` takes a NUL inside a path as a fatal protocol error and exits, which
/// would end the SFTP session that every call on the connection shares.
pub fn remote_arg(path: &str) -> HostResult<String> {
    if path.contains('\0') {
        return Err(HostError::Invalid(format!(
            "the remote path {path:?} contains a NUL byte, which no path can hold; remove it"
        )));
    }
    Ok(if path == "~" || path.is_empty() {
        ".".into()
    } else if let Some(rest) = path.strip_prefix("~/") {
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            ".".into()
        } else {
            rest.to_string()
        }
    } else {
        path.to_string()
    })
}

/// Splits a remote path into its directory (`.` when none) and final name.
pub fn split_remote(path: &str) -> (String, String) {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    match trimmed.rfind('/') {
        Some(0) => ("/".into(), trimmed[1..].to_string()),
        Some(i) => (trimmed[..i].to_string(), trimmed[i + 1..].to_string()),
        None => (".".into(), trimmed.to_string()),
    }
}

/// Joins a remote directory and a name.
pub fn join_remote(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_mode() {
        assert_eq!(FileKind::from_mode(0o100644), FileKind::File);
        assert_eq!(FileKind::from_mode(0o040755), FileKind::Directory);
        assert_eq!(FileKind::from_mode(0o120777), FileKind::Symlink);
        assert_eq!(FileKind::from_mode(0o140755), FileKind::Other); // socket
        assert_eq!(FileKind::from_mode(0o060660), FileKind::Other); // block device
        assert_eq!(FileKind::from_mode(0o010644), FileKind::Other); // fifo
    }

    #[test]
    fn attrs_keep_special_bits_and_drop_the_type() {
        let attrs = russh_sftp::protocol::FileAttributes {
            size: Some(7),
            permissions: Some(0o104755),
            mtime: Some(1_700_000_000),
            uid: Some(1000),
            gid: Some(100),
            ..Default::default()
        };
        let info = FileInfo::from_attrs("x".into(), &attrs);
        assert_eq!(info.kind, FileKind::File);
        assert_eq!(info.mode, 0o4755);
        assert_eq!(info.size, 7);
        assert_eq!(info.modified, Some(1_700_000_000));
        assert_eq!((info.uid, info.gid), (Some(1000), Some(100)));
    }

    #[test]
    fn io_lengths_follow_openssh_limits() {
        let openssh = Limits {
            packet_len: Some(256 * 1024),
            read_len: Some(261_120),
            write_len: Some(261_120),
            open_handles: Some(1000),
        };
        assert_eq!(io_lengths(&openssh), (261_120, 261_120));
        let small = Limits {
            packet_len: Some(40_000),
            read_len: None,
            write_len: Some(16_000),
            open_handles: None,
        };
        assert_eq!(io_lengths(&small), (38_976, 16_000));
        assert_eq!(io_lengths(&Limits::default()), (MAX_IO_LEN, MAX_IO_LEN));
    }

    #[test]
    fn remote_paths_are_split_and_joined() {
        assert_eq!(split_remote("/a/b/c.txt"), ("/a/b".into(), "c.txt".into()));
        assert_eq!(split_remote("/c.txt"), ("/".into(), "c.txt".into()));
        assert_eq!(split_remote("c.txt"), (".".into(), "c.txt".into()));
        assert_eq!(split_remote("dir/c.txt/"), ("dir".into(), "c.txt".into()));
        assert_eq!(join_remote("/", "x"), "/x");
        assert_eq!(join_remote("/a", "x"), "/a/x");
        let arg = |p: &str| remote_arg(p).unwrap();
        assert_eq!(arg("~"), ".");
        assert_eq!(arg("~/x/y"), "x/y");
        assert_eq!(arg("~/"), ".");
        assert_eq!(arg("/abs"), "/abs");
        assert_eq!(arg("~other/x"), "~other/x");
    }

    #[test]
    fn remote_paths_with_nul_are_refused() {
        for path in ["/tmp/a\0b", "\0", "~/\0"] {
            let e = remote_arg(path).unwrap_err();
            assert_eq!(e.kind(), "invalid", "{path:?}");
            assert!(e.message().contains("NUL"), "{e}");
        }
    }
}
