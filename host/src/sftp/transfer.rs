//! The transfer engine: whole files between the local machine and the remote host,
//! moved natively (never through a tool's memory), pipelined, and published atomically.
//!
//! Every transfer:
//! 1. checks the source (a regular file, by name and again once open: a FIFO would block
//!    the server, a device never ends), its size as opened against `max-size`, and the
//!    free space at the destination (remote `statvfs` for uploads, local for downloads)
//!    before any byte moves, and refuses an existing destination in create-new mode up
//!    front;
//! 2. writes a temporary sibling of the destination (`.NAME.mcpssh-TOKEN.part`, see
//!    [`super::temp`]) with large requests (up to the server's limits: 255 KiB with
//!    OpenSSH), as many bytes in flight as the link needs (see `Flow`), spread over up
//!    to three SFTP sessions for large files (see `lanes`), reading or writing
//!    the local file on a blocking thread;
//! 3. flushes it (`fsync@openssh.com` when offered; `fsync` locally) and checks its size;
//! 4. publishes it: create-new renames without replacing (the server's plain rename, or
//!    `renameat2(RENAME_NOREPLACE)` / `link` locally), so a file that appeared meanwhile
//!    is never clobbered (`already-exists`); overwrite renames over the destination
//!    (`posix-rename@openssh.com`, `rename(2)`), so the old file stays intact until then.
//!
//! On any failure, timeout or cancellation the temporary file is removed before the call
//! returns; if the transfer's future is dropped instead, a guard removes it in the
//! background. What a crash leaves (of `mcpssh`, or of the connection) is removed by the
//! next transfer: exactly, through the [`journal`] of temporary files, and by age
//! (`MCP_SSH_STALE_TEMP_AGE`) for files in the destination directory that the journal
//! does not know (e.g. from another machine).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio_util::sync::CancellationToken;

use super::error::status_code;
use super::guard::{LocalTemp, RemoteTemp};
use super::handle::RemoteHandle;
use super::journal;
use super::lanes::Lanes;
use super::meta::{self, lstat_opt, stat_opt};
use super::temp;
use super::{SftpChannel, join_remote, remote_arg, split_remote};
use crate::error::{HostError, HostResult};
use crate::files::FileKind;
use crate::local;
use crate::ssh::Connection;

/// Requests in flight per transfer by default.
pub const DEFAULT_WINDOW: usize = 64;

/// How long removing a temporary file may take before it is left for the crash cleanup.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Most directory entries looked at when cleaning crash leftovers.
const STALE_SCAN_LIMIT: u32 = 20_000;

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

/// Reports progress at most every 100 ms, and always the end.
struct Progress {
    sink: Option<TransferProgress>,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    fn new(sink: Option<TransferProgress>, total: u64) -> Self {
        let mut p = Progress {
            sink,
            total,
            last: None,
        };
        p.update(0);
        p
    }

    fn update(&mut self, done: u64) {
        let Some(sink) = &self.sink else { return };
        let now = Instant::now();
        if done < self.total
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        sink(done, self.total);
    }
}

/// How many bytes a transfer keeps in flight.
///
/// Enough to fill the link, but no more: four times the bytes the link carries in the
/// shortest time a request took (an estimate of the bandwidth-delay product, which grows
/// as the measured rate grows), at least [`FLOW_MIN_BYTES`]. More would only queue up in
/// the server's buffers, which costs the server CPU (OpenSSH copies and clears its
/// buffers as they grow). And never more than [`FLOW_SECONDS`] of transfer at the rate
/// seen so far, so that on a slow link no request waits long enough to hit the
/// per-request timeout.
struct Flow {
    started: Instant,
    min_latency: Option<Duration>,
}

/// Seconds of transfer the requests in flight may represent at most.
const FLOW_SECONDS: f64 = 10.0;
/// Bytes always allowed in flight: two of OpenSSH's largest requests, so that the
/// server has the next one queued while it works on one. Not more: OpenSSH's sshd slows
/// down as data piles up in its buffer towards `sftp-server` (it copies and clears the
/// buffer as it grows), and on loopback a 4 MiB upload took 123–171 ms with 2 MiB
/// allowed from the start against 38–102 ms with 512 KiB. The bandwidth-delay estimate
/// raises the allowance within a few round trips where the link needs more.
const FLOW_MIN_BYTES: u64 = 512 * 1024;
/// In flight: this many times the estimated bandwidth-delay product.
const FLOW_BDP_FACTOR: f64 = 4.0;

impl Flow {
    fn new() -> Self {
        Flow {
            started: Instant::now(),
            min_latency: None,
        }
    }

    /// Notes how long one request took, from sending it to its answer.
    fn observe(&mut self, latency: Duration) {
        self.min_latency = Some(self.min_latency.map_or(latency, |m| m.min(latency)));
    }

    /// A description for the log.
    fn describe(&self, done: u64) -> String {
        format!(
            "shortest request {:.1} ms, in flight up to {} KiB",
            self.min_latency.map_or(0.0, |l| l.as_secs_f64() * 1000.0),
            self.allowed(done) / 1024
        )
    }

    /// The bytes allowed in flight once `done` bytes have completed.
    fn allowed(&self, done: u64) -> u64 {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let bdp = self
            .min_latency
            .map_or(0.0, |l| rate * l.as_secs_f64() * FLOW_BDP_FACTOR);
        let cap = (rate * FLOW_SECONDS).max(FLOW_MIN_BYTES as f64);
        bdp.max(FLOW_MIN_BYTES as f64).min(cap) as u64
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Removes the temporary files that earlier transfers on this connection's target left
/// (see [`journal`]).
async fn clean_remote_leftovers(sftp: &SftpChannel) {
    let target = sftp.target.clone();
    let Ok(leftovers) =
        tokio::task::spawn_blocking(move || journal::leftovers(Some(&target))).await
    else {
        return;
    };
    for (file, entry) in leftovers {
        let removed =
            tokio::time::timeout(CLEANUP_TIMEOUT, sftp.raw().remove(entry.path.clone())).await;
        match removed {
            Ok(Ok(_)) => {
                tracing::info!(session = %sftp.session, path = %entry.path, "removed a temporary file left by an interrupted transfer");
                journal::forget(&file);
            }
            Ok(Err(e)) if status_code(&e) == Some(StatusCode::NoSuchFile) => journal::forget(&file),
            Ok(Err(e)) => {
                tracing::debug!(path = %entry.path, "cannot remove a leftover temporary file: {e}")
            }
            Err(_) => return,
        }
    }
}

/// Removes the leftovers of earlier transfers, local and on this connection's target.
async fn clean_leftovers(sftp: &SftpChannel) {
    let _ = tokio::task::spawn_blocking(journal::clean_local).await;
    clean_remote_leftovers(sftp).await;
}

/// Removes temporary files left by crashed transfers in the remote directory `dir`.
/// `now` is the server's clock (the modification time of a file just created).
async fn clean_stale_remote(sftp: &SftpChannel, dir: &str, now: u64, max_age: Duration) {
    let work = async {
        let (entries, _) = meta::list_dir(sftp, dir, STALE_SCAN_LIMIT).await?;
        for entry in entries {
            if entry.kind == FileKind::File
                && temp::is_stale(&entry.name, entry.modified, now, max_age.as_secs())
            {
                let path = join_remote(dir, &entry.name);
                match sftp.raw().remove(path.clone()).await {
                    Ok(_) => {
                        tracing::info!(session = %sftp.session, %path, "removed a temporary file left by an interrupted transfer")
                    }
                    Err(e) => tracing::debug!(%path, "cannot remove a stale temporary file: {e}"),
                }
            }
        }
        HostResult::Ok(())
    };
    match tokio::time::timeout(CLEANUP_TIMEOUT, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%dir, "stale temporary file cleanup skipped: {e}"),
        Err(_) => tracing::debug!(%dir, "stale temporary file cleanup timed out"),
    }
}

// ---------------------------------------------------------------------------------
// Upload.

/// Copies the local file `req.local` to the remote path `req.remote`, atomically.
pub async fn upload(
    conn: Arc<Connection>,
    sftp: Arc<SftpChannel>,
    req: TransferRequest,
    ctl: TransferControl,
) -> HostResult<TransferReport> {
    let started = Instant::now();
    let mut temp = RemoteTemp::new(sftp.clone());
    let result = tokio::select! {
        r = upload_inner(&conn, &sftp, &req, &ctl, &mut temp) => r,
        _ = ctl.cancel.cancelled() => Err(HostError::Cancelled),
    };
    if result.is_err() {
        temp.remove_now().await;
    }
    let (remote_path, bytes, replaced) = result?;
    Ok(TransferReport {
        local_path: req.local.display().to_string(),
        remote_path,
        bytes,
        duration: started.elapsed(),
        replaced,
    })
}

async fn upload_inner(
    conn: &Arc<Connection>,
    sftp: &Arc<SftpChannel>,
    req: &TransferRequest,
    ctl: &TransferControl,
    temp: &mut RemoteTemp,
) -> HostResult<(String, u64, bool)> {
    let local_shown = req.local.display().to_string();

    // The source. O_NONBLOCK: a FIFO opens at once (and is refused below as not a
    // regular file) instead of waiting for a writer forever; regular files ignore it.
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&req.local)
        .await
        .map_err(|e| {
            HostError::from_io(&format!("cannot open the local file {local_shown}"), &e)
        })?;
    let meta = file.metadata().await.map_err(|e| {
        HostError::from_io(&format!("cannot stat the local file {local_shown}"), &e)
    })?;
    if meta.is_dir() {
        return Err(HostError::Invalid(format!(
            "the local path {local_shown} is a directory; only single files can be uploaded"
        )));
    }
    if !meta.is_file() {
        return Err(HostError::Invalid(format!(
            "the local path {local_shown} is not a regular file (a FIFO, socket or device); only regular files can be uploaded"
        )));
    }
    let size = meta.len();
    if let Some(max) = req.max_size
        && size > max
    {
        return Err(too_large(
            &format!("the local file {local_shown}"),
            size,
            max,
        ));
    }

    // The destination.
    let (dir_arg, name) = split_remote(&remote_arg(&req.remote)?);
    if name.is_empty() || name == "." || name == ".." {
        return Err(HostError::Invalid(format!(
            "the remote path {:?} does not name a file; give the full path of the file to write",
            req.remote
        )));
    }
    let dir = meta::canonicalize(sftp, &dir_arg)
        .await
        .map_err(|e| match e {
            HostError::NotFound(_) => HostError::NotFound(format!(
                "the remote directory {dir_arg} does not exist; create it first or check the path"
            )),
            other => other,
        })?;
    match stat_opt(sftp, &dir).await? {
        Some(attrs) if attrs.is_dir() => {}
        Some(_) => {
            return Err(HostError::Invalid(format!(
                "{dir} is not a directory on the remote host; give the full path of the file to write"
            )));
        }
        None => {
            return Err(HostError::NotFound(format!(
                "the remote directory {dir} does not exist; create it first or check the path"
            )));
        }
    }
    let mut dest = join_remote(&dir, &name);
    let mut dest_dir = dir;
    let mut existing = lstat_opt(sftp, &dest).await?;
    if existing.as_ref().is_some_and(|a| a.is_symlink()) {
        // Write through a symlink to an existing file, like cp and scp do.
        if let Some(target) = stat_opt(sftp, &dest).await? {
            dest = meta::canonicalize(sftp, &dest).await?;
            dest_dir = split_remote(&dest).0;
            existing = Some(target);
        }
    }
    if let Some(attrs) = &existing {
        if attrs.is_dir() {
            return Err(HostError::Invalid(format!(
                "{dest} is a directory on the remote host; give the full path of the file to write"
            )));
        }
        if req.mode == WriteMode::CreateNew {
            return Err(HostError::AlreadyExists(format!(
                "{dest} already exists on the remote host; nothing was written (overwrite it, or choose another name)"
            )));
        }
    }

    // Free space, before any byte moves.
    match meta::space(conn, sftp, &dest_dir).await {
        Ok(space) if space.available < needed_space(size) => {
            return Err(no_space(
                &format!("on the remote file system holding {dest_dir}"),
                size,
                space.available,
            ));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(session = %sftp.session, dir = %dest_dir, "cannot check free space ({e}); uploading anyway")
        }
    }

    // The temporary file, with the permissions of the file it replaces or of the source.
    let mode = match &existing {
        Some(attrs) if attrs.permissions.is_some() => attrs.permissions.unwrap_or(0o644) & 0o777,
        _ => meta.mode() & 0o777,
    };
    clean_leftovers(sftp).await;
    let temp_name = temp::temp_name(&name);
    let temp_path = join_remote(&dest_dir, &temp_name);
    let attrs = FileAttributes {
        permissions: Some(mode),
        ..Default::default()
    };
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
    temp.track(temp_path.clone(), &temp_name);
    let handle = match sftp.raw().open(temp_path.clone(), flags, attrs).await {
        Ok(h) => RemoteHandle::new(sftp.clone(), h.handle),
        Err(e) => {
            if status_code(&e).is_some() {
                // The server answered: nothing was created.
                temp.disarm();
            }
            return Err(match status_code(&e) {
                Some(StatusCode::PermissionDenied) => HostError::PermissionDenied(format!(
                    "cannot write in the remote directory {dest_dir}: permission denied; choose a directory you can write to"
                )),
                _ => sftp.fail("cannot create a temporary file in", &dest_dir, e),
            });
        }
    };

    // Leftovers of crashed transfers, judged by the server's clock.
    if let Ok(now) = sftp.raw().fstat(handle.get()).await
        && let Some(now) = now.attrs.mtime
    {
        clean_stale_remote(sftp, &dest_dir, u64::from(now), ctl.stale_age).await;
    }

    // The bytes, read blocking again.
    let std_file = file.into_std().await;
    clear_nonblocking(&std_file);
    let pump_started = Instant::now();
    let lanes = Lanes::for_upload(conn, sftp, handle.get(), &temp_path, size).await?;
    pump_upload(&lanes, std_file, size, &local_shown, &dest_dir, ctl).await?;
    lanes.close(&temp_path).await;
    let flush_started = Instant::now();

    // Flush and check, then publish.
    if sftp.has_extension(russh_sftp::extensions::FSYNC, "1") {
        match sftp.raw().fsync(handle.get()).await {
            Ok(_) => {}
            // Refused by the server's configuration: the rename still publishes whole data.
            Err(e) if meta::refused(&e) => {
                tracing::debug!(session = %sftp.session, "fsync refused: {e}")
            }
            Err(e) => return Err(sftp.fail("cannot flush", &temp_path, e)),
        }
    }
    let written = sftp
        .raw()
        .fstat(handle.get())
        .await
        .map_err(|e| sftp.fail("cannot stat", &temp_path, e))?;
    handle.close(&temp_path).await?;
    if written.attrs.size.is_some_and(|s| s != size) {
        return Err(HostError::Other(format!(
            "the uploaded copy of {local_shown} has {} bytes instead of {size}; nothing was replaced, try again",
            written.attrs.size.unwrap_or(0)
        )));
    }
    let replaced = match req.mode {
        WriteMode::CreateNew => {
            publish_remote(sftp, &temp_path, &dest, false).await?;
            false
        }
        WriteMode::Overwrite => {
            let existed = lstat_opt(sftp, &dest).await?.is_some();
            publish_remote(sftp, &temp_path, &dest, true).await?;
            existed
        }
    };
    temp.disarm();
    tracing::debug!(
        session = %sftp.session, %dest, bytes = size,
        pump_ms = (flush_started - pump_started).as_millis() as u64,
        flush_and_publish_ms = flush_started.elapsed().as_millis() as u64,
        "upload finished"
    );
    Ok((dest, size, replaced))
}

/// Makes reads of `file` (opened with `O_NONBLOCK`) block again; best effort, as the flag
/// does not change reads of regular files on Linux anyway.
fn clear_nonblocking(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a valid open descriptor, reading then setting its status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// Renames the finished temporary file into place.
async fn publish_remote(
    sftp: &SftpChannel,
    temp_path: &str,
    dest: &str,
    overwrite: bool,
) -> HostResult<()> {
    meta::rename(sftp, temp_path, dest, overwrite).await.map_err(|e| match e {
        HostError::AlreadyExists(_) => HostError::AlreadyExists(format!(
            "{dest} appeared on the remote host while uploading; it was not replaced and the upload was discarded \
             (overwrite it, or choose another name)"
        )),
        other => other,
    })
}

/// Streams `size` bytes of `file` to the remote file open on every lane, with at most
/// `ctl.window` writes and the flow's allowance of bytes in flight. The local file is read
/// on a blocking thread.
async fn pump_upload(
    lanes: &Lanes<'_>,
    file: File,
    size: u64,
    local_shown: &str,
    dest_dir: &str,
    ctl: &TransferControl,
) -> HostResult<()> {
    let sftp = lanes.primary();
    let window = ctl.window.max(1);
    let chunk = u64::from(sftp.write_len);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<(u64, Vec<u8>)>>(8);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            // Read into fresh capacity: no zeroing of memory about to be overwritten.
            let mut buf = Vec::with_capacity(len as usize);
            let read = match (&file).take(len).read_to_end(&mut buf) {
                Ok(n) if n as u64 == len => Ok((offset, buf)),
                Ok(_) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Err(e) => Err(e),
            };
            let failed = read.is_err();
            if tx.blocking_send(read).is_err() || failed {
                return;
            }
            offset += len;
        }
    });

    let mut progress = Progress::new(ctl.progress.clone(), size);
    let mut inflight = FuturesUnordered::new();
    let mut input_done = size == 0;
    let mut done = 0u64;
    let mut flow = Flow::new();
    loop {
        let room = inflight.len() < window && lanes.in_flight() < flow.allowed(done);
        tokio::select! {
            biased;
            Some(result) = inflight.next(), if !inflight.is_empty() => {
                let (lane, len, latency, result): (usize, u64, Duration, Result<_, russh_sftp::client::error::Error>) = result;
                if let Err(e) = result {
                    return Err(write_failure(sftp, dest_dir, e).await);
                }
                lanes.finished(lane, len);
                flow.observe(latency);
                done += len;
                progress.update(done);
            }
            next = rx.recv(), if !input_done && room => match next {
                Some(Ok((offset, data))) => {
                    let len = data.len() as u64;
                    let lane = lanes.pick(len);
                    let (lane_sftp, handle) = lanes.get(lane);
                    inflight.push(async move {
                        let sent = Instant::now();
                        let result = lane_sftp.raw().write(handle, offset, data).await;
                        (lane, len, sent.elapsed(), result)
                    });
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(HostError::Other(format!(
                        "the local file {local_shown} got shorter while it was uploaded; nothing was replaced, try again"
                    )));
                }
                Some(Err(e)) => return Err(HostError::from_io(&format!("cannot read the local file {local_shown}"), &e)),
                None => input_done = true,
            },
            else => break,
        }
    }
    if done != size {
        return Err(HostError::Other(format!(
            "only {done} of {size} bytes of {local_shown} were sent; nothing was replaced, try again"
        )));
    }
    tracing::debug!(session = %sftp.session, lanes = lanes.len(), "upload flow: {}", flow.describe(done));
    Ok(())
}

/// Explains a failed remote write: a full disk (which OpenSSH reports as a plain
/// failure) or the server's reading.
async fn write_failure(
    sftp: &SftpChannel,
    dest_dir: &str,
    err: russh_sftp::client::error::Error,
) -> HostError {
    if status_code(&err) == Some(StatusCode::Failure)
        && sftp.has_extension(russh_sftp::extensions::STATVFS, "2")
        && let Ok(Ok(v)) = tokio::time::timeout(
            Duration::from_secs(5),
            sftp.raw().statvfs(dest_dir.to_string()),
        )
        .await
    {
        let unit = if v.fragment_size > 0 {
            v.fragment_size
        } else {
            v.block_size
        };
        if v.blocks_avail.saturating_mul(unit) < u64::from(sftp.write_len) * 2 {
            return HostError::NoSpace(format!(
                "the remote file system holding {dest_dir} ran out of space during the upload; nothing was \
                     replaced and the partial file was removed. Free some space and try again"
            ));
        }
    }
    sftp.fail("cannot write a temporary file in", dest_dir, err)
}

// ---------------------------------------------------------------------------------
// Download.

/// Removes temporary files left by crashed transfers in the local directory `dir`.
fn clean_stale_local(dir: &Path, max_age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = unix_now();
    for entry in entries.take(STALE_SCAN_LIMIT as usize).flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !temp::is_temp_name(name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        if meta.is_file() && temp::is_stale(name, modified, now, max_age.as_secs()) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a temporary file left by an interrupted transfer")
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), "cannot remove a stale temporary file: {e}")
                }
            }
        }
    }
}

/// Copies the remote file `req.remote` to the local path `req.local`, atomically.
pub async fn download(
    conn: Arc<Connection>,
    sftp: Arc<SftpChannel>,
    req: TransferRequest,
    ctl: TransferControl,
) -> HostResult<TransferReport> {
    let started = Instant::now();
    let mut temp = LocalTemp::default();
    let result = tokio::select! {
        r = download_inner(&conn, &sftp, &req, &ctl, &mut temp) => r,
        _ = ctl.cancel.cancelled() => Err(HostError::Cancelled),
    };
    if result.is_err() {
        temp.remove_now().await;
    }
    let (remote_path, bytes, replaced) = result?;
    Ok(TransferReport {
        local_path: req.local.display().to_string(),
        remote_path,
        bytes,
        duration: started.elapsed(),
        replaced,
    })
}

async fn download_inner(
    conn: &Connection,
    sftp: &Arc<SftpChannel>,
    req: &TransferRequest,
    ctl: &TransferControl,
    temp: &mut LocalTemp,
) -> HostResult<(String, u64, bool)> {
    let dest = req.local.clone();
    let dest_shown = dest.display().to_string();

    // The source.
    let src = remote_arg(&req.remote)?;
    let attrs = match sftp.raw().stat(src.clone()).await {
        Ok(a) => a.attrs,
        Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) => {
            return Err(HostError::NotFound(format!(
                "the remote file {} does not exist; check the path (list its directory to see what is there)",
                req.remote
            )));
        }
        Err(e) => return Err(sftp.fail("cannot stat", &req.remote, e)),
    };
    let kind = attrs.permissions.map(FileKind::from_mode);
    if kind == Some(FileKind::Directory) {
        return Err(HostError::Invalid(format!(
            "the remote path {} is a directory; only single files can be downloaded",
            req.remote
        )));
    }
    if kind.is_some_and(|k| k != FileKind::File) {
        return Err(not_regular(&req.remote));
    }
    let remote_abs = meta::canonicalize(sftp, &req.remote).await?;

    // The destination.
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(HostError::Invalid(format!(
            "the local path {dest_shown} does not name a file; give the full path of the file to write"
        )));
    };
    let dir = dir.to_path_buf();
    let name = name.to_string_lossy().into_owned();
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(HostError::Invalid(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HostError::NotFound(format!(
                "the local directory {} does not exist; create it first or check the path",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(HostError::from_io(
                &format!("cannot use the local directory {}", dir.display()),
                &e,
            ));
        }
    }
    let existing = std::fs::symlink_metadata(&dest).ok();
    if let Some(m) = &existing {
        if m.is_dir() {
            return Err(HostError::Invalid(format!(
                "the local path {dest_shown} is a directory; give the full path of the file to write"
            )));
        }
        if req.mode == WriteMode::CreateNew {
            return Err(HostError::AlreadyExists(format!(
                "the local file {dest_shown} already exists; nothing was written (overwrite it, or choose another name)"
            )));
        }
    }

    // Open the source, then check what was opened: its kind (a FIFO or device swapped in
    // since the stat is refused), and its size, which is the one copied, against
    // `max_size` and the free space, before any byte moves.
    let handle = match sftp
        .raw()
        .open(src.clone(), OpenFlags::READ, FileAttributes::empty())
        .await
    {
        Ok(h) => RemoteHandle::new(sftp.clone(), h.handle),
        Err(e) => return Err(sftp.fail("cannot open", &remote_abs, e)),
    };
    let opened = sftp.raw().fstat(handle.get()).await.ok().map(|a| a.attrs);
    if let Some(attrs) = &opened {
        require_regular(attrs, &req.remote)?;
    }
    let size = opened
        .as_ref()
        .and_then(|a| a.size)
        .or(attrs.size)
        .unwrap_or(0);
    if let Some(max) = req.max_size.filter(|m| size > *m) {
        return Err(too_large(
            &format!("the remote file {remote_abs}"),
            size,
            max,
        ));
    }
    match local::space(&dir) {
        Ok(space) if space.available < needed_space(size) => {
            return Err(no_space(
                &format!("on the local file system holding {}", dir.display()),
                size,
                space.available,
            ));
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot check local free space ({e}); downloading anyway")
        }
    }

    // The temporary file, with the permissions of the file it replaces or of the source.
    let mode = match &existing {
        Some(m) if m.is_file() => m.mode() & 0o777,
        _ => attrs.permissions.unwrap_or(0o644) & 0o777,
    };
    clean_leftovers(sftp).await;
    let temp_name = temp::temp_name(&name);
    let temp_path = dir.join(&temp_name);
    temp.track(temp_path.clone(), &temp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(|e| {
            temp.disarm();
            HostError::from_io(
                &format!("cannot create a temporary file in {}", dir.display()),
                &e,
            )
        })?;
    {
        let (dir, age) = (dir.clone(), ctl.stale_age);
        let _ = tokio::task::spawn_blocking(move || clean_stale_local(&dir, age)).await;
    }

    // The bytes.
    let pump_started = Instant::now();
    let lanes = Lanes::for_download(conn, sftp, handle.get(), &src, opened.as_ref(), size).await;
    pump_download(&lanes, file, size, &remote_abs, &dest_shown, ctl).await?;
    lanes.close(&remote_abs).await;
    let publish_started = Instant::now();
    handle.close(&remote_abs).await?;

    // Publish.
    let replaced = publish_local(&temp_path, &dest, req.mode).await?;
    temp.disarm();
    tracing::debug!(
        session = %sftp.session, dest = %dest_shown, bytes = size,
        pump_and_flush_ms = (publish_started - pump_started).as_millis() as u64,
        publish_ms = publish_started.elapsed().as_millis() as u64,
        "download finished"
    );
    Ok((remote_abs, size, replaced))
}

/// Streams `size` bytes of the remote file open on every lane into `file` (written, then
/// flushed, on a blocking thread), with at most `ctl.window` reads and the flow's
/// allowance of bytes in flight.
async fn pump_download(
    lanes: &Lanes<'_>,
    file: File,
    size: u64,
    remote_abs: &str,
    dest_shown: &str,
    ctl: &TransferControl,
) -> HostResult<()> {
    let sftp = lanes.primary();
    let window = ctl.window.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u64, Vec<u8>)>(16);
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut kicked = 0u64;
        while let Some((offset, data)) = rx.blocking_recv() {
            file.write_all_at(&data, offset)?;
            let end = offset + data.len() as u64;
            if end >= kicked + WRITEBACK_STEP {
                start_writeback(&file, kicked, end - kicked);
                kicked = end;
            }
        }
        let flush_started = Instant::now();
        file.sync_all()?;
        tracing::trace!(
            flush_ms = flush_started.elapsed().as_millis() as u64,
            "local file flushed"
        );
        Ok(())
    });
    let writer_failed =
        |e: io::Error| HostError::from_io(&format!("cannot write the local file {dest_shown}"), &e);

    let chunk = u64::from(sftp.read_len);
    let mut progress = Progress::new(ctl.progress.clone(), size);
    let mut inflight = FuturesUnordered::new();
    let read = |offset: u64, len: u32| {
        let lane = lanes.pick(u64::from(len));
        let (lane_sftp, handle) = lanes.get(lane);
        async move {
            let sent = Instant::now();
            let result = lane_sftp.raw().read(handle, offset, len).await;
            (lane, offset, len, sent.elapsed(), result)
        }
    };
    let mut next = 0u64;
    let mut done = 0u64;
    let mut flow = Flow::new();
    loop {
        let allowed = flow.allowed(done);
        while inflight.len() < window && next < size && next - done < allowed {
            let len = chunk.min(size - next) as u32;
            inflight.push(read(next, len));
            next += u64::from(len);
        }
        let Some((lane, offset, len, latency, result)) = inflight.next().await else {
            break;
        };
        lanes.finished(lane, u64::from(len));
        flow.observe(latency);
        let data = match result {
            Ok(d) if !d.data.is_empty() => d.data,
            Ok(_) => return Err(shrank(remote_abs)),
            Err(e) if status_code(&e) == Some(StatusCode::Eof) => return Err(shrank(remote_abs)),
            Err(e) => return Err(lanes.get(lane).0.fail("cannot read", remote_abs, e)),
        };
        let got = data.len() as u64;
        if got > u64::from(len) {
            return Err(HostError::Other(format!(
                "the server returned more data than asked for reading {remote_abs}"
            )));
        }
        if got < u64::from(len) {
            // A short read: ask for the rest.
            inflight.push(read(offset + got, len - got as u32));
        }
        if tx.send((offset, data)).await.is_err() {
            drop(tx);
            return Err(match writer.await {
                Ok(Err(e)) => writer_failed(e),
                _ => HostError::Other(format!("the local writer of {dest_shown} stopped")),
            });
        }
        done += got;
        progress.update(done);
    }
    drop(tx);
    tracing::debug!(session = %sftp.session, lanes = lanes.len(), "download flow: {}", flow.describe(done));
    match writer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(writer_failed(e)),
        Err(e) => Err(HostError::Other(format!(
            "the local writer of {dest_shown} failed: {e}"
        ))),
    }
}

/// Bytes written locally between two requests to start writing them back to disk, so
/// that the final `fsync` has little left to wait for.
const WRITEBACK_STEP: u64 = 8 * 1024 * 1024;

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to disk, without
/// waiting (Linux `sync_file_range`; elsewhere nothing).
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor; the call only schedules I/O.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// The refusal of a remote path that is not a regular file (a FIFO or a device could
/// block the server or never end).
fn not_regular(remote: &str) -> HostError {
    HostError::Invalid(format!(
        "the remote path {remote} is not a regular file (a FIFO, socket or device); only regular files can be read"
    ))
}

/// Refuses attributes of anything but a regular file (attributes without a mode pass:
/// nothing is known). `path` names it in the error.
fn require_regular(attrs: &FileAttributes, path: &str) -> HostResult<()> {
    match attrs.permissions.map(FileKind::from_mode) {
        None | Some(FileKind::File) => Ok(()),
        Some(FileKind::Directory) => Err(HostError::Invalid(format!(
            "{path} is a directory on the remote host, not a file"
        ))),
        Some(_) => Err(not_regular(path)),
    }
}

fn shrank(remote_abs: &str) -> HostError {
    HostError::Other(format!(
        "the remote file {remote_abs} got shorter while it was downloaded; nothing was replaced, try again"
    ))
}

/// Puts the finished local temporary file in place. Returns whether a file was replaced.
async fn publish_local(temp_path: &Path, dest: &Path, mode: WriteMode) -> HostResult<bool> {
    let (temp_path, dest) = (temp_path.to_path_buf(), dest.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let shown = dest.display().to_string();
        let replaced = match mode {
            WriteMode::CreateNew => {
                rename_noreplace(&temp_path, &dest).map_err(|e| {
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        HostError::AlreadyExists(format!(
                            "the local file {shown} appeared while downloading; it was not replaced and the download \
                             was discarded (overwrite it, or choose another name)"
                        ))
                    } else {
                        HostError::from_io(&format!("cannot put the downloaded file in place at {shown}"), &e)
                    }
                })?;
                false
            }
            WriteMode::Overwrite => {
                let existed = std::fs::symlink_metadata(&dest).is_ok();
                std::fs::rename(&temp_path, &dest)
                    .map_err(|e| HostError::from_io(&format!("cannot put the downloaded file in place at {shown}"), &e))?;
                existed
            }
        };
        if let Some(dir) = dest.parent() {
            // Make the rename itself durable; best effort.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(replaced)
    })
    .await
    .map_err(|e| HostError::Other(format!("publishing the download failed: {e}")))?
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), atomically.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| {
            CString::new(p.as_os_str().as_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
        };
        let (f, t) = (c(from)?, c(to)?);
        // SAFETY: both are valid NUL-terminated paths; AT_FDCWD is always valid.
        let rc = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                f.as_ptr(),
                libc::AT_FDCWD,
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !matches!(
            err.raw_os_error(),
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
        ) {
            return Err(err);
        }
    }
    // Without renameat2 support: a hard link fails atomically when `to` exists.
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            let _ = std::fs::remove_file(from);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => {
            // No hard links on this file system either: check, then rename (racy).
            tracing::debug!("neither renameat2 nor link work here ({e}); using check-then-rename");
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
    }
}

/// Reads at most `max` bytes from the start of the remote file `path` (for resources:
/// small files shown to the client). Returns the bytes and the file's size.
pub async fn read_head(
    sftp: &Arc<SftpChannel>,
    path: &str,
    max: u64,
) -> HostResult<(Vec<u8>, u64)> {
    let remote = crate::sftp::remote_arg(path)?;
    // Only a regular file is opened: opening a FIFO blocks the server (and with it every
    // request on the shared SFTP session) until a writer appears, and a device never ends.
    match stat_opt(sftp, path).await? {
        Some(attrs) => require_regular(&attrs, path)?,
        None => {
            return Err(HostError::NotFound(format!(
                "{path} does not exist on the remote host; check the path"
            )));
        }
    }
    let handle = match sftp
        .raw()
        .open(remote.clone(), OpenFlags::READ, FileAttributes::empty())
        .await
    {
        Ok(h) => RemoteHandle::new(sftp.clone(), h.handle),
        Err(e) => return Err(sftp.fail("cannot open", path, e)),
    };
    let attrs = sftp.raw().fstat(handle.get()).await.ok().map(|a| a.attrs);
    if let Some(attrs) = &attrs {
        require_regular(attrs, path)?;
    }
    let size = attrs.and_then(|a| a.size).unwrap_or(0);
    let mut data = Vec::new();
    while (data.len() as u64) < max {
        let want = (max - data.len() as u64).min(u64::from(sftp.read_len)) as u32;
        match sftp.raw().read(handle.get(), data.len() as u64, want).await {
            Ok(d) if d.data.is_empty() => break,
            Ok(d) => data.extend_from_slice(&d.data),
            Err(e) if status_code(&e) == Some(StatusCode::Eof) => break,
            Err(e) => return Err(sftp.fail("cannot read", path, e)),
        }
    }
    handle.close(path).await?;
    let size = size.max(data.len() as u64);
    Ok((data, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::temp::ActiveTemp;

    #[test]
    fn space_margin_is_small_but_present() {
        assert_eq!(needed_space(0), 64 * 1024);
        assert_eq!(needed_space(1 << 30), (1 << 30) + (1 << 20) + 64 * 1024);
        assert_eq!(needed_space(u64::MAX), u64::MAX);
    }

    #[test]
    fn rename_noreplace_refuses_an_existing_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "old").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
        assert!(a.exists());
        let c = dir.path().join("c");
        rename_noreplace(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "new");
    }

    #[test]
    fn stale_local_temps_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".f.mcpssh-aaaaaaaaaaaa.part");
        let active = dir.path().join(".f.mcpssh-bbbbbbbbbbbb.part");
        let other = dir.path().join("f.txt");
        for p in [&stale, &active, &other] {
            std::fs::write(p, "x").unwrap();
        }
        let guard = ActiveTemp::register(".f.mcpssh-bbbbbbbbbbbb.part");
        std::thread::sleep(Duration::from_millis(1100));
        clean_stale_local(dir.path(), Duration::from_secs(1));
        assert!(!stale.exists());
        assert!(active.exists());
        assert!(other.exists());
        drop(guard);
        // Young files are kept.
        std::fs::write(&stale, "x").unwrap();
        clean_stale_local(dir.path(), Duration::from_secs(60));
        assert!(stale.exists());
    }

    #[tokio::test]
    async fn progress_is_rate_limited_but_reports_the_end() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut p = Progress::new(
            Some(Arc::new(move |d, t| s.lock().unwrap().push((d, t)))),
            100,
        );
        for d in 1..=100 {
            p.update(d);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&(0, 100)));
        assert_eq!(seen.last(), Some(&(100, 100)));
        assert!(seen.len() <= 3, "{seen:?}");
    }
}
