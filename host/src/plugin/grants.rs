//! User-supplied tool components: the tools folder and the grant file beside each
//! component. A component is loaded only when every capability interface it imports is
//! granted; nothing a model says can grant anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::imports::IMPLEMENTED_INTERFACES;

/// The capability interfaces a user may grant (every host interface but `types`).
pub fn grantable() -> impl Iterator<Item = &'static str> {
    IMPLEMENTED_INTERFACES
        .iter()
        .copied()
        .filter(|i| *i != "types")
}

/// The grant file of one component, `<name>.toml`:
///
/// ```toml
/// # Capability interfaces of mcpssh:plugin this component may import.
/// grants = ["exec", "host-log"]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    #[serde(default)]
    pub grants: Vec<String>,
}

impl GrantFile {
    /// Reads the grant file beside `component`; a missing file grants nothing.
    pub fn for_component(component: &Path) -> Result<GrantFile> {
        let path = component.with_extension("toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GrantFile::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let file: GrantFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid grant file", path.display()))?;
        for grant in &file.grants {
            if !grantable().any(|g| g == grant) {
                bail!(
                    "{} grants {grant:?}, which is not a capability; known: {}",
                    path.display(),
                    grantable().collect::<Vec<_>>().join(", ")
                );
            }
        }
        Ok(file)
    }

    pub fn allows(&self, interface: &str) -> bool {
        self.grants.iter().any(|g| g == interface)
    }
}

/// The `*.wasm` files of the tools folder, sorted by name.
pub fn component_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the tools folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("t.wasm");
        assert!(GrantFile::for_component(&wasm).unwrap().grants.is_empty());
        std::fs::write(dir.path().join("t.toml"), "grants = [\"exec\"]\n").unwrap();
        let g = GrantFile::for_component(&wasm).unwrap();
        assert!(g.allows("exec") && !g.allows("session"));
        std::fs::write(dir.path().join("t.toml"), "grants = [\"root-shell\"]\n").unwrap();
        assert!(GrantFile::for_component(&wasm).is_err());
        std::fs::write(dir.path().join("t.toml"), "grantz = []\n").unwrap();
        assert!(GrantFile::for_component(&wasm).is_err());
    }
}
