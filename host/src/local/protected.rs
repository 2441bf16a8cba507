//! The always-protected local paths: files no transfer may read or write, whatever the
//! local roots say, because reading them leaks a credential or writing them runs code or
//! changes what mcpssh and SSH trust. No setting turns this off.
//!
//! A path is protected when it is, or lies under, one of the listed paths (symlinks in
//! the listed paths resolved, so `~/.bashrc -> dotfiles/bashrc` protects the target
//! too), or when one of its components is a protected directory name (`.ssh`, `.git`,
//! `.gnupg`) wherever it appears.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::ssh_config::SshConfig;

/// One protected path and why it is protected.
#[derive(Debug, Clone)]
struct Protected {
    path: PathBuf,
    why: &'static str,
}

/// Directory names protected wherever they appear in a path.
const PROTECTED_NAMES: &[(&str, &str)] = &[
    (".ssh", "SSH keys, authorized_keys and known_hosts"),
    (
        ".git",
        "a Git repository's hooks and configuration run code",
    ),
    (".gnupg", "GnuPG keys"),
];

/// Files and folders under the home directory, relative to it.
const HOME_ENTRIES: &[(&str, &str)] = &[
    // Shell and session start-up files: writing one runs code at the next login.
    (".profile", "a shell start-up file"),
    (".bashrc", "a shell start-up file"),
    (".bash_profile", "a shell start-up file"),
    (".bash_login", "a shell start-up file"),
    (".bash_logout", "a shell start-up file"),
    (".bash_aliases", "a shell start-up file"),
    (".zshrc", "a shell start-up file"),
    (".zshenv", "a shell start-up file"),
    (".zprofile", "a shell start-up file"),
    (".zlogin", "a shell start-up file"),
    (".zlogout", "a shell start-up file"),
    (".kshrc", "a shell start-up file"),
    (".mkshrc", "a shell start-up file"),
    (".cshrc", "a shell start-up file"),
    (".tcshrc", "a shell start-up file"),
    (".login", "a shell start-up file"),
    (".logout", "a shell start-up file"),
    (".config/fish", "a shell start-up file"),
    (".xprofile", "a session start-up file"),
    (".xinitrc", "a session start-up file"),
    (".xsession", "a session start-up file"),
    (".xsessionrc", "a session start-up file"),
    (".pam_environment", "a session start-up file"),
    (".config/autostart", "a session start-up file"),
    (".config/environment.d", "a session start-up file"),
    (".config/systemd", "user services run code"),
    (".local/share/systemd", "user services run code"),
    (".local/bin", "programs on the PATH"),
    (".gitconfig", "Git configuration runs code"),
    (".config/git", "Git configuration runs code"),
    // Credentials.
    (".netrc", "credentials"),
    (".git-credentials", "credentials"),
    (".npmrc", "credentials"),
    (".pypirc", "credentials"),
    (".aws", "cloud credentials"),
    (".azure", "cloud credentials"),
    (".config/gcloud", "cloud credentials"),
    (".kube", "cluster credentials"),
    (".docker", "registry credentials"),
    (".password-store", "credentials"),
    (".local/share/keyrings", "credentials"),
    (".config/gh", "credentials"),
    // mcpssh's own configuration and the MCP clients' (which name the servers they run).
    (".config/mcpssh", "mcpssh's own configuration"),
    (".cache/mcpssh", "mcpssh's compiled code"),
    (".local/share/mcpssh", "mcpssh's own state"),
    (".claude", "an MCP client's configuration"),
    (".claude.json", "an MCP client's configuration"),
    (".config/Claude", "an MCP client's configuration"),
    (
        "Library/Application Support/Claude",
        "an MCP client's configuration",
    ),
    (".cursor", "an MCP client's configuration"),
    (".codeium", "an MCP client's configuration"),
    (".continue", "an MCP client's configuration"),
    (".codex", "an MCP client's configuration"),
    (".gemini", "an MCP client's configuration"),
    (".vscode", "an MCP client's configuration"),
    (".config/Code", "an MCP client's configuration"),
    (".config/zed", "an MCP client's configuration"),
];

/// Absolute paths protected on every machine.
const SYSTEM_ENTRIES: &[(&str, &str)] = &[
    (
        "/proc",
        "process information (mcpssh's own environment holds its secrets)",
    ),
    ("/sys", "kernel interfaces"),
    ("/dev", "devices"),
    ("/etc/ssh", "SSH's own keys and configuration"),
];

/// The protected paths of one configuration.
#[derive(Debug, Clone)]
pub struct ProtectedPaths {
    entries: Vec<Protected>,
    /// Paths with `*` and `?` wildcards (the ssh config's `Include`s).
    patterns: Vec<Protected>,
}

impl ProtectedPaths {
    /// The fixed list, plus the files this configuration trusts: the key file and its
    /// certificate, the known_hosts file, the ssh_config file, the compiled-code cache,
    /// the tools folder (components and grant files).
    pub fn new(settings: &Settings, home: &Path) -> ProtectedPaths {
        let mut entries: Vec<Protected> = HOME_ENTRIES
            .iter()
            .map(|(rel, why)| Protected {
                path: home.join(rel),
                why,
            })
            .chain(SYSTEM_ENTRIES.iter().map(|(path, why)| Protected {
                path: PathBuf::from(path),
                why,
            }))
            .collect();
        let mut add = |path: Option<PathBuf>, why: &'static str| {
            if let Some(path) = path.filter(|p| p.is_absolute()) {
                entries.push(Protected { path, why });
            }
        };
        if let Some(key) = &settings.key_filename {
            let key = crate::config::expand_tilde(key);
            add(
                Some(PathBuf::from(format!("{}-cert.pub", key.display()))),
                "the configured key's certificate",
            );
            add(
                Some(PathBuf::from(format!("{}.pub", key.display()))),
                "the configured key's public half",
            );
            add(Some(key), "the configured SSH key (MCP_SSH_KEY_FILENAME)");
        }
        add(
            settings.known_hosts_path(),
            "the known_hosts file (MCP_SSH_KNOWN_HOSTS)",
        );
        let ssh_config = settings.ssh_config_path();
        add(
            Some(ssh_config.clone()),
            "the SSH client configuration (MCP_SSH_CONFIG)",
        );
        // What it includes is the user's configuration too. Each file included now is an
        // entry like any other (so a symlinked one protects its target); the `Include`
        // patterns also cover files still to come (a glob picks up a new file next time).
        // A file that cannot be read stops the reading there, not the protection of what
        // came before.
        let mut patterns = Vec::new();
        let (config, _) = SshConfig::load_as_far_as_possible(&ssh_config);
        for file in config.included_files() {
            add(
                Some(file.clone()),
                "included by the SSH client configuration",
            );
        }
        for pattern in config.include_patterns() {
            patterns.push(Protected {
                path: pattern.clone(),
                why: "named by an Include of the SSH client configuration",
            });
        }
        add(
            settings.cache_dir(),
            "mcpssh's compiled-code cache (MCP_SSH_CACHE_DIR)",
        );
        add(
            settings.tools_dir(),
            "the tools folder and its grant files (MCP_SSH_TOOLS_DIR)",
        );
        let user_file = |setting: &Option<String>| {
            setting
                .as_deref()
                .map(|p| std::path::absolute(crate::config::expand_tilde(p)).unwrap_or_default())
        };
        add(
            user_file(&settings.policy),
            "the policy file (MCP_SSH_POLICY)",
        );
        add(
            user_file(&settings.audit_key_file),
            "the audit log's HMAC key (MCP_SSH_AUDIT_KEY_FILE)",
        );
        if let Some(log) = user_file(&settings.audit_log) {
            for path in crate::policy::audit::all_files(&log) {
                add(
                    Some(path),
                    "the audit log or one of its rotations (MCP_SSH_AUDIT_LOG)",
                );
            }
        }
        ProtectedPaths { entries, patterns }
    }

    /// Why `resolved` (an absolute path whose existing part is canonical) is protected,
    /// or none. Blocking: resolves the protected paths' own symlinks.
    pub fn reason(&self, resolved: &Path) -> Option<String> {
        for component in resolved.components() {
            if let std::path::Component::Normal(name) = component
                && let Some((name, why)) = PROTECTED_NAMES.iter().find(|(n, _)| name == *n)
            {
                return Some(format!("it is inside a `{name}` directory ({why})"));
            }
        }
        for entry in &self.entries {
            let canonical = super::resolve::resolve_existing_prefix(&entry.path).ok();
            let hit = |p: &Path| resolved.starts_with(p);
            if hit(&entry.path) || canonical.as_deref().is_some_and(hit) {
                return Some(format!("{} is {}", entry.path.display(), entry.why));
            }
        }
        let shown = resolved.to_string_lossy();
        for pattern in &self.patterns {
            // The pattern as written, and with its folder's symlinks resolved.
            let canonical = match (pattern.path.parent(), pattern.path.file_name()) {
                (Some(dir), Some(name)) => super::resolve::resolve_existing_prefix(dir)
                    .ok()
                    .map(|dir| dir.join(name)),
                _ => None,
            };
            let hit = |p: &Path| crate::pattern::glob(&p.to_string_lossy(), &shown);
            if hit(&pattern.path) || canonical.as_deref().is_some_and(hit) {
                return Some(format!(
                    "it matches {}, {}",
                    pattern.path.display(),
                    pattern.why
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        Cli::parse_from(["mcpssh", "--cache-dir", "off"]).settings
    }

    #[test]
    fn what_the_ssh_config_includes_is_protected_even_before_it_exists() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let hosts = root.join("work/ssh-hosts");
        std::fs::create_dir_all(&hosts).unwrap();
        let config = root.join("config");
        std::fs::write(
            &config,
            format!(
                "Include {}/*.conf {}/extra\n",
                hosts.display(),
                root.display()
            ),
        )
        .unwrap();
        let settings = Cli::parse_from([
            "mcpssh",
            "--cache-dir",
            "off",
            "--ssh-config",
            config.to_str().unwrap(),
        ])
        .settings;
        let p = ProtectedPaths::new(&settings, &root);
        for included in [hosts.join("new.conf"), root.join("extra")] {
            let why = p.reason(&included);
            assert!(
                why.as_deref().is_some_and(|w| w.contains("nclude")),
                "{}: {why:?}",
                included.display()
            );
        }
        assert!(p.reason(&hosts.join("notes.txt")).is_none());
        assert!(p.reason(&root.join("extra2")).is_none());

        // An included file that is a symlink (a dotfiles or infra repository): its target
        // is protected too, though it matches no pattern.
        let repo = root.join("src/infra");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::write(repo.join("ssh_hosts"), "Host x\n").unwrap();
        std::os::unix::fs::symlink(repo.join("ssh_hosts"), hosts.join("infra.conf")).unwrap();
        let p = ProtectedPaths::new(&settings, &root);
        let why = p.reason(&repo.join("ssh_hosts"));
        assert!(
            why.as_deref().is_some_and(|w| w.contains("included")),
            "{why:?}"
        );

        // A refused include (others may write it) stops the reading, not the protection
        // of the patterns read before it.
        std::fs::write(hosts.join("loose.conf"), "Host y\n").unwrap();
        std::fs::set_permissions(
            hosts.join("loose.conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o666),
        )
        .unwrap();
        let p = ProtectedPaths::new(&settings, &root);
        assert!(p.reason(&hosts.join("new.conf")).is_some());
    }

    #[test]
    fn start_up_files_credentials_and_system_paths_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        let p = ProtectedPaths::new(&settings(), &home);
        for bad in [
            home.join(".bashrc"),
            home.join(".ssh/authorized_keys"),
            home.join(".aws/credentials"),
            home.join(".config/systemd/user/x.service"),
            home.join("project/.git/hooks/pre-commit"),
            home.join("elsewhere/.ssh/id_rsa"),
            PathBuf::from("/proc/self/environ"),
            PathBuf::from("/dev/zero"),
        ] {
            assert!(
                p.reason(&bad).is_some(),
                "{} should be protected",
                bad.display()
            );
        }
        for fine in [
            home.join("project/notes.txt"),
            home.join(".bashrc_backup_dir_is_not_bashrc/x"),
            home.join("project/.github/workflows/ci.yml"),
        ] {
            assert!(
                p.reason(&fine).is_none(),
                "{} should not be protected",
                fine.display()
            );
        }
    }

    #[test]
    fn a_symlinked_start_up_file_protects_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        std::fs::create_dir(home.join("dotfiles")).unwrap();
        std::fs::write(home.join("dotfiles/bashrc"), "").unwrap();
        std::os::unix::fs::symlink(home.join("dotfiles/bashrc"), home.join(".bashrc")).unwrap();
        let p = ProtectedPaths::new(&settings(), &home);
        assert!(p.reason(&home.join("dotfiles/bashrc")).is_some());
        assert!(p.reason(&home.join("dotfiles/other")).is_none());
    }

    #[test]
    fn the_configured_trust_files_are_protected() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let tools = home.join("work/tools");
        let key = home.join("keys/deploy");
        let kh = home.join("work/kh");
        let settings = Cli::parse_from([
            "mcpssh",
            "--tools-dir",
            tools.to_str().unwrap(),
            "--key-filename",
            key.to_str().unwrap(),
            "--known-hosts",
            kh.to_str().unwrap(),
            "--cache-dir",
            home.join("work/cache").to_str().unwrap(),
        ])
        .settings;
        let p = ProtectedPaths::new(&settings, &home);
        for bad in [
            tools.join("evil.wasm"),
            tools.join("evil.toml"),
            key.clone(),
            home.join("keys/deploy-cert.pub"),
            kh.clone(),
            home.join("work/cache/x.cwasm"),
        ] {
            assert!(
                p.reason(&bad).is_some(),
                "{} should be protected",
                bad.display()
            );
        }
        assert!(p.reason(&home.join("work/data.txt")).is_none());
    }
}
