//! Noticing changes in the tools folder: a cheap snapshot of its components and grant
//! files (name, size, modification time, owner and permissions, which decide whether
//! they are trusted) and of the folder's own owner and permissions, compared between
//! polls.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One file as the snapshot sees it: path, size, modification time, owner, mode.
type FileState = (PathBuf, u64, Option<SystemTime>, u32, u32);

/// What the folder held at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderSnapshot {
    /// The folder's owner and mode.
    folder: Option<(u32, u32)>,
    files: Vec<FileState>,
}

impl FolderSnapshot {
    /// The `*.wasm` and `*.toml` files of `dir` (an unreadable folder is empty).
    pub fn take(dir: &Path) -> FolderSnapshot {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        e.path()
                            .extension()
                            .is_some_and(|x| x == "wasm" || x == "toml")
                    })
                    .filter_map(|e| {
                        let meta = std::fs::metadata(e.path()).ok()?;
                        Some((
                            e.path(),
                            meta.len(),
                            meta.modified().ok(),
                            meta.uid(),
                            meta.mode(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        FolderSnapshot {
            folder: std::fs::metadata(dir).ok().map(|m| (m.uid(), m.mode())),
            files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_changed_or_removed_file_changes_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let empty = FolderSnapshot::take(dir.path());
        std::fs::write(dir.path().join("a.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let one = FolderSnapshot::take(dir.path());
        assert_ne!(empty, one);
        assert_eq!(one.files.len(), 1, "only components and grant files count");
        std::fs::write(dir.path().join("a.wasm"), b"xy").unwrap();
        let changed = FolderSnapshot::take(dir.path());
        assert_ne!(one, changed);
        std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
        assert_eq!(FolderSnapshot::take(dir.path()), empty);
    }

    #[test]
    fn new_permissions_change_the_snapshot() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("a.wasm");
        std::fs::write(&wasm, b"x").unwrap();
        chmod(&wasm, 0o666);
        let writable = FolderSnapshot::take(dir.path());
        chmod(&wasm, 0o644);
        let fixed = FolderSnapshot::take(dir.path());
        assert_ne!(writable, fixed, "a chmod go-w is noticed");
        chmod(dir.path(), 0o777);
        assert_ne!(
            FolderSnapshot::take(dir.path()),
            fixed,
            "so is the folder's"
        );
        chmod(dir.path(), 0o700);
    }
}
