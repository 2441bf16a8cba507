//! Publishing a finished download: the local temporary file is renamed into place, never
//! over a file that appeared meanwhile in create-new mode (`renameat2` with
//! `RENAME_NOREPLACE`, else a hard link, which also fails when the destination exists),
//! over the destination in overwrite mode (`rename(2)`, so the old file stays whole until
//! then); the directory is then flushed so that the rename itself is durable.

use std::fs::File;
use std::io;
use std::path::Path;

use super::WriteMode;
use crate::error::{HostError, HostResult};

/// Puts the finished local temporary file in place. Returns whether a file was replaced.
pub(super) async fn publish_local(
    temp_path: &Path,
    dest: &Path,
    mode: WriteMode,
) -> HostResult<bool> {
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
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The file system or the kernel lacks the flag: fall back below.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
