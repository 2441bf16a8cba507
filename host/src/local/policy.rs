//! Which local paths a transfer may name: the local roots and the protected paths.
//!
//! A local path must be absolute or start with `~` (the home directory of the user
//! running `mcpssh`): an MCP server's working directory is arbitrary, so relative paths
//! are refused. The path must then resolve, symlinks included, into one of the local
//! roots (the deepest existing ancestor is canonicalized, and what follows it may not
//! climb out with `..`), and must not be protected ([`super::protected`]).
//!
//! The roots are `MCP_SSH_LOCAL_ROOT` (a `:`-separated list of directories; `/` allows
//! every path that is not protected) or, by default, the server's working directory
//! (unless that is `/`, the home directory or above it) and the transfer folder
//! `~/mcpssh-transfers`, created (mode 0700) the first time a path inside it is used.

use std::path::{Path, PathBuf};

use super::protected::ProtectedPaths;
use super::resolve::resolve_existing_prefix;
use crate::config::{Settings, home_dir};
use crate::error::{HostError, HostResult};

/// The default transfer folder, under the home directory.
pub const DEFAULT_TRANSFER_DIR: &str = "mcpssh-transfers";

/// A directory tree local paths may use.
#[derive(Debug, Clone)]
struct Root {
    /// Canonical when the directory exists.
    path: PathBuf,
    /// The default transfer folder: created on first use.
    create_on_demand: bool,
}

/// Which local paths requests may name.
#[derive(Debug, Clone)]
pub struct LocalPolicy {
    roots: Vec<Root>,
    protected: ProtectedPaths,
    /// The home directory `~` expands to.
    home: PathBuf,
}

impl LocalPolicy {
    /// The policy the settings ask for: `MCP_SSH_LOCAL_ROOT`, else the default roots.
    pub fn from_settings(settings: &Settings) -> HostResult<LocalPolicy> {
        let home = home_dir();
        let home = std::fs::canonicalize(&home).unwrap_or(home);
        let cwd = std::env::current_dir().ok();
        LocalPolicy::new(
            settings.local_root.as_deref(),
            cwd.as_deref(),
            ProtectedPaths::new(settings, &home),
            home,
        )
    }

    /// A policy with the roots listed in `roots` (`:`-separated absolute paths of
    /// existing directories, `~` expanded), or the default roots when `roots` is blank.
    pub fn new(
        roots: Option<&str>,
        cwd: Option<&Path>,
        protected: ProtectedPaths,
        home: PathBuf,
    ) -> HostResult<LocalPolicy> {
        let roots = match roots.filter(|r| !r.trim().is_empty()) {
            Some(list) => configured_roots(list, &home)?,
            None => default_roots(cwd, &home),
        };
        Ok(LocalPolicy {
            roots,
            protected,
            home,
        })
    }

    /// The directories local paths are confined to.
    pub fn roots(&self) -> Vec<&Path> {
        self.roots.iter().map(|r| r.path.as_path()).collect()
    }

    /// Resolves a local path from a request: `~` expanded, relative paths refused, the
    /// deepest existing ancestor canonicalized (symlinks resolved), then checked to be
    /// under a root and not protected. The path itself need not exist. Blocking.
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
                "local path {path:?} is relative; give an absolute path (or one starting with `~/`) \
                 under {}: the MCP server's working directory is arbitrary",
                self.shown_roots()
            )));
        }
        if let Some(why) = self.protected.reason(&expanded) {
            return Err(self.protected_error(path, &why));
        }
        self.create_transfer_folder_for(&expanded)?;
        let resolved = resolve_existing_prefix(&expanded)?;
        if !self.roots.iter().any(|r| resolved.starts_with(&r.path)) {
            return Err(HostError::Denied(format!(
                "local path {path} resolves to {}, which is outside the local roots ({}); \
                 transfers may only use paths under them. To allow more, the user sets \
                 MCP_SSH_LOCAL_ROOT to a `:`-separated list of directories (`/` allows any \
                 path that is not protected)",
                resolved.display(),
                self.shown_roots()
            )));
        }
        if let Some(why) = self.protected.reason(&resolved) {
            return Err(self.protected_error(path, &why));
        }
        Ok(resolved)
    }

    /// Creates the default transfer folder (mode 0700) when `path` lies in it and it does
    /// not exist yet.
    fn create_transfer_folder_for(&self, path: &Path) -> HostResult<()> {
        use std::os::unix::fs::DirBuilderExt;
        for root in self.roots.iter().filter(|r| r.create_on_demand) {
            if path.starts_with(&root.path) && !root.path.exists() {
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&root.path)
                    .or_else(|e| match e.kind() {
                        std::io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .map_err(|e| {
                        HostError::from_io(
                            &format!("cannot create the transfer folder {}", root.path.display()),
                            &e,
                        )
                    })?;
            }
        }
        Ok(())
    }

    fn protected_error(&self, path: &str, why: &str) -> HostError {
        HostError::Denied(format!(
            "local path {path} is protected: {why}. No transfer reads or writes protected \
             paths, whatever MCP_SSH_LOCAL_ROOT says; use a path under {} instead",
            self.shown_roots()
        ))
    }

    fn shown_roots(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The roots of `MCP_SSH_LOCAL_ROOT`: each an absolute path (or `~/...`) of an existing
/// directory, canonicalized.
fn configured_roots(list: &str, home: &Path) -> HostResult<Vec<Root>> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| {
            let shown = p.display().to_string();
            let path = expand(&shown, home);
            if !path.is_absolute() {
                return Err(HostError::Invalid(format!(
                    "MCP_SSH_LOCAL_ROOT entries must be absolute paths, got {shown:?}"
                )));
            }
            let canonical = std::fs::canonicalize(&path).map_err(|e| {
                HostError::from_io(
                    &format!("MCP_SSH_LOCAL_ROOT entry {shown} is not usable"),
                    &e,
                )
            })?;
            if !canonical.is_dir() {
                return Err(HostError::Invalid(format!(
                    "MCP_SSH_LOCAL_ROOT entry {shown} is not a directory"
                )));
            }
            Ok(Root {
                path: canonical,
                create_on_demand: false,
            })
        })
        .collect()
}

/// The default roots: the working directory, unless it is `/`, the home directory or
/// one of its ancestors (a client that starts servers there names no project), and the
/// transfer folder.
fn default_roots(cwd: Option<&Path>, home: &Path) -> Vec<Root> {
    let mut roots = Vec::new();
    if let Some(cwd) = cwd.and_then(|c| std::fs::canonicalize(c).ok())
        && !home.starts_with(&cwd)
    {
        roots.push(Root {
            path: cwd,
            create_on_demand: false,
        });
    }
    let folder = home.join(DEFAULT_TRANSFER_DIR);
    roots.push(Root {
        path: std::fs::canonicalize(&folder).unwrap_or(folder),
        create_on_demand: true,
    });
    roots
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

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(home: &Path) -> ProtectedPaths {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        ProtectedPaths::new(
            &Cli::parse_from(["mcpssh", "--cache-dir", "off"]).settings,
            home,
        )
    }

    fn policy(root: Option<&Path>, home: &Path) -> LocalPolicy {
        LocalPolicy::new(
            Some(root.unwrap_or(Path::new("/")).to_str().unwrap()),
            None,
            protection(home),
            home.to_path_buf(),
        )
        .unwrap()
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
    fn several_roots_each_admit_their_tree() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        for d in ["a", "b", "c"] {
            std::fs::create_dir(base.join(d)).unwrap();
        }
        let list = format!("{}:{}", base.join("a").display(), base.join("b").display());
        let p = LocalPolicy::new(Some(&list), None, protection(&base), base.clone()).unwrap();
        assert!(p.resolve(base.join("a/f").to_str().unwrap()).is_ok());
        assert!(p.resolve(base.join("b/f").to_str().unwrap()).is_ok());
        let e = p.resolve(base.join("c/f").to_str().unwrap()).unwrap_err();
        assert_eq!(e.kind(), "denied");
        assert!(e.message().contains("MCP_SSH_LOCAL_ROOT"), "{e}");
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
        let prot = || protection(&base);
        assert!(LocalPolicy::new(Some("relative/root"), None, prot(), base.clone()).is_err());
        let missing = base.join("nope");
        assert!(
            LocalPolicy::new(Some(missing.to_str().unwrap()), None, prot(), base.clone()).is_err()
        );
    }

    #[test]
    fn default_roots_are_the_project_and_the_transfer_folder() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let home = base.join("home");
        let project = home.join("project");
        std::fs::create_dir_all(&project).unwrap();
        let p = LocalPolicy::new(None, Some(&project), protection(&home), home.clone()).unwrap();
        assert_eq!(
            p.roots(),
            vec![project.as_path(), &home.join(DEFAULT_TRANSFER_DIR)]
        );
        assert!(p.resolve(project.join("f").to_str().unwrap()).is_ok());
        assert_eq!(p.resolve("~/other").unwrap_err().kind(), "denied");
        // The transfer folder is created, private, on first use.
        let folder = home.join(DEFAULT_TRANSFER_DIR);
        assert!(!folder.exists());
        assert_eq!(
            p.resolve("~/mcpssh-transfers/log.txt").unwrap(),
            folder.join("log.txt")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // A working directory of `/`, the home directory or above names no project.
        for cwd in [Path::new("/"), home.as_path(), base.as_path()] {
            let p = LocalPolicy::new(None, Some(cwd), protection(&home), home.clone()).unwrap();
            assert_eq!(p.roots(), vec![folder.as_path()], "cwd {}", cwd.display());
        }
    }

    #[test]
    fn protected_paths_are_refused_even_under_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        std::fs::create_dir(home.join(".ssh")).unwrap();
        std::fs::write(home.join("notes"), "").unwrap();
        std::os::unix::fs::symlink(home.join(".ssh"), home.join("innocent")).unwrap();
        let p = policy(Some(&home), &home);
        for bad in [
            "~/.bashrc",
            "~/.ssh/authorized_keys",
            "~/innocent/id_rsa",
            "/proc/self/environ",
        ] {
            let e = p.resolve(bad).unwrap_err();
            assert_eq!(e.kind(), "denied", "{bad}: {e}");
            assert!(e.message().contains("protected"), "{bad}: {e}");
        }
        assert!(p.resolve("~/notes").is_ok());
    }
}
