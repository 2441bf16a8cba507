//! Reading the head of a remote file: at most a given number of bytes from its start,
//! for resources that show small remote files to the client. Only a regular file is
//! read.

use std::sync::Arc;

use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::error::status_code;
use super::handle::RemoteHandle;
use super::meta::{require_regular, stat_opt};
use super::{SftpChannel, remote_arg};
use crate::error::{HostError, HostResult};

/// Reads at most `max` bytes from the start of the remote file `path` (for resources:
/// small files shown to the client). Returns the bytes and the file's size.
pub async fn read_head(
    sftp: &Arc<SftpChannel>,
    path: &str,
    max: u64,
) -> HostResult<(Vec<u8>, u64)> {
    let remote = remote_arg(path)?;
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
