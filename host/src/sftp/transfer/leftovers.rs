//! Removing what interrupted transfers left behind: the temporary files the
//! [`journal`] knows (exactly, local and on the connection's target), and, judged by
//! age (`MCP_SSH_STALE_TEMP_AGE`), temporary names in the destination directory that the
//! journal does not know (e.g. from another machine). Never a file a running transfer
//! is writing (see [`temp::ActiveTemp`]). Best effort and bounded in time: a cleanup
//! that fails or takes too long never fails the transfer.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh_sftp::protocol::StatusCode;

use crate::error::HostResult;
use crate::files::FileKind;
use crate::sftp::error::status_code;
use crate::sftp::{SftpChannel, join_remote, journal, meta, temp};

/// How long removing a temporary file may take before it is left for the crash cleanup.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Most directory entries looked at when cleaning crash leftovers.
const STALE_SCAN_LIMIT: u32 = 20_000;

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
pub(super) async fn clean_leftovers(sftp: &SftpChannel) {
    let _ = tokio::task::spawn_blocking(journal::clean_local).await;
    clean_remote_leftovers(sftp).await;
}

/// Removes temporary files left by crashed transfers in the remote directory `dir`.
/// `now` is the server's clock (the modification time of a file just created).
pub(super) async fn clean_stale_remote(sftp: &SftpChannel, dir: &str, now: u64, max_age: Duration) {
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

/// Removes temporary files left by crashed transfers in the local directory `dir`.
pub(super) fn clean_stale_local(dir: &Path, max_age: Duration) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::temp::ActiveTemp;

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
}
