//! The local side of file transfers: which local paths a request may name, and local
//! metadata and free space.
//!
//! A local path must be absolute or start with `~` (the home directory of the user
//! running `mcpssh`): an MCP server's working directory is arbitrary, so relative paths
//! are refused. With `MCP_SSH_LOCAL_ROOT` set, every local path must resolve, symlinks
//! included, to that directory tree: the deepest existing ancestor of the path is
//! canonicalized, and what follows it may not climb out with `..`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::config::{Settings, home_dir};
use crate::error::{HostError, HostResult};
use crate::sftp::{FileInfo, FileKind, Space};

/// Which local paths requests may name.
#[derive(Debug, Clone)]
pub struct LocalPolicy {
    /// The canonical root every path must stay under, when confined.
    root: Option<PathBuf>,
    /// The home directory `~` expands to.
    home: PathBuf,
}

impl LocalPolicy {
    /// A policy confining paths to `root` (which must be an existing directory, given as
    /// an absolute path), or allowing any absolute path when `root` is none.
    pub fn new(root: Option<&str>, home: PathBuf) -> HostResult<LocalPolicy> {
        let root = match root.filter(|r| !r.trim().is_empty()) {
            None => None,
            Some(r) => {
                let path = expand(r, &home);
                if !path.is_absolute() {
                    return Err(HostError::Invalid(format!(
                        "MCP_SSH_LOCAL_ROOT must be an absolute path, got {r:?}"
                    )));
                }
                let canonical = std::fs::canonicalize(&path).map_err(|e| {
                    HostError::from_io(
                        &format!("MCP_SSH_LOCAL_ROOT {} is not usable", path.display()),
                        &e,
                    )
                })?;
                if !canonical.is_dir() {
                    return Err(HostError::Invalid(format!(
                        "MCP_SSH_LOCAL_ROOT {} is not a directory",
                        path.display()
                    )));
                }
                Some(canonical)
            }
        };
        Ok(LocalPolicy { root, home })
    }

    /// The policy the settings ask for (`MCP_SSH_LOCAL_ROOT`).
    pub fn from_settings(settings: &Settings) -> HostResult<LocalPolicy> {
        LocalPolicy::new(settings.local_root.as_deref(), home_dir())
    }

    /// The root paths are confined to, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Resolves a local path from a request: `~` expanded, relative paths refused, the
    /// deepest existing ancestor canonicalized (symlinks resolved), and, when confined,
    /// checked to stay under the root. The path itself need not exist.
    pub fn resolve(&self, path: &str) -> HostResult<PathBuf> {
        if path.trim().is_empty() {
            return Err(HostError::Invalid(
                "the local path is empty; give an absolute path".into(),
            ));
        }
        if path.contains('\0') {
            return Err(HostError::Invalid(
                "the local path contains a NUL character".into(),
            ));
        }
        if path.starts_with('~') && path != "~" && !path.starts_with("~/") {
            return Err(HostError::Invalid(format!(
                "local path {path:?}: only `~` and `~/...` (your own home directory) are expanded; give an absolute path"
            )));
        }
        let expanded = expand(path, &self.home);
        if !expanded.is_absolute() {
            return Err(HostError::Invalid(format!(
                "local path {path:?} is relative; give an absolute path (or one starting with `~/`): \
                 the MCP server's working directory is arbitrary"
            )));
        }
        let resolved = resolve_existing_prefix(&expanded)?;
        if let Some(root) = &self.root
            && !resolved.starts_with(root)
        {
            return Err(HostError::Denied(format!(
                "local path {path} resolves to {}, which is outside MCP_SSH_LOCAL_ROOT ({}); \
                     only paths under that directory may be used",
                resolved.display(),
                root.display()
            )));
        }
        Ok(resolved)
    }
}

/// Expands a leading `~` or `~/` to `home`.
fn expand(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest.trim_start_matches('/'))
    } else {
        PathBuf::from(path)
    }
}

/// Canonicalizes the deepest existing ancestor of the absolute path `path` and appends
/// the rest, which may contain only plain names (no `..`).
fn resolve_existing_prefix(path: &Path) -> HostResult<PathBuf> {
    // `.` components are dropped here; `..` is kept for the kernel to resolve where the
    // path exists (so that symlinks are honoured).
    let components: Vec<Component> = path
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    for keep in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..keep].iter().collect();
        let canonical = match std::fs::canonicalize(&prefix) {
            Ok(c) => c,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(e) => {
                return Err(HostError::from_io(
                    &format!("cannot resolve the local path {}", path.display()),
                    &e,
                ));
            }
        };
        let mut out = canonical;
        for c in &components[keep..] {
            match c {
                Component::Normal(name) => out.push(name),
                _ => {
                    return Err(HostError::Invalid(format!(
                        "local path {}: `..` after a directory that does not exist cannot be resolved; give a plain path",
                        path.display()
                    )));
                }
            }
        }
        return Ok(out);
    }
    Err(HostError::Invalid(format!(
        "local path {} cannot be resolved",
        path.display()
    )))
}

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
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    let mut buf: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `buf` a writable statvfs.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut buf) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let unit = if buf.f_frsize > 0 {
        buf.f_frsize as u64
    } else {
        buf.f_bsize as u64
    };
    Ok(Space {
        total: (buf.f_blocks as u64).saturating_mul(unit),
        free: (buf.f_bfree as u64).saturating_mul(unit),
        available: (buf.f_bavail as u64).saturating_mul(unit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: Option<&Path>, home: &Path) -> LocalPolicy {
        LocalPolicy::new(root.map(|r| r.to_str().unwrap()), home.to_path_buf()).unwrap()
    }

    #[test]
    fn relative_paths_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(None, dir.path());
        for bad in ["file.txt", "./file.txt", "../x", "", "  "] {
            let e = p.resolve(bad).unwrap_err();
            assert_eq!(e.kind(), "invalid", "{bad:?}: {e}");
        }
        let e = p.resolve("data/file.txt").unwrap_err();
        assert!(e.message().contains("absolute"), "{e}");
        assert_eq!(p.resolve("~bob/x").unwrap_err().kind(), "invalid");
    }

    #[test]
    fn tilde_expands_to_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        let p = policy(None, &home);
        assert_eq!(p.resolve("~").unwrap(), home);
        assert_eq!(p.resolve("~/a/b.txt").unwrap(), home.join("a/b.txt"));
    }

    #[test]
    fn absolute_paths_resolve_through_existing_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let p = policy(None, &base);
        assert_eq!(
            p.resolve(base.join("link/new.txt").to_str().unwrap())
                .unwrap(),
            base.join("real/new.txt")
        );
        assert_eq!(
            p.resolve(base.join("real/./x").to_str().unwrap()).unwrap(),
            base.join("real/x")
        );
        let e = p
            .resolve(base.join("missing/../x").to_str().unwrap())
            .unwrap_err();
        assert_eq!(e.kind(), "invalid", "{e}");
    }

    #[test]
    fn the_root_confines_paths() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir(base.join("outside")).unwrap();
        let p = policy(Some(&root), &base);
        assert_eq!(
            p.resolve(root.join("sub/f").to_str().unwrap()).unwrap(),
            root.join("sub/f")
        );
        assert_eq!(p.resolve(root.to_str().unwrap()).unwrap(), root);
        for bad in [
            base.join("outside/f"),
            root.join("../outside/f"),
            root.join("sub/../../outside"),
        ] {
            let e = p.resolve(bad.to_str().unwrap()).unwrap_err();
            assert_eq!(e.kind(), "denied", "{}: {e}", bad.display());
        }
        // A sibling whose name merely starts with the root's name is outside.
        std::fs::create_dir(base.join("rootless")).unwrap();
        assert_eq!(
            p.resolve(base.join("rootless/f").to_str().unwrap())
                .unwrap_err()
                .kind(),
            "denied"
        );
        // `~` outside the root is refused too.
        assert_eq!(p.resolve("~/f").unwrap_err().kind(), "denied");
    }

    #[test]
    fn symlinks_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(base.join("secret")).unwrap();
        std::fs::write(base.join("secret/key"), "x").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(base.join("secret/key"), root.join("filelink")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("rel")).unwrap();
        let p = policy(Some(&root), &base);
        for bad in ["dirlink/key", "dirlink/new", "filelink", "rel/key", "rel"] {
            let e = p.resolve(root.join(bad).to_str().unwrap()).unwrap_err();
            assert_eq!(e.kind(), "denied", "{bad}: {e}");
        }
        // A symlink that stays inside is fine.
        std::fs::create_dir(root.join("in")).unwrap();
        std::os::unix::fs::symlink(root.join("in"), root.join("inlink")).unwrap();
        assert_eq!(
            p.resolve(root.join("inlink/f").to_str().unwrap()).unwrap(),
            root.join("in/f")
        );
    }

    #[test]
    fn a_root_given_through_a_symlink_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        std::fs::create_dir(base.join("real")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("alias")).unwrap();
        let p = policy(Some(&base.join("alias")), &base);
        assert_eq!(
            p.resolve(base.join("alias/f").to_str().unwrap()).unwrap(),
            base.join("real/f")
        );
        assert!(LocalPolicy::new(Some("relative/root"), base.clone()).is_err());
        assert!(LocalPolicy::new(Some(base.join("nope").to_str().unwrap()), base.clone()).is_err());
    }

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
