//! Reading OpenSSH client configuration (`~/.ssh/config`): `Host` blocks with patterns
//! and negations, `Include` (with globs, relative to `~/.ssh`), and the keywords mcpssh
//! uses. As in OpenSSH, the first value obtained for a keyword wins, except
//! `IdentityFile`, which accumulates. (Certificates are found beside their key as
//! `<key>-cert.pub`.) `Match` blocks are not evaluated: their settings are skipped.
//!
//! Outside `ssh/` because two layers read it: the SSH client (where to connect, how to
//! check keys) and the local-path protections (`local/`), which keep transfers away from
//! every file it includes.

use std::path::{Path, PathBuf};

use crate::config::{HostKeyPolicy, expand_tilde, home_dir};
use crate::pattern::glob;
use crate::trusted_file;

/// The largest configuration file read (each include counts on its own).
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// What the configuration says about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: Option<bool>,
    pub proxy_jump: Option<String>,
    pub known_hosts: KnownHostsConfig,
    pub server_alive_interval: Option<u64>,
    pub connect_timeout: Option<u64>,
    /// `StrictHostKeyChecking`.
    pub strict_host_key_checking: Option<HostKeyPolicy>,
}

/// What the configuration says about known_hosts files for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHostsConfig {
    /// `UserKnownHostsFile`: empty when unset.
    pub user_files: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`: `None` when unset, empty for `none`.
    pub global_files: Option<Vec<PathBuf>>,
    /// `HashKnownHosts`: record new hosts as `|1|salt|hash`.
    pub hash_new_entries: Option<bool>,
}

/// One `keyword value` line with the patterns of the block it is in.
#[derive(Debug, Clone)]
struct Entry {
    /// None for lines before any `Host` (they apply to every host); for a `Match` block,
    /// an empty list (never matches).
    patterns: Option<Vec<String>>,
    keyword: String,
    value: String,
}

/// A parsed configuration file (with its includes).
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    entries: Vec<Entry>,
    /// What `Include` lines name, as absolute paths (wildcards kept): files that are the
    /// user's configuration as much as this one, present or still to come.
    include_patterns: Vec<PathBuf>,
    /// The included files read (not the main one).
    included_files: Vec<PathBuf>,
}

impl SshConfig {
    /// Reads `path` and its includes; a missing file (or `/dev/null`) is an empty
    /// configuration. As OpenSSH does for `~/.ssh/config`, a file another user could
    /// change is refused: it could point an alias at their machine or name their
    /// known_hosts file. The error is one line naming the file and the fix.
    pub fn load(path: &Path) -> Result<SshConfig, String> {
        match Self::load_as_far_as_possible(path) {
            (config, None) => Ok(config),
            (_, Some(refused)) => Err(refused),
        }
    }

    /// What the configuration's `Include` lines name (absolute, wildcards kept), its
    /// includes' included.
    pub fn include_patterns(&self) -> &[PathBuf] {
        &self.include_patterns
    }

    /// The included files there are now, as named (their symlinks unresolved).
    pub fn included_files(&self) -> &[PathBuf] {
        &self.included_files
    }

    /// As much of the configuration as can be read, and the error that stopped the rest:
    /// for protecting what it includes, which must not vanish because one file is refused.
    pub fn load_as_far_as_possible(path: &Path) -> (SshConfig, Option<String>) {
        let mut config = SshConfig::default();
        let error = config.read_file(path, None, 0).err();
        (config, error)
    }

    /// Parses configuration text.
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<SshConfig, String> {
        let mut config = SshConfig::default();
        config.read_text(text, None, 0)?;
        Ok(config)
    }

    fn read_file(
        &mut self,
        path: &Path,
        patterns: Option<Vec<String>>,
        depth: usize,
    ) -> Result<(), String> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) if path == Path::new("/dev/null") => return Ok(()),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "ssh config: not a regular file, skipped");
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read ssh config: {e}");
                return Ok(());
            }
        }
        let text = trusted_file::read_trusted_text(path, "the ssh configuration", MAX_CONFIG_BYTES)
            .map_err(|e| format!("{e:#}"))?
            .unwrap_or_default();
        self.read_text(&text, patterns, depth)
    }

    fn read_text(
        &mut self,
        text: &str,
        mut patterns: Option<Vec<String>>,
        depth: usize,
    ) -> Result<(), String> {
        for line in text.lines() {
            let Some((keyword, value)) = split_line(line) else {
                continue;
            };
            match keyword.as_str() {
                "host" => patterns = Some(value.split_whitespace().map(str::to_string).collect()),
                "match" => patterns = Some(Vec::new()),
                "include" if depth < 16 => {
                    for pattern in value.split_whitespace() {
                        self.include_patterns.push(include_path(pattern));
                        for file in include_files(pattern) {
                            self.included_files.push(file.clone());
                            self.read_file(&file, patterns.clone(), depth + 1)?;
                        }
                    }
                }
                _ => self.entries.push(Entry {
                    patterns: patterns.clone(),
                    keyword,
                    value,
                }),
            }
        }
        Ok(())
    }

    /// The settings that apply to `alias` (the name given by the user).
    pub fn resolve(&self, alias: &str) -> HostConfig {
        let mut c = HostConfig::default();
        for entry in self
            .entries
            .iter()
            .filter(|e| applies(e.patterns.as_deref(), alias))
        {
            let v = entry.value.as_str();
            match entry.keyword.as_str() {
                "hostname" => set_once(&mut c.hostname, || Some(v.replace("%h", alias))),
                "user" => set_once(&mut c.user, || Some(v.to_string())),
                "port" => set_once(&mut c.port, || v.parse().ok()),
                "identityfile" if !v.eq_ignore_ascii_case("none") => {
                    c.identity_files.push(expand_tokens(v, alias))
                }
                "identitiesonly" => set_once(&mut c.identities_only, || yes_no(v)),
                "proxyjump" => set_once(&mut c.proxy_jump, || Some(v.to_string())),
                "userknownhostsfile" if c.known_hosts.user_files.is_empty() => {
                    c.known_hosts.user_files = path_list(v, alias);
                }
                "globalknownhostsfile" => set_once(&mut c.known_hosts.global_files, || {
                    Some(path_list(v, alias))
                }),
                "hashknownhosts" => set_once(&mut c.known_hosts.hash_new_entries, || yes_no(v)),
                "serveraliveinterval" => set_once(&mut c.server_alive_interval, || v.parse().ok()),
                "connecttimeout" => set_once(&mut c.connect_timeout, || v.parse().ok()),
                "stricthostkeychecking" => {
                    set_once(&mut c.strict_host_key_checking, || host_key_policy(v))
                }
                _ => {}
            }
        }
        if c.proxy_jump
            .as_deref()
            .is_some_and(|j| j.eq_ignore_ascii_case("none"))
        {
            c.proxy_jump = None;
        }
        c
    }

    /// True when some `Host` block names `alias` literally or by pattern (not only `*`).
    pub fn knows(&self, alias: &str) -> bool {
        self.entries.iter().any(|e| {
            e.patterns
                .as_deref()
                .is_some_and(|p| p.iter().any(|x| x != "*") && applies(Some(p), alias))
        })
    }
}

fn set_once<T>(slot: &mut Option<T>, value: impl FnOnce() -> Option<T>) {
    if slot.is_none() {
        *slot = value();
    }
}

/// A `StrictHostKeyChecking` value as OpenSSH reads it.
fn host_key_policy(v: &str) -> Option<HostKeyPolicy> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(HostKeyPolicy::Yes),
        "no" | "off" | "false" => Some(HostKeyPolicy::No),
        "ask" => Some(HostKeyPolicy::Ask),
        "accept-new" => Some(HostKeyPolicy::AcceptNew),
        _ => None,
    }
}

fn yes_no(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Splits `Keyword value`, `Keyword=value` or `Keyword = "value"`; skips comments and blanks.
fn split_line(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=')?;
    let keyword = line[..end].to_ascii_lowercase();
    let rest = line[end..]
        .trim_start_matches(|c: char| c.is_whitespace())
        .trim_start_matches('=')
        .trim();
    let value = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(rest);
    Some((keyword, value.to_string()))
}

/// Whether a block with `patterns` applies to `alias`: some pattern matches and no
/// negated one does.
fn applies(patterns: Option<&[String]>, alias: &str) -> bool {
    let Some(patterns) = patterns else {
        return true;
    };
    crate::pattern::list_matches(patterns.iter().map(String::as_str), |p| glob(p, alias))
}

/// A space-separated list of files (`none` names none), with tokens expanded.
fn path_list(value: &str, alias: &str) -> Vec<PathBuf> {
    value
        .split_whitespace()
        .filter(|f| !f.eq_ignore_ascii_case("none"))
        .map(|f| expand_tokens(f, alias))
        .collect()
}

/// Expands `~`, `%d` (home) and `%h` (the alias) in a path.
fn expand_tokens(value: &str, alias: &str) -> PathBuf {
    let home = home_dir().display().to_string();
    expand_tilde(&value.replace("%d", &home).replace("%h", alias))
}

/// An `Include` pattern as an absolute path: relative ones are under `~/.ssh`.
fn include_path(pattern: &str) -> PathBuf {
    let path = expand_tilde(pattern);
    if path.is_absolute() {
        path
    } else {
        home_dir().join(".ssh").join(path)
    }
}

/// The files an `Include` pattern names.
fn include_files(pattern: &str) -> Vec<PathBuf> {
    let path = include_path(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return vec![path];
    };
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| glob(name, n))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text parses (lines that mean nothing are skipped) and any alias resolves.
        #[test]
        fn any_text_parses_and_any_alias_resolves(
            text in "((Host|Match|HostName|Port|User|IdentityFile|ProxyJump|Include|IdentitiesOnly|UserKnownHostsFile|ConnectTimeout|ServerAliveInterval|[A-Za-z]{0,8})[ =\t]{0,2}[^\n]{0,30}\n){0,20}",
            alias in "\\PC{0,20}",
        ) {
            // Only an `Include` (of a file this test cannot trust) may make it fail.
            match SshConfig::parse(&text) {
                Ok(config) => {
                    let _ = config.resolve(&alias);
                    let _ = config.knows(&alias);
                }
                Err(e) => prop_assert!(text.to_ascii_lowercase().contains("include"), "{e}"),
            }
        }

    }

    const CONFIG: &str = r#"
# global defaults come last in practice, but first-match wins
Host web prod-*
    HostName 10.0.0.5
    User deploy
    Port 2222
    IdentityFile ~/.ssh/web_key
    IdentitiesOnly yes
    ProxyJump bastion

Host prod-db !prod-db-old
    HostName db.internal
    IdentityFile=%d/.ssh/db_key

Host bastion
    HostName bastion.example.com
    User = "jump user"

Match host foo
    User matched

Host *
    User everyone
    ServerAliveInterval 30
    ConnectTimeout 7
    HashKnownHosts yes
    GlobalKnownHostsFile /etc/a ~/b
    IdentityFile ~/.ssh/id_default
"#;

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = SshConfig::parse(CONFIG).unwrap().resolve("web");
        assert_eq!(c.hostname.as_deref(), Some("10.0.0.5"));
        assert_eq!(c.user.as_deref(), Some("deploy"));
        assert_eq!(c.port, Some(2222));
        assert_eq!(c.identities_only, Some(true));
        assert_eq!(c.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(c.server_alive_interval, Some(30));
        assert_eq!(c.connect_timeout, Some(7));
        assert_eq!(c.known_hosts.hash_new_entries, Some(true));
        assert_eq!(
            c.known_hosts.global_files,
            Some(vec![PathBuf::from("/etc/a"), home_dir().join("b")])
        );
        assert_eq!(
            c.identity_files,
            vec![
                home_dir().join(".ssh/web_key"),
                home_dir().join(".ssh/id_default")
            ]
        );
    }

    #[test]
    fn patterns_negations_and_match_blocks() {
        let cfg = SshConfig::parse(CONFIG).unwrap();
        assert_eq!(
            cfg.resolve("prod-db").hostname.as_deref(),
            Some("10.0.0.5"),
            "prod-* comes first"
        );
        assert_eq!(
            cfg.resolve("prod-db").identity_files[1],
            home_dir().join(".ssh/db_key")
        );
        assert_eq!(
            cfg.resolve("prod-db-old").identity_files.len(),
            2,
            "negated block skipped"
        );
        assert_eq!(
            cfg.resolve("foo").user.as_deref(),
            Some("everyone"),
            "Match is not evaluated"
        );
        assert_eq!(cfg.resolve("bastion").user.as_deref(), Some("jump user"));
        assert_eq!(cfg.resolve("unknown").hostname, None);
        assert!(cfg.knows("web") && cfg.knows("prod-x") && !cfg.knows("elsewhere"));
    }

    #[test]
    fn strict_host_key_checking_is_read_per_host() {
        let cfg = SshConfig::parse(
            "Host a\n  StrictHostKeyChecking ask\nHost b\n  StrictHostKeyChecking=off\n\
             Host c\n  StrictHostKeyChecking accept-new\nHost *\n  StrictHostKeyChecking yes\n",
        )
        .unwrap();
        let policy = |alias| cfg.resolve(alias).strict_host_key_checking;
        assert_eq!(policy("a"), Some(HostKeyPolicy::Ask));
        assert_eq!(policy("b"), Some(HostKeyPolicy::No));
        assert_eq!(policy("c"), Some(HostKeyPolicy::AcceptNew));
        assert_eq!(policy("other"), Some(HostKeyPolicy::Yes));
        let none = SshConfig::parse("StrictHostKeyChecking maybe\n").unwrap();
        assert_eq!(none.resolve("x").strict_host_key_checking, None);
    }

    #[test]
    fn a_file_others_could_change_is_refused_and_dev_null_is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let included = dir.path().join("a.conf");
        std::fs::write(&included, "Host inc\n  HostName elsewhere.example\n").unwrap();
        let main = dir.path().join("config");
        std::fs::write(&main, format!("Include {}\n", included.display())).unwrap();
        chmod(&main, 0o644);
        chmod(&included, 0o644);
        assert!(SshConfig::load(&main).unwrap().knows("inc"));
        for (file, mode) in [(&main, 0o664), (&included, 0o646)] {
            chmod(file, mode);
            let e = SshConfig::load(&main).unwrap_err();
            assert!(
                e.contains(&file.display().to_string()) && e.contains("chmod go-w"),
                "{e}"
            );
            chmod(file, 0o644);
        }
        let empty = SshConfig::load(Path::new("/dev/null")).unwrap();
        assert!(empty.entries.is_empty());
        let missing = SshConfig::load(&dir.path().join("nothing")).unwrap();
        assert!(missing.entries.is_empty());
    }

    #[test]
    fn includes_are_read_relative_to_their_pattern() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.conf"),
            "Host inc\n  HostName included.example\n",
        )
        .unwrap();
        let main = dir.path().join("config");
        std::fs::write(&main, format!("Include {}/*.conf\n", dir.path().display())).unwrap();
        let cfg = SshConfig::load(&main).unwrap();
        assert_eq!(
            cfg.resolve("inc").hostname.as_deref(),
            Some("included.example")
        );
    }
}
