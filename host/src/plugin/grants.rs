//! User-supplied tool components: the tools folder and the grant file beside each
//! component. A component is loaded only when every capability interface it imports is
//! granted, and only when it is the component its grant file pins, if it pins one;
//! nothing a model says can grant anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::capability::Capability;
use super::scope::Scope;
use crate::trusted_file;

/// The largest grant file read (they are a few lines).
const MAX_GRANT_FILE_BYTES: u64 = 64 * 1024;

/// The grant file of one component, `<name>.toml`:
///
/// ```toml
/// # Capability interfaces of mcpssh:plugin this component may import.
/// grants = ["remote-read", "remote-write"]
///
/// # Optional: the SHA-256 of the component these grants are for (`sha256sum x.wasm`);
/// # a different component under the same name is then not loaded.
/// sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
///
/// # Optional narrower scopes, enforced by the host on every call.
/// [scope]
/// read_only = false                # true: refuse every change (writes, transfers, exec)
/// remote_paths = ["/srv/app"]      # remote trees it may touch (absolute paths)
/// local_paths = ["/home/me/drop"]  # local trees transfers may touch
/// hosts = ["prod"]                 # sessions it may use
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantFile {
    #[serde(default)]
    pub grants: Vec<String>,
    /// The component's SHA-256 (lowercase hex), when the user pinned it.
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub scope: Scope,
}

impl GrantFile {
    /// Reads the grant file beside `component`; a missing file grants nothing. A grant
    /// file another user could change is refused.
    pub fn for_component(component: &Path) -> Result<GrantFile> {
        let path = component.with_extension("toml");
        let Some(bytes) =
            trusted_file::read_trusted(&path, "the grant file", MAX_GRANT_FILE_BYTES)?
        else {
            return Ok(GrantFile::default());
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))?;
        let mut file: GrantFile = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid grant file", path.display()))?;
        for grant in &file.grants {
            if Capability::from_name(grant).is_none() {
                bail!(
                    "{} grants {grant:?}, which is not a capability; known: {}",
                    path.display(),
                    Capability::ALL.join(", ")
                );
            }
        }
        file.scope
            .validate()
            .with_context(|| format!("{} is not a valid grant file", path.display()))?;
        if let Some(pin) = &mut file.sha256 {
            *pin = pin.to_ascii_lowercase();
            if pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!(
                    "{}: sha256 must be the 64 hex digits `sha256sum {}` prints",
                    path.display(),
                    component.display()
                );
            }
        }
        Ok(file)
    }

    /// Refuses `bytes` (the component beside this grant file, at `component`) when the
    /// grant file pins another one.
    pub fn check_pin(&self, component: &Path, bytes: &[u8]) -> Result<()> {
        let Some(pin) = &self.sha256 else {
            return Ok(());
        };
        let actual = hex::encode(Sha256::digest(bytes));
        if *pin != actual {
            bail!(
                "{} has SHA-256 {actual}, but its grant file {} is for the component with \
                 SHA-256 {pin}; it was replaced. If you replaced it yourself, put its new \
                 sha256 in the grant file",
                component.display(),
                component.with_extension("toml").display()
            );
        }
        Ok(())
    }

    /// Whether the file grants `capability`.
    pub fn allows(&self, capability: Capability) -> bool {
        self.grants.iter().any(|g| g == capability.name())
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
        assert!(g.allows(Capability::Exec) && !g.allows(Capability::Session));
        std::fs::write(dir.path().join("t.toml"), "grants = [\"root-shell\"]\n").unwrap();
        assert!(GrantFile::for_component(&wasm).is_err());
        std::fs::write(dir.path().join("t.toml"), "grantz = []\n").unwrap();
        assert!(GrantFile::for_component(&wasm).is_err());
        std::fs::write(
            dir.path().join("t.toml"),
            "grants = []\n[scope]\nread_only = true\n",
        )
        .unwrap();
        assert!(GrantFile::for_component(&wasm).unwrap().scope.read_only);
    }

    #[test]
    fn roots_that_would_widen_the_scope_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = dir.path().join("t.wasm");
        for (scope, named) in [
            ("remote_paths = [\"\"]", "remote_paths"),
            ("remote_paths = [\"srv/app\"]", "remote_paths"),
            ("remote_paths = [\"~/app\"]", "remote_paths"),
            ("remote_paths = [\"/srv\", \".\"]", "remote_paths"),
            ("local_paths = [\"\"]", "local_paths"),
            ("local_paths = [\"drop\"]", "local_paths"),
            ("hosts = [\"\"]", "hosts"),
        ] {
            std::fs::write(dir.path().join("t.toml"), format!("[scope]\n{scope}\n")).unwrap();
            let e = format!("{:#}", GrantFile::for_component(&wasm).unwrap_err());
            assert!(e.contains(named) && e.contains("t.toml"), "{scope}: {e}");
        }
        std::fs::write(
            dir.path().join("t.toml"),
            "[scope]\nremote_paths = [\"/\", \"/srv/app\"]\nlocal_paths = [\"/tmp\"]\n",
        )
        .unwrap();
        assert!(GrantFile::for_component(&wasm).is_ok());
    }
}
