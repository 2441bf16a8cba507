//! The local side of file transfers: which local paths a request may name (`policy`:
//! the local roots; `protected`: the paths no transfer touches), and local metadata and
//! free space.

mod policy;
mod protected;
mod resolve;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::error::{HostError, HostResult};
use crate::files::{FileInfo, FileKind, Space};

pub use policy::{DEFAULT_TRANSFER_DIR, LocalPolicy};

/// Metadata of the resolved local path `path`, following symlinks. `shown` is the name
/// reported back.
pub fn stat(path: &Path, shown: &str) -> HostResult<FileInfo> {
    let meta = std::fs::metadata(path)
        .map_err(|e| HostError::from_io(&format!("cannot stat {shown}"), &e))?;
    Ok(info_from_metadata(shown.to_string(), &meta))
}

/// File metadata in the shared form.
pub fn info_from_metadata(name: String, meta: &std::fs::Metadata) -> FileInfo {
    FileInfo {
        name,
        kind: FileKind::from_mode(meta.mode()),
        size: meta.len(),
        mode: meta.mode() & 0o7777,
        modified: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs()),
        uid: Some(meta.uid()),
        gid: Some(meta.gid()),
    }
}

/// Size and free space of the local file system holding `path` (or, when `path` does not
/// exist, its deepest existing ancestor).
pub fn space(path: &Path) -> HostResult<Space> {
    let mut probe = path;
    while !probe.exists() {
        probe = probe.parent().ok_or_else(|| {
            HostError::NotFound(format!(
                "cannot read the free space of {}: no part of it exists",
                path.display()
            ))
        })?;
    }
    statvfs(probe).map_err(|e| {
        HostError::from_io(
            &format!("cannot read the free space of {}", probe.display()),
            &e,
        )
    })
}

fn statvfs(path: &Path) -> std::io::Result<Space> {
    let buf = rustix::fs::statvfs(path)?;
    let unit = if buf.f_frsize > 0 {
        buf.f_frsize
    } else {
        buf.f_bsize
    };
    Ok(Space {
        total: buf.f_blocks.saturating_mul(unit),
        free: buf.f_bfree.saturating_mul(unit),
        available: buf.f_bavail.saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_stat_and_space() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let info = stat(&f, "shown").unwrap();
        assert_eq!(
            (info.name.as_str(), info.kind, info.size),
            ("shown", FileKind::File, 5)
        );
        assert_eq!(stat(dir.path(), "d").unwrap().kind, FileKind::Directory);
        assert_eq!(
            stat(&dir.path().join("nope"), "nope").unwrap_err().kind(),
            "not-found"
        );
        let s = space(&dir.path().join("not/yet/there")).unwrap();
        assert!(
            s.total > 0 && s.free >= s.available && s.total >= s.free,
            "{s:?}"
        );
    }
}
