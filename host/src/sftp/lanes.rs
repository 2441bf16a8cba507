//! The SFTP sessions one large transfer spreads its requests over ("lanes"): the
//! connection's shared session plus up to [`EXTRA_LANES`] more, each on its own channel
//! with the same remote file open, each request sent on the lane with the fewest bytes
//! in flight.
//!
//! Why: OpenSSH's sshd gives every session channel a fixed 2 MiB window, so one channel
//! carries at most 2 MiB of upload per round trip through sshd and `sftp-server`, and
//! one `sftp-server` process does all of the file's I/O. Measured on a 256 MiB upload
//! over loopback (median of six, `mcpssh call scp_upload`): one lane 773 ms, two
//! 635 ms, three 594 ms. Downloads (where our own 16 MiB window applies) gain little
//! (504 → 476 ms), but no lane costs more than a channel for the transfer's duration.
//!
//! An upload's extra lanes open its temporary file by name, so each must first prove it
//! opened the very file the shared session created (see [`verify_same_temp`]); a
//! download's must find the same size, time, owner and mode.
//!
//! Extra lanes are optional: one that cannot be opened (the connection cannot spare a
//! channel slot — four are always left for commands — or the server refuses another
//! channel or another SFTP session) is skipped and the transfer goes on with fewer.
//! They are opened for files of at least [`LANE_MIN_BYTES`] only, and closed when the
//! transfer ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::SftpChannel;
use super::handle::RemoteHandle;
use crate::error::{HostError, HostResult};
use crate::files::FileKind;
use crate::ssh::Connection;

/// Lanes opened besides the connection's shared SFTP session.
pub(super) const EXTRA_LANES: usize = 2;

/// How long opening an extra lane (channel, session and file) may take before the
/// transfer goes on without it.
const OPEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Bytes of the random token that proves an extra lane opened the upload's file.
const TOKEN_LEN: usize = 16;

/// How long proving that the extra lanes opened the upload's file may take.
const VERIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// How long closing the extra lanes may take before the transfer goes on without it.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Files smaller than this use the shared session only, so that small transfers, done
/// in a few round trips, never start extra `sftp-server` processes. (At 16 MiB lanes
/// already pay: an upload took 124–164 ms with them, 212–237 ms without.)
pub(super) const LANE_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// The lanes of one transfer. Lane 0 is the shared session with the caller's handle.
pub(super) struct Lanes<'a> {
    primary: (&'a SftpChannel, &'a str),
    extra: Vec<(Arc<SftpChannel>, RemoteHandle)>,
    /// Bytes in flight per lane.
    in_flight: Vec<AtomicU64>,
}

impl<'a> Lanes<'a> {
    /// Lanes to write the upload's temporary file `temp_path` (open as `handle` on
    /// `sftp`): the extra lanes open it for reading and writing, and are used only once
    /// they proved to have opened the same file (see [`verify_same_temp`]). A lane that
    /// opened something else means the file was replaced (e.g. by a symlink) after it was
    /// created: the upload fails without writing through it.
    pub(super) async fn for_upload(
        conn: &Connection,
        sftp: &'a SftpChannel,
        handle: &'a str,
        temp_path: &str,
        size: u64,
    ) -> HostResult<Lanes<'a>> {
        let wanted = extra_lanes_for(size);
        let flags = OpenFlags::READ | OpenFlags::WRITE;
        let lanes = Self::open(conn, sftp, handle, temp_path, flags, None, wanted).await;
        if !lanes.extra.is_empty() {
            verify_same_temp(sftp, handle, &lanes.extra, temp_path).await?;
        }
        Ok(lanes)
    }

    /// Lanes to read the download's source `path` (open as `handle` on `sftp`, with the
    /// attributes `opened` read through that handle). An extra lane is kept only if the
    /// file it opened has the same size and modification time: a file replaced in
    /// the meantime must not be mixed into the copy. Without `opened` there are no
    /// extra lanes.
    pub(super) async fn for_download(
        conn: &Connection,
        sftp: &'a SftpChannel,
        handle: &'a str,
        path: &str,
        opened: Option<&FileAttributes>,
        size: u64,
    ) -> Lanes<'a> {
        let wanted = if opened.is_some() {
            extra_lanes_for(size)
        } else {
            0
        };
        Self::open(conn, sftp, handle, path, OpenFlags::READ, opened, wanted).await
    }

    /// The shared session plus up to `wanted` extra lanes with `path` opened with `flags`
    /// (and, given `same_as`, found to be the same file).
    async fn open(
        conn: &Connection,
        sftp: &'a SftpChannel,
        handle: &'a str,
        path: &str,
        flags: OpenFlags,
        same_as: Option<&FileAttributes>,
        wanted: usize,
    ) -> Lanes<'a> {
        let opens = (0..wanted).map(|_| async move {
            let opened = tokio::time::timeout(OPEN_TIMEOUT, open_extra(conn, path, flags, same_as));
            opened.await.unwrap_or_else(|_| {
                tracing::debug!("an extra lane took over {OPEN_TIMEOUT:?} to open {path}");
                None
            })
        });
        let extra: Vec<_> = futures::future::join_all(opens)
            .await
            .into_iter()
            .flatten()
            .collect();
        if extra.len() < wanted {
            tracing::debug!(session = %sftp.session, lanes = 1 + extra.len(), wanted = 1 + wanted, "transfer runs on fewer lanes");
        }
        let in_flight = (0..=extra.len()).map(|_| AtomicU64::new(0)).collect();
        Lanes {
            primary: (sftp, handle),
            extra,
            in_flight,
        }
    }

    /// The connection's shared session (lane 0), whose limits every lane shares.
    pub(super) fn primary(&self) -> &SftpChannel {
        self.primary.0
    }

    /// How many lanes there are (at least one).
    pub(super) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// The lane with the fewest bytes in flight, now charged with `bytes`.
    pub(super) fn pick(&self, bytes: u64) -> usize {
        let lane = (0..self.len())
            .min_by_key(|&i| self.in_flight[i].load(Ordering::Relaxed))
            .unwrap_or(0);
        self.in_flight[lane].fetch_add(bytes, Ordering::Relaxed);
        lane
    }

    /// Bytes in flight on all lanes together.
    pub(super) fn in_flight(&self) -> u64 {
        self.in_flight
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// Releases `bytes` charged to `lane` by [`Lanes::pick`].
    pub(super) fn finished(&self, lane: usize, bytes: u64) {
        self.in_flight[lane].fetch_sub(bytes, Ordering::Relaxed);
    }

    /// The session and file handle of `lane`.
    pub(super) fn get(&self, lane: usize) -> (&SftpChannel, &str) {
        match lane.checked_sub(1).and_then(|i| self.extra.get(i)) {
            Some((sftp, handle)) => (sftp, handle.get()),
            None => self.primary,
        }
    }

    /// Closes the extra lanes' handles after a transfer that went well (their channels
    /// close as they are dropped). Failures do not matter here: the caller's own handle
    /// decides the outcome. After a failure, drop the lanes instead: the handles are
    /// then closed in the background, and a dead connection delays nothing.
    pub(super) async fn close(self, path: &str) {
        let closes = self.extra.into_iter().map(|(_, handle)| handle.close(path));
        match tokio::time::timeout(CLOSE_TIMEOUT, futures::future::join_all(closes)).await {
            Ok(results) => {
                for e in results.into_iter().filter_map(Result::err) {
                    tracing::debug!("closing an extra lane: {e}");
                }
            }
            Err(_) => tracing::debug!("closing the extra lanes took over {CLOSE_TIMEOUT:?}"),
        }
    }
}

/// Extra lanes worth opening for a file of `size` bytes.
fn extra_lanes_for(size: u64) -> usize {
    if size >= LANE_MIN_BYTES {
        EXTRA_LANES
    } else {
        0
    }
}

/// One extra lane: a new SFTP session with `path` open (and, given `same_as`, found to
/// be the same file), or `None`.
async fn open_extra(
    conn: &Connection,
    path: &str,
    flags: OpenFlags,
    same_as: Option<&FileAttributes>,
) -> Option<(Arc<SftpChannel>, RemoteHandle)> {
    let sftp = Arc::new(SftpChannel::try_open(conn).await?);
    let opened = match sftp
        .raw()
        .open(path.to_string(), flags, FileAttributes::empty())
        .await
    {
        Ok(opened) => RemoteHandle::new(sftp.clone(), opened.handle),
        Err(e) => {
            tracing::debug!(session = %sftp.session, "an extra lane cannot open {path}: {e}");
            return None;
        }
    };
    if let Some(expected) = same_as {
        let same = match sftp.raw().fstat(opened.get()).await {
            Ok(found) => same_file(expected, &found.attrs),
            Err(_) => false,
        };
        if !same {
            tracing::debug!(session = %sftp.session, "{path} changed while a transfer started; not using an extra lane");
            return None;
        }
    }
    Some((sftp, opened))
}

/// Proves that every extra lane has the upload's temporary file `temp_path` open, the
/// file the shared session created and holds as `handle`: SFTP version 3 has no inode
/// numbers and no "do not follow symlinks" open flag, so a lane opening the path by name
/// may have opened whatever was put there since (a symlink to another file, a FIFO). Each
/// lane's handle must be a regular file, and a random token written through `handle` after
/// the lanes opened must read back through every lane's handle. Nothing is ever written
/// through a lane that failed. The token sits at offset 0, which the upload overwrites.
async fn verify_same_temp(
    sftp: &SftpChannel,
    handle: &str,
    extra: &[(Arc<SftpChannel>, RemoteHandle)],
    temp_path: &str,
) -> HostResult<()> {
    let replaced = || {
        HostError::Other(format!(
            "the temporary file {temp_path} was replaced by something else while the upload started \
             (another process on the remote host changed its directory); nothing was written through it \
             and nothing was replaced. Upload to a directory that only you can write to"
        ))
    };
    let check = async {
        for (lane, lane_handle) in extra {
            let attrs = lane
                .raw()
                .fstat(lane_handle.get())
                .await
                .map_err(|e| lane.fail("cannot stat", temp_path, e))?
                .attrs;
            if attrs.permissions.map(FileKind::from_mode) != Some(FileKind::File) {
                return Err(replaced());
            }
        }
        let token: Vec<u8> = (0..TOKEN_LEN).map(|_| rand::random::<u8>()).collect();
        sftp.raw()
            .write(handle, 0, token.clone())
            .await
            .map_err(|e| sftp.fail("cannot write", temp_path, e))?;
        for (lane, lane_handle) in extra {
            match lane
                .raw()
                .read(lane_handle.get(), 0, TOKEN_LEN as u32)
                .await
            {
                Ok(data) if data.data == token => {}
                Err(e) if super::error::is_transport_failure(&e) => {
                    return Err(lane.fail("cannot read", temp_path, e));
                }
                _ => return Err(replaced()),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(VERIFY_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(HostError::TimedOut(format!(
            "checking the temporary file {temp_path} on the extra SFTP sessions took over {VERIFY_TIMEOUT:?}; \
             nothing was replaced, try again"
        ))),
    }
}

/// Whether two sets of attributes plausibly describe the same, unchanged file (SFTP
/// version 3 carries no inode number): size, modification time, owner and mode agree.
fn same_file(a: &FileAttributes, b: &FileAttributes) -> bool {
    a.size.is_some()
        && a.mtime.is_some()
        && (a.size, a.mtime, a.uid, a.gid, a.permissions)
            == (b.size, b.mtime, b.uid, b.gid, b.permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(size: u64, mtime: u32) -> FileAttributes {
        FileAttributes {
            size: Some(size),
            mtime: Some(mtime),
            uid: Some(1000),
            gid: Some(1000),
            permissions: Some(0o100644),
            ..Default::default()
        }
    }

    #[test]
    fn a_replaced_file_is_not_the_same_file() {
        assert!(same_file(&attrs(10, 5), &attrs(10, 5)));
        assert!(!same_file(&attrs(10, 5), &attrs(11, 5)));
        assert!(!same_file(&attrs(10, 5), &attrs(10, 6)));
        let mut chmodded = attrs(10, 5);
        chmodded.permissions = Some(0o100600);
        assert!(!same_file(&attrs(10, 5), &chmodded));
        // Without a size or time nothing can be compared: not the same.
        assert!(!same_file(
            &FileAttributes::default(),
            &FileAttributes::default()
        ));
    }
}
