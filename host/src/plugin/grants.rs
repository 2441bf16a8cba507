//! User-supplied tool components: the tools folder and the grant file beside each
//! component. A component is loaded only when every capability interface it imports is
//! granted, and only when it is the component its grant file pins, if it pins one;
//! nothing a model says can grant anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::imports::IMPLEMENTED_INTERFACES;
use super::trust;
use crate::error::{HostError, HostResult};

/// The largest grant file read (they are a few lines).
const MAX_GRANT_FILE_BYTES: u64 = 64 * 1024;

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

/// Narrower limits within the granted interfaces. Empty lists mean no limit.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub remote_paths: Vec<String>,
    #[serde(default)]
    pub local_paths: Vec<PathBuf>,
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl Scope {
    /// Refuses `what` (a change) under `read_only`.
    pub fn check_change(&self, what: &str) -> HostResult<()> {
        if self.read_only {
            return Err(HostError::Denied(format!(
                "{what} is not allowed: this tool is granted read-only access (scope.read_only in its grant file)"
            )));
        }
        Ok(())
    }

    /// True when the scope limits the sessions the tool may use.
    pub fn limits_hosts(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// True when the tool may use the session `name`.
    pub fn allows_session(&self, name: &str) -> bool {
        !self.limits_hosts() || self.hosts.iter().any(|h| h == name)
    }

    /// Refuses a session outside `hosts`.
    pub fn check_session(&self, session: Option<&str>) -> HostResult<()> {
        if !self.limits_hosts() {
            return Ok(());
        }
        match session {
            Some(s) if self.allows_session(s) => Ok(()),
            _ => Err(HostError::Denied(format!(
                "this tool may only use the sessions {} (scope.hosts in its grant file); name one",
                self.hosts.join(", ")
            ))),
        }
    }

    /// True when the scope limits remote paths.
    pub fn limits_remote_paths(&self) -> bool {
        !self.remote_paths.is_empty()
    }

    /// Refuses a remote path (already made absolute and canonical) outside `remote_paths`.
    pub fn check_remote(&self, path: &str) -> HostResult<()> {
        self.check_remote_for(path, &format!("remote path {path}"))
    }

    /// Like [`Self::check_remote`], naming the path as `what` in the refusal.
    pub fn check_remote_for(&self, path: &str, what: &str) -> HostResult<()> {
        if !self.limits_remote_paths() {
            return Ok(());
        }
        let normal = normalize_remote(path);
        let inside = self.remote_paths.iter().any(|root| {
            let root = normalize_remote(root);
            root == "/" || normal == root || normal.starts_with(&format!("{root}/"))
        });
        if inside {
            Ok(())
        } else {
            Err(HostError::Denied(format!(
                "{what} is outside what this tool may touch ({}; scope.remote_paths in its grant file)",
                self.remote_paths.join(", ")
            )))
        }
    }

    /// Refuses limits that would not mean what they seem to: an empty or relative
    /// remote root (which would resolve against `/` or a home directory), a relative
    /// local root, an empty session name.
    fn validate(&self) -> Result<()> {
        for root in &self.remote_paths {
            if !root.starts_with('/') {
                bail!(
                    "scope.remote_paths holds {root:?}, which is not an absolute remote path; \
                     write each tree from the root, e.g. \"/srv/app\" (\"/\" allows every path)"
                );
            }
        }
        for root in &self.local_paths {
            if !root.is_absolute() {
                bail!(
                    "scope.local_paths holds {:?}, which is not an absolute local path; \
                     write each tree from the root, e.g. \"/home/me/drop\" (~ is not expanded)",
                    root.display().to_string()
                );
            }
        }
        if self.hosts.iter().any(|h| h.is_empty()) {
            bail!("scope.hosts holds an empty session name; name each session the tool may use");
        }
        Ok(())
    }

    /// Refuses a local path (already resolved by the local policy) outside `local_paths`.
    pub fn check_local(&self, path: &Path) -> HostResult<()> {
        if self.local_paths.is_empty() || self.local_paths.iter().any(|root| path.starts_with(root))
        {
            return Ok(());
        }
        Err(HostError::Denied(format!(
            "local path {} is outside what this tool may touch (scope.local_paths in its grant file)",
            path.display()
        )))
    }
}

/// Resolves `.` and `..` in an absolute remote path, lexically.
fn normalize_remote(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

impl GrantFile {
    /// Reads the grant file beside `component`; a missing file grants nothing. A grant
    /// file another user could change is refused.
    pub fn for_component(component: &Path) -> Result<GrantFile> {
        let path = component.with_extension("toml");
        let Some(bytes) = trust::read_trusted(&path, "the grant file", MAX_GRANT_FILE_BYTES)?
        else {
            return Ok(GrantFile::default());
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow!("{} is not UTF-8 text", path.display()))?;
        let mut file: GrantFile = toml::from_str(&text)
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
    fn scopes_limit_paths_sessions_and_changes() {
        let scope = Scope {
            read_only: true,
            remote_paths: vec!["/srv/app/".into()],
            local_paths: vec![PathBuf::from("/home/me/drop")],
            hosts: vec!["prod".into()],
        };
        assert!(scope.check_change("removing a file").is_err());
        assert!(scope.check_remote("/srv/app").is_ok());
        assert!(scope.check_remote("/srv/app/x/../y").is_ok());
        assert!(scope.check_remote("/srv/app/../etc/passwd").is_err());
        assert!(scope.check_remote("/srv/application").is_err());
        assert!(scope.check_local(Path::new("/home/me/drop/a")).is_ok());
        assert!(scope.check_local(Path::new("/home/me/other")).is_err());
        assert!(scope.check_session(Some("prod")).is_ok());
        assert!(scope.check_session(None).is_err());
        let open = Scope::default();
        assert!(
            open.check_change("x").is_ok()
                && open.check_remote("/etc").is_ok()
                && open.check_session(None).is_ok()
        );
    }

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
