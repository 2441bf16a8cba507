//! The download driver: a remote file to a local path, in named steps (see the overview
//! of the transfer engine): check the remote source and the local destination, open the
//! source and check what was opened and the local free space, create the local
//! temporary file, receive the bytes over the lanes, then publish the file locally.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::flow::Flow;
use super::leftovers::{clean_leftovers, clean_stale_local};
use super::progress::Progress;
use super::publish_local::publish_local;
use super::{
    Moved, TransferControl, TransferReport, TransferRequest, WriteMode, drive, needed_space,
    no_space, too_large,
};
use crate::error::{HostError, HostResult};
use crate::files::FileKind;
use crate::local;
use crate::sftp::error::status_code;
use crate::sftp::guard::LocalTemp;
use crate::sftp::handle::RemoteHandle;
use crate::sftp::lanes::Lanes;
use crate::sftp::meta::{self, not_regular, require_regular};
use crate::sftp::{SftpChannel, remote_arg, temp};
use crate::ssh::Connection;

/// Copies the remote file `req.remote` to the local path `req.local`, atomically, over
/// `sftp` (a channel of `conn`, on which the extra lanes of a large file are opened).
pub async fn download(
    conn: Arc<Connection>,
    sftp: Arc<SftpChannel>,
    req: TransferRequest,
    ctl: TransferControl,
) -> HostResult<TransferReport> {
    drive(
        &req,
        &ctl,
        LocalTemp::default(),
        async |temp: &mut LocalTemp| download_steps(&conn, &sftp, &req, &ctl, temp).await,
    )
    .await
}

/// The remote file to copy, as checked by name.
struct Source {
    /// The path as sent to the server.
    arg: String,
    /// The absolute path, for messages and the report.
    path: String,
    /// Its attributes by name.
    attrs: FileAttributes,
}

/// The source open for reading, with what was opened.
struct Opened {
    handle: RemoteHandle,
    /// The attributes read through the handle, when the server gave them.
    attrs: Option<FileAttributes>,
    /// The bytes to copy.
    size: u64,
}

/// Where the download goes, checked.
struct Destination {
    path: PathBuf,
    /// `path` for messages.
    shown: String,
    /// The directory of `path`, where the temporary file is created.
    dir: PathBuf,
    /// The file name, which names the temporary file.
    name: String,
    /// What is at `path` now (not following a symlink), if anything.
    existing: Option<Metadata>,
}

/// The steps of a download, in order.
async fn download_steps(
    conn: &Connection,
    sftp: &Arc<SftpChannel>,
    req: &TransferRequest,
    ctl: &TransferControl,
    temp: &mut LocalTemp,
) -> HostResult<Moved> {
    let source = check_source(sftp, req).await?;
    let dest = check_destination(req)?;
    let opened = open_source(sftp, &source, req).await?;
    check_free_space(&dest.dir, opened.size)?;
    clean_leftovers(sftp).await;
    let (file, temp_path) = create_temp(temp, &dest, &source.attrs)?;
    clean_stale_in(&dest.dir, ctl).await;
    let pump_started = Instant::now();
    let size = opened.size;
    receive_bytes(conn, sftp, &source, opened, file, &dest.shown, ctl).await?;
    let publish_started = Instant::now();
    let replaced = publish_local(&temp_path, &dest.path, req.mode).await?;
    temp.disarm();
    tracing::debug!(
        session = %sftp.session, dest = %dest.shown, bytes = size,
        pump_and_flush_ms = (publish_started - pump_started).as_millis() as u64,
        publish_ms = publish_started.elapsed().as_millis() as u64,
        "download finished"
    );
    Ok(Moved {
        remote_path: source.path,
        bytes: size,
        replaced,
    })
}

/// Checks by name that the remote source exists and is a regular file.
async fn check_source(sftp: &SftpChannel, req: &TransferRequest) -> HostResult<Source> {
    let arg = remote_arg(&req.remote)?;
    let attrs = match sftp.raw().stat(arg.clone()).await {
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
    let path = meta::canonicalize(sftp, &req.remote).await?;
    Ok(Source { arg, path, attrs })
}

/// Checks the local destination: its directory must exist, a directory is never
/// replaced, and an existing file is refused in create-new mode.
fn check_destination(req: &TransferRequest) -> HostResult<Destination> {
    let path = req.local.clone();
    let shown = path.display().to_string();
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(HostError::Invalid(format!(
            "the local path {shown} does not name a file; give the full path of the file to write"
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
    let existing = std::fs::symlink_metadata(&path).ok();
    if let Some(m) = &existing {
        if m.is_dir() {
            return Err(HostError::Invalid(format!(
                "the local path {shown} is a directory; give the full path of the file to write"
            )));
        }
        if req.mode == WriteMode::CreateNew {
            return Err(HostError::AlreadyExists(format!(
                "the local file {shown} already exists; nothing was written (overwrite it, or choose another name)"
            )));
        }
    }
    Ok(Destination {
        path,
        shown,
        dir,
        name,
        existing,
    })
}

/// Opens the source, then checks what was opened: its kind (a FIFO or device swapped in
/// since the stat is refused) and its size, which is the one copied, against `max_size`.
async fn open_source(
    sftp: &Arc<SftpChannel>,
    source: &Source,
    req: &TransferRequest,
) -> HostResult<Opened> {
    let handle = match sftp
        .raw()
        .open(source.arg.clone(), OpenFlags::READ, FileAttributes::empty())
        .await
    {
        Ok(h) => RemoteHandle::new(sftp.clone(), h.handle),
        Err(e) => return Err(sftp.fail("cannot open", &source.path, e)),
    };
    let attrs = sftp.raw().fstat(handle.get()).await.ok().map(|a| a.attrs);
    if let Some(attrs) = &attrs {
        require_regular(attrs, &req.remote)?;
    }
    let size = attrs
        .as_ref()
        .and_then(|a| a.size)
        .or(source.attrs.size)
        .unwrap_or(0);
    if let Some(max) = req.max_size.filter(|m| size > *m) {
        return Err(too_large(
            &format!("the remote file {}", source.path),
            size,
            max,
        ));
    }
    Ok(Opened {
        handle,
        attrs,
        size,
    })
}

/// Refuses the download, before any byte moves, when the local file system holding
/// `dir` lacks the space for `size` bytes. Space that cannot be learnt does not stop it.
fn check_free_space(dir: &Path, size: u64) -> HostResult<()> {
    match local::space(dir) {
        Ok(space) if space.available < needed_space(size) => Err(no_space(
            &format!("on the local file system holding {}", dir.display()),
            size,
            space.available,
        )),
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "cannot check local free space ({e}); downloading anyway");
            Ok(())
        }
    }
}

/// Creates the temporary file next to the destination (guarded by `temp` from before it
/// exists), with the permissions of the file it replaces, else those of the source
/// (`source_attrs`). Returns it open for writing, and its path.
fn create_temp(
    temp: &mut LocalTemp,
    dest: &Destination,
    source_attrs: &FileAttributes,
) -> HostResult<(File, PathBuf)> {
    let mode = match &dest.existing {
        Some(m) if m.is_file() => m.mode() & 0o777,
        _ => source_attrs.permissions.unwrap_or(0o644) & 0o777,
    };
    let temp_name = temp::temp_name(&dest.name);
    let temp_path = dest.dir.join(&temp_name);
    temp.track(temp_path.clone(), &temp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp_path)
        .map_err(|e| {
            temp.disarm();
            HostError::from_io(
                &format!("cannot create a temporary file in {}", dest.dir.display()),
                &e,
            )
        })?;
    Ok((file, temp_path))
}

/// Removes leftovers of crashed transfers in the local directory `dir`.
async fn clean_stale_in(dir: &Path, ctl: &TransferControl) {
    let (dir, age) = (dir.to_path_buf(), ctl.stale_age);
    let _ = tokio::task::spawn_blocking(move || clean_stale_local(&dir, age)).await;
}

/// Receives the opened source's bytes into `file` (flushed at the end), over the lanes a
/// file of its size gets (closed again after a success), then closes the source.
async fn receive_bytes(
    conn: &Connection,
    sftp: &SftpChannel,
    source: &Source,
    opened: Opened,
    file: File,
    dest_shown: &str,
    ctl: &TransferControl,
) -> HostResult<()> {
    let Opened {
        handle,
        attrs,
        size,
    } = opened;
    let lanes =
        Lanes::for_download(conn, sftp, handle.get(), &source.arg, attrs.as_ref(), size).await;
    pump(&lanes, file, size, &source.path, dest_shown, ctl).await?;
    lanes.close(&source.path).await;
    handle.close(&source.path).await
}

/// Streams `size` bytes of the remote file open on every lane into `file` (written, then
/// flushed, on a blocking thread), with at most `ctl.window` reads and the flow's
/// allowance of bytes in flight.
async fn pump(
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

fn shrank(remote_abs: &str) -> HostError {
    HostError::Other(format!(
        "the remote file {remote_abs} got shorter while it was downloaded; nothing was replaced, try again"
    ))
}
