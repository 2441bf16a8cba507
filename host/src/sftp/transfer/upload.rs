//! The upload driver: a local file to a remote path, in named steps (see the overview of
//! the transfer engine): open and check the local source, check the remote destination
//! and its free space, create the remote temporary file, send the bytes over the lanes,
//! flush and check the copy, then publish it by renaming.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::flow::Flow;
use super::leftovers::{clean_leftovers, clean_stale_remote};
use super::progress::Progress;
use super::{
    Moved, TransferControl, TransferReport, TransferRequest, WriteMode, drive, needed_space,
    no_space, too_large,
};
use crate::error::{HostError, HostResult};
use crate::sftp::error::status_code;
use crate::sftp::guard::RemoteTemp;
use crate::sftp::handle::RemoteHandle;
use crate::sftp::lanes::Lanes;
use crate::sftp::meta::{self, lstat_opt, stat_opt};
use crate::sftp::{SftpChannel, join_remote, remote_arg, split_remote, temp};
use crate::ssh::Connection;

/// Copies the local file `req.local` to the remote path `req.remote`, atomically, over
/// `sftp` (a channel of `conn`, on which the extra lanes of a large file are opened).
pub async fn upload(
    conn: Arc<Connection>,
    sftp: Arc<SftpChannel>,
    req: TransferRequest,
    ctl: TransferControl,
) -> HostResult<TransferReport> {
    let temp = RemoteTemp::new(sftp.clone());
    drive(&req, &ctl, temp, async |temp: &mut RemoteTemp| {
        upload_steps(&conn, &sftp, &req, &ctl, temp).await
    })
    .await
}

/// The local file to send, open and checked.
struct Source {
    file: tokio::fs::File,
    size: u64,
    /// Its permission bits.
    mode: u32,
}

/// Where the upload goes, checked.
struct Destination {
    /// The file to write, absolute (a symlink to an existing file is followed).
    path: String,
    /// The directory of `path`, where the temporary file is created.
    dir: String,
    /// The file name the request gave, which names the temporary file.
    name: String,
    /// What is at `path` now, if anything.
    existing: Option<FileAttributes>,
}

/// The remote temporary file, created and open for writing.
struct TempFile {
    path: String,
    handle: RemoteHandle,
}

/// The steps of an upload, in order.
async fn upload_steps(
    conn: &Arc<Connection>,
    sftp: &Arc<SftpChannel>,
    req: &TransferRequest,
    ctl: &TransferControl,
    temp: &mut RemoteTemp,
) -> HostResult<Moved> {
    let local_shown = req.local.display().to_string();
    let source = open_source(req, &local_shown).await?;
    let size = source.size;
    let dest = check_destination(sftp, req).await?;
    check_free_space(conn, sftp, &dest.dir, size).await?;
    clean_leftovers(sftp).await;
    let created = create_temp(sftp, temp, &dest, source.mode).await?;
    clean_stale_by_server_clock(sftp, &created, &dest.dir, ctl).await;
    let pump_started = Instant::now();
    send_bytes(conn, sftp, &created, source, &local_shown, &dest.dir, ctl).await?;
    let flush_started = Instant::now();
    let temp_path = flush_and_check(sftp, created, size, &local_shown).await?;
    let replaced = publish(sftp, &temp_path, &dest.path, req.mode).await?;
    temp.disarm();
    tracing::debug!(
        session = %sftp.session, dest = %dest.path, bytes = size,
        pump_ms = (flush_started - pump_started).as_millis() as u64,
        flush_and_publish_ms = flush_started.elapsed().as_millis() as u64,
        "upload finished"
    );
    Ok(Moved {
        remote_path: dest.path,
        bytes: size,
        replaced,
    })
}

/// Opens the local source and checks that it is a regular file within `max_size`.
async fn open_source(req: &TransferRequest, local_shown: &str) -> HostResult<Source> {
    // O_NONBLOCK: a FIFO opens at once (and is refused below as not a regular file)
    // instead of waiting for a writer forever; regular files ignore it.
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
    Ok(Source {
        file,
        size,
        mode: meta.mode() & 0o777,
    })
}

/// Resolves the remote destination: its directory must exist, a symlink to an existing
/// file is written through (as cp and scp do), and an existing file is refused in
/// create-new mode.
async fn check_destination(sftp: &SftpChannel, req: &TransferRequest) -> HostResult<Destination> {
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
    let mut path = join_remote(&dir, &name);
    let mut dir = dir;
    let mut existing = lstat_opt(sftp, &path).await?;
    if existing.as_ref().is_some_and(|a| a.is_symlink()) {
        // Write through a symlink to an existing file, like cp and scp do.
        if let Some(target) = stat_opt(sftp, &path).await? {
            path = meta::canonicalize(sftp, &path).await?;
            dir = split_remote(&path).0;
            existing = Some(target);
        }
    }
    if let Some(attrs) = &existing {
        if attrs.is_dir() {
            return Err(HostError::Invalid(format!(
                "{path} is a directory on the remote host; give the full path of the file to write"
            )));
        }
        if req.mode == WriteMode::CreateNew {
            return Err(HostError::AlreadyExists(format!(
                "{path} already exists on the remote host; nothing was written (overwrite it, or choose another name)"
            )));
        }
    }
    Ok(Destination {
        path,
        dir,
        name,
        existing,
    })
}

/// Refuses the upload, before any byte moves, when the remote file system holding `dir`
/// lacks the space for `size` bytes. Space that cannot be learnt does not stop it.
async fn check_free_space(
    conn: &Arc<Connection>,
    sftp: &SftpChannel,
    dir: &str,
    size: u64,
) -> HostResult<()> {
    match meta::space(conn, sftp, dir).await {
        Ok(space) if space.available < needed_space(size) => Err(no_space(
            &format!("on the remote file system holding {dir}"),
            size,
            space.available,
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(session = %sftp.session, %dir, "cannot check free space ({e}); uploading anyway");
            Ok(())
        }
    }
}

/// Creates the temporary file next to the destination (guarded by `temp` from before it
/// exists), with the permissions of the file it replaces, else `source_mode`.
async fn create_temp(
    sftp: &Arc<SftpChannel>,
    temp: &mut RemoteTemp,
    dest: &Destination,
    source_mode: u32,
) -> HostResult<TempFile> {
    let mode = match &dest.existing {
        Some(attrs) if attrs.permissions.is_some() => attrs.permissions.unwrap_or(0o644) & 0o777,
        _ => source_mode,
    };
    let temp_name = temp::temp_name(&dest.name);
    let temp_path = join_remote(&dest.dir, &temp_name);
    let attrs = FileAttributes {
        permissions: Some(mode),
        ..Default::default()
    };
    let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
    temp.track(temp_path.clone(), &temp_name);
    match sftp.raw().open(temp_path.clone(), flags, attrs).await {
        Ok(h) => Ok(TempFile {
            path: temp_path,
            handle: RemoteHandle::new(sftp.clone(), h.handle),
        }),
        Err(e) => {
            if status_code(&e).is_some() {
                // The server answered: nothing was created.
                temp.disarm();
            }
            Err(match status_code(&e) {
                Some(StatusCode::PermissionDenied) => HostError::PermissionDenied(format!(
                    "cannot write in the remote directory {}: permission denied; choose a directory you can write to",
                    dest.dir
                )),
                _ => sftp.fail("cannot create a temporary file in", &dest.dir, e),
            })
        }
    }
}

/// Removes leftovers of crashed transfers in `dir`, judged by the server's clock (the
/// modification time of the temporary file just created).
async fn clean_stale_by_server_clock(
    sftp: &SftpChannel,
    created: &TempFile,
    dir: &str,
    ctl: &TransferControl,
) {
    if let Ok(now) = sftp.raw().fstat(created.handle.get()).await
        && let Some(now) = now.attrs.mtime
    {
        clean_stale_remote(sftp, dir, u64::from(now), ctl.stale_age).await;
    }
}

/// Sends the source's bytes into the temporary file, over the lanes a file of its size
/// gets (closed again after a success).
async fn send_bytes(
    conn: &Connection,
    sftp: &SftpChannel,
    created: &TempFile,
    source: Source,
    local_shown: &str,
    dest_dir: &str,
    ctl: &TransferControl,
) -> HostResult<()> {
    // Read blocking again.
    let file = source.file.into_std().await;
    clear_nonblocking(&file);
    let lanes =
        Lanes::for_upload(conn, sftp, created.handle.get(), &created.path, source.size).await?;
    pump(&lanes, file, source.size, local_shown, dest_dir, ctl).await?;
    lanes.close(&created.path).await;
    Ok(())
}

/// Flushes the temporary file (`fsync@openssh.com` when offered), closes it and checks
/// that it holds `size` bytes. Returns its path.
async fn flush_and_check(
    sftp: &SftpChannel,
    created: TempFile,
    size: u64,
    local_shown: &str,
) -> HostResult<String> {
    let TempFile { path, handle } = created;
    if sftp.has_extension(russh_sftp::extensions::FSYNC, "1") {
        match sftp.raw().fsync(handle.get()).await {
            Ok(_) => {}
            // Refused by the server's configuration: the rename still publishes whole data.
            Err(e) if meta::refused(&e) => {
                tracing::debug!(session = %sftp.session, "fsync refused: {e}")
            }
            Err(e) => return Err(sftp.fail("cannot flush", &path, e)),
        }
    }
    let written = sftp
        .raw()
        .fstat(handle.get())
        .await
        .map_err(|e| sftp.fail("cannot stat", &path, e))?;
    handle.close(&path).await?;
    if written.attrs.size.is_some_and(|s| s != size) {
        return Err(HostError::Other(format!(
            "the uploaded copy of {local_shown} has {} bytes instead of {size}; nothing was replaced, try again",
            written.attrs.size.unwrap_or(0)
        )));
    }
    Ok(path)
}

/// Renames the finished temporary file into place: without replacing in create-new mode
/// (a file that appeared meanwhile is `already-exists`), over the destination in
/// overwrite mode. Returns whether a file was replaced.
async fn publish(
    sftp: &SftpChannel,
    temp_path: &str,
    dest: &str,
    mode: WriteMode,
) -> HostResult<bool> {
    let (overwrite, replaced) = match mode {
        WriteMode::CreateNew => (false, false),
        WriteMode::Overwrite => (true, lstat_opt(sftp, dest).await?.is_some()),
    };
    meta::rename(sftp, temp_path, dest, overwrite)
        .await
        .map_err(|e| match e {
            HostError::AlreadyExists(_) => HostError::AlreadyExists(format!(
                "{dest} appeared on the remote host while uploading; it was not replaced and the upload was discarded \
                 (overwrite it, or choose another name)"
            )),
            other => other,
        })?;
    Ok(replaced)
}

/// Makes reads of `file` (opened with `O_NONBLOCK`) block again; best effort, as the flag
/// does not change reads of regular files on Linux anyway.
fn clear_nonblocking(file: &File) {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    if let Ok(flags) = fcntl_getfl(file) {
        let _ = fcntl_setfl(file, flags.difference(OFlags::NONBLOCK));
    }
}

/// Streams `size` bytes of `file` to the remote file open on every lane, with at most
/// `ctl.window` writes and the flow's allowance of bytes in flight. The local file is read
/// on a blocking thread.
async fn pump(
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
