//! Noticing changes in the tools folder: a cheap snapshot of its components and grant
//! files (name, size, modification time), compared between polls.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What the folder held at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderSnapshot(Vec<(PathBuf, u64, Option<SystemTime>)>);

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
                        let meta = e.metadata().ok()?;
                        Some((e.path(), meta.len(), meta.modified().ok()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        FolderSnapshot(files)
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
        assert_eq!(one.0.len(), 1, "only components and grant files count");
        std::fs::write(dir.path().join("a.wasm"), b"xy").unwrap();
        let changed = FolderSnapshot::take(dir.path());
        assert_ne!(one, changed);
        std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
        assert_eq!(FolderSnapshot::take(dir.path()), empty);
    }
}
