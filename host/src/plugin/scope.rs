//! The narrower limits a grant file may set within the granted interfaces (`[scope]`):
//! read-only access, remote and local trees, sessions. Every host function checks the
//! call's scope before it acts; an empty list means no limit.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::error::{HostError, HostResult};

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
    pub fn validate(&self) -> Result<()> {
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
}
