//! Resolving a local path that may not exist yet: its deepest existing ancestor
//! canonicalized (symlinks followed), the rest appended as plain names.

use std::path::{Component, Path, PathBuf};

use crate::error::{HostError, HostResult};

/// Canonicalizes the deepest existing ancestor of the absolute path `path` and appends
/// the rest, which may contain only plain names (no `..`).
pub fn resolve_existing_prefix(path: &Path) -> HostResult<PathBuf> {
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
