//! The transfer engine: whole files between the local machine and the remote host,
//! moved natively (never through a tool's memory), pipelined, and published atomically.
//! The drivers are [`upload`] and [`download`], each a sequence of named steps.
//!
//! Every transfer:
//! 1. checks the source (a regular file, by name and again once open: a FIFO would block
//!    the server, a device never ends), its size as opened against `max-size`, and the
//!    free space at the destination (remote `statvfs` for uploads, local for downloads)
//!    before any byte moves, and refuses an existing destination in create-new mode up
//!    front;
//! 2. writes a temporary sibling of the destination (`.NAME.mcpssh-TOKEN.part`, see
//!    [`super::temp`]) with large requests (up to the server's limits: 255 KiB with
//!    OpenSSH), as many bytes in flight as the link needs (`flow`), spread over up to
//!    three SFTP sessions for large files (see `super::lanes`), reading or writing the
//!    local file on a blocking thread, reporting progress (`progress`);
//! 3. flushes it (`fsync@openssh.com` when offered; `fsync` locally) and checks its size;
//! 4. publishes it: create-new renames without replacing (the server's plain rename, or
//!    `renameat2(RENAME_NOREPLACE)` / `link` locally, see `publish_local`), so a file that
//!    appeared meanwhile is never clobbered (`already-exists`); overwrite renames over the
//!    destination (`posix-rename@openssh.com`, `rename(2)`), so the old file stays intact
//!    until then.
//!
//! On any failure, timeout or cancellation the temporary file is removed before the call
//! returns (the one driver loop, `drive`, differs between the directions only in the
//! guard that removes it: remote or local); if the transfer's future is dropped instead,
//! the guard removes it in the background. What a crash leaves (of `mcpssh`, or of the
//! connection) is removed by the next transfer (`leftovers`).

mod download;
mod flow;
mod leftovers;
mod progress;
mod publish_local;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::guard::TempGuard;
use crate::error::{HostError, HostResult};

pub use download::download;
pub use publish_local::rename_noreplace;
pub use upload::upload;

/// Requests in flight per transfer by default.
pub const DEFAULT_WINDOW: usize = 64;

/// What to do when the destination exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail with `already-exists`, checked atomically when the file is put in place.
    CreateNew,
    /// Replace it; the old file stays intact until the new one is complete.
    Overwrite,
}

/// One file to move.
#[derive(Debug, Clone)]
pub struct TransferRequest {
    /// The local path, already resolved by [`crate::local::LocalPolicy::resolve`].
    pub local: PathBuf,
    /// The remote path as given (relative paths and `~/` are relative to the home
    /// directory).
    pub remote: String,
    pub mode: WriteMode,
    /// Refuse a source larger than this, before any byte moves.
    pub max_size: Option<u64>,
}

/// What a finished transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReport {
    pub local_path: String,
    /// The remote path, absolute.
    pub remote_path: String,
    pub bytes: u64,
    pub duration: Duration,
    /// True when an existing destination was replaced.
    pub replaced: bool,
}

/// Receives progress: bytes done, bytes in all.
pub type TransferProgress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How a transfer is run.
#[derive(Clone)]
pub struct TransferControl {
    /// Stops the transfer (the temporary file is removed).
    pub cancel: CancellationToken,
    pub progress: Option<TransferProgress>,
    /// Age after which a crash's leftover temporary file is removed.
    pub stale_age: Duration,
    /// Requests in flight.
    pub window: usize,
}

impl TransferControl {
    pub fn new(cancel: CancellationToken) -> Self {
        TransferControl {
            cancel,
            progress: None,
            stale_age: Duration::from_secs(60),
            window: DEFAULT_WINDOW,
        }
    }
}

/// Free space a file of `size` bytes needs: its size plus a margin for the file
/// system's own blocks (0.1 %) and rounding (64 KiB).
pub fn needed_space(size: u64) -> u64 {
    size.saturating_add(size / 1024).saturating_add(64 * 1024)
}

fn too_large(what: &str, size: u64, max: u64) -> HostError {
    HostError::TooLarge(format!(
        "{what} is {size} bytes, over the limit of {max} bytes (max_size); nothing was transferred. \
         Raise max_size to transfer it"
    ))
}

fn no_space(where_: &str, size: u64, available: u64) -> HostError {
    HostError::NoSpace(format!(
        "not enough free space {where_}: the file needs {} bytes (with a small margin) but only {available} are \
         available; nothing was written. Free some space or choose another destination",
        needed_space(size)
    ))
}

/// What a transfer's steps did, for the report.
struct Moved {
    /// The remote path, absolute.
    remote_path: String,
    bytes: u64,
    /// True when an existing destination was replaced.
    replaced: bool,
}

/// Runs a transfer's `steps` with `temp` guarding its temporary file, until they finish or
/// `ctl.cancel` fires; on failure or cancellation the temporary file is removed before
/// this returns. Upload and download differ here only in their guard.
async fn drive<G: TempGuard>(
    req: &TransferRequest,
    ctl: &TransferControl,
    mut temp: G,
    steps: impl AsyncFnOnce(&mut G) -> HostResult<Moved>,
) -> HostResult<TransferReport> {
    let started = Instant::now();
    let result = tokio::select! {
        r = steps(&mut temp) => r,
        _ = ctl.cancel.cancelled() => Err(HostError::Cancelled),
    };
    if result.is_err() {
        temp.remove_now().await;
    }
    let moved = result?;
    Ok(TransferReport {
        local_path: req.local.display().to_string(),
        remote_path: moved.remote_path,
        bytes: moved.bytes,
        duration: started.elapsed(),
        replaced: moved.replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_margin_is_small_but_present() {
        assert_eq!(needed_space(0), 64 * 1024);
        assert_eq!(needed_space(1 << 30), (1 << 30) + (1 << 20) + 64 * 1024);
        assert_eq!(needed_space(u64::MAX), u64::MAX);
    }
}
