//! Configuration: the Python server's `MCP_SSH_*` environment variables, mirrored as command-line
//! flags, with their defaults. Secrets (the key passphrase) are read from the environment
//! only, never from the command line, and never printed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// How to treat a server's host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HostKeyPolicy {
    /// Only hosts whose key is already in known_hosts are accepted.
    Yes,
    /// A new host is accepted and recorded; a changed key is refused.
    AcceptNew,
    /// A new host's key is shown to the user (MCP elicitation) and recorded only if they
    /// accept; a changed key is refused. OpenSSH's default.
    Ask,
    /// Any key is accepted (a warning is logged on every connect).
    No,
}

/// Every setting of the server. Each field is a flag and an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// SSH server hostname or IP address to connect to by default.
    #[arg(long, env = "MCP_SSH_HOSTNAME")]
    pub hostname: Option<String>,

    /// SSH server port (default: from ~/.ssh/config, else 22).
    #[arg(long, env = "MCP_SSH_PORT")]
    pub port: Option<u16>,

    /// SSH username (default: the local user's name).
    #[arg(long, env = "MCP_SSH_USERNAME")]
    pub username: Option<String>,

    /// Path to the SSH private key file (ed25519, ECDSA or RSA). An encrypted key is
    /// opened with the passphrase in the MCP_SSH_KEY_PASSPHRASE environment variable.
    #[arg(long, env = "MCP_SSH_KEY_FILENAME")]
    pub key_filename: Option<String>,

    /// Name the server reports to MCP clients.
    #[arg(long, env = "MCP_SSH_SERVER_NAME", default_value = "SSH Server")]
    pub server_name: String,

    /// Prefix for every tool name (e.g. `server1_` gives `server1_ssh_connect`).
    #[arg(long, env = "MCP_SSH_TOOL_PREFIX", default_value = "")]
    pub tool_prefix: String,

    /// Seconds between the client's expected polls (`resources/list`, `prompts/list`).
    #[arg(long, env = "MCP_SSH_POLL_INTERVAL", default_value_t = 60)]
    pub poll_interval: u64,

    /// Missed poll intervals after which the server shuts down (0: never).
    #[arg(long, env = "MCP_SSH_MISSED_POLLS_THRESHOLD", default_value_t = 3)]
    pub missed_polls_threshold: u32,

    /// known_hosts file used to verify and record host keys (default: ~/.ssh/known_hosts).
    #[arg(long, env = "MCP_SSH_KNOWN_HOSTS")]
    pub known_hosts: Option<String>,

    /// System-wide known_hosts file, read to verify host keys and never written (default:
    /// ~/.ssh/config's GlobalKnownHostsFile, else /etc/ssh/ssh_known_hosts and
    /// /etc/ssh/ssh_known_hosts2). `none` reads none.
    #[arg(long, env = "MCP_SSH_GLOBAL_KNOWN_HOSTS")]
    pub global_known_hosts: Option<String>,

    /// Host key policy for every host: `yes` (only known hosts), `accept-new` (record new
    /// hosts, refuse changed keys), `ask` (ask the user, through the MCP client, before
    /// recording a new host's key) or `no` (accept anything, with a warning). Unset: each
    /// host's `StrictHostKeyChecking` in ~/.ssh/config, else `accept-new`.
    #[arg(long, env = "MCP_SSH_STRICT_HOST_KEY_CHECKING", value_enum)]
    pub strict_host_key_checking: Option<HostKeyPolicy>,

    /// Default timeout of `ssh_execute`, in seconds.
    #[arg(long, env = "MCP_SSH_COMMAND_TIMEOUT", default_value_t = 60.0)]
    pub command_timeout: f64,

    /// Default cap on each output stream of `ssh_execute`, in bytes (head and tail kept).
    #[arg(long, env = "MCP_SSH_MAX_OUTPUT_BYTES", default_value_t = 1024 * 1024)]
    pub max_output_bytes: u64,

    /// Timeout for establishing an SSH connection, in seconds.
    #[arg(long, env = "MCP_SSH_CONNECT_TIMEOUT", default_value_t = 10.0)]
    pub connect_timeout: f64,

    /// Directory for the compiled-code cache of tool components (default:
    /// $XDG_CACHE_HOME/mcpssh or ~/.cache/mcpssh). `off` disables the cache.
    #[arg(long, env = "MCP_SSH_CACHE_DIR")]
    pub cache_dir: Option<String>,

    /// Log filter for stderr (e.g. `info`, `debug`, `mcpssh=trace`); RUST_LOG works too.
    #[arg(long, env = "MCP_SSH_LOG")]
    pub log: Option<String>,

    /// OpenSSH client configuration to read (Host aliases, HostName, User, Port,
    /// IdentityFile, ProxyJump, ...). Default: ~/.ssh/config.
    #[arg(long, env = "MCP_SSH_CONFIG")]
    pub ssh_config: Option<String>,

    /// Folder of user-supplied tool components (`*.wasm`), each beside a grant file
    /// (`<name>.toml`) listing the capability interfaces it may import.
    #[arg(long, env = "MCP_SSH_TOOLS_DIR")]
    pub tools_dir: Option<String>,

    /// Memory limit of one tool instance, in MiB.
    #[arg(long, env = "MCP_SSH_TOOL_MEMORY_MB", default_value_t = 64)]
    pub tool_memory_mb: u64,

    /// CPU time a tool instance may spend in its own code per call, in milliseconds
    /// (time spent waiting for the host, e.g. for a remote command, does not count; time
    /// the tool spends sleeping or blocked in WASI does).
    #[arg(long, env = "MCP_SSH_TOOL_CPU_MS", default_value_t = 2000)]
    pub tool_cpu_ms: u64,

    /// Wall-clock limit of one tool call, host calls included, in seconds.
    #[arg(long, env = "MCP_SSH_TOOL_TIMEOUT", default_value_t = 86_700)]
    pub tool_timeout: u64,

    /// Largest result (or error) a tool may return, in bytes.
    #[arg(long, env = "MCP_SSH_TOOL_MAX_RESULT_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub tool_max_result_bytes: u64,

    /// The directories the local paths of file transfers are confined to, `:`-separated
    /// (symlinks are resolved before the check; `/` allows every path that is not
    /// protected). Default: the working directory (unless it is `/` or the home
    /// directory or above) and ~/mcpssh-transfers.
    #[arg(long, env = "MCP_SSH_LOCAL_ROOT")]
    pub local_root: Option<String>,

    /// The built-in tools to serve: tool names (without the prefix) and groups (`sessions`,
    /// `exec`, `files`, `jobs`, `all`), comma-separated. Default: all. Custom tools are not affected.
    #[arg(long = "tools", env = "MCP_SSH_TOOLS")]
    pub builtin_tools: Option<String>,

    /// Policy file (TOML): what the tools may do on which host, which commands need the
    /// user's approval, limits. Read once at start-up. Default: none (everything allowed).
    #[arg(long, env = "MCP_SSH_POLICY")]
    pub policy: Option<String>,

    /// Audit log: one JSON line per tool call (secrets redacted). Default: none.
    #[arg(long, env = "MCP_SSH_AUDIT_LOG")]
    pub audit_log: Option<String>,

    /// Size at which the audit log is rotated (to FILE.1 ... FILE.5), in bytes.
    #[arg(long, env = "MCP_SSH_AUDIT_MAX_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub audit_max_bytes: u64,

    /// Chain the audit log's lines by hash, so `mcpssh audit verify` detects an edited,
    /// removed or reordered line.
    #[arg(long, env = "MCP_SSH_AUDIT_CHAIN")]
    pub audit_chain: bool,

    /// File holding an HMAC key for the audit chain (then only its holder can forge a
    /// line). Implies --audit-chain.
    #[arg(long, env = "MCP_SSH_AUDIT_KEY_FILE")]
    pub audit_key_file: Option<String>,

    /// Hosts besides the configured one that may be offered MCP_SSH_PASSWORD, as a
    /// comma-separated list of `host`, `host:port` or `[host]:port` (`*` and `?`
    /// wildcards allowed; without a port, any port). The password is never sent to a
    /// host the model or a tool named on its own.
    #[arg(long, env = "MCP_SSH_PASSWORD_HOSTS")]
    pub password_hosts: Option<String>,

    /// Seconds after which a temporary transfer file left by a crash (`.NAME.mcpssh-*.part`)
    /// is removed by the next transfer into the same directory.
    #[arg(long, env = "MCP_SSH_STALE_TEMP_AGE", default_value_t = 60)]
    pub stale_temp_age: u64,

    /// The passphrase of an encrypted key. Environment only (MCP_SSH_KEY_PASSPHRASE).
    #[arg(skip)]
    pub key_passphrase: Option<Secret>,

    /// A password for password authentication, tried last. Environment only
    /// (MCP_SSH_PASSWORD); never logged, never in a result.
    #[arg(skip)]
    pub password: Option<Secret>,

    /// Wall-clock limit of loading one tool component (its start-up and `describe()`), in
    /// seconds. A component that takes longer is skipped with the reason in the log and
    /// in `mcpssh tools list`; the other tools are served.
    #[arg(long, env = "MCP_SSH_TOOL_LOAD_TIMEOUT", default_value_t = 10)]
    pub tool_load_timeout: u64,

    /// Tool calls run at the same time; further calls wait for a free slot.
    #[arg(long, env = "MCP_SSH_MAX_CONCURRENT_CALLS", default_value_t = 64)]
    pub max_concurrent_calls: usize,

    /// Tool calls that may wait for a free slot; beyond them a call is refused at once
    /// with a "busy" error.
    #[arg(long, env = "MCP_SSH_MAX_QUEUED_CALLS", default_value_t = 256)]
    pub max_queued_calls: usize,

    /// Seconds `ssh_execute` waits for a command before returning it, still running, as
    /// a job to follow with `ssh_job_output` (keep it below the client's call timeout).
    #[arg(long, env = "MCP_SSH_FOREGROUND_SECONDS", default_value_t = 50.0)]
    pub foreground_seconds: f64,

    /// Jobs kept at once, running or finished (the oldest finished one makes room).
    #[arg(long, env = "MCP_SSH_MAX_JOBS", default_value_t = 16)]
    pub max_jobs: usize,

    /// Bytes of each output stream of a job kept in memory; beyond it the output moves
    /// to an unlinked file in a private temporary directory.
    #[arg(long, env = "MCP_SSH_JOB_MEMORY_BYTES", default_value_t = 1024 * 1024)]
    pub job_memory_bytes: usize,

    /// Bytes of each output stream of a job kept on disk (the latest ones).
    #[arg(long, env = "MCP_SSH_JOB_SPOOL_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub job_spool_bytes: u64,

    /// Seconds a finished job (and a cut command's full output) stays readable.
    #[arg(long, env = "MCP_SSH_JOB_KEEP_SECONDS", default_value_t = 3600)]
    pub job_keep_seconds: u64,
}

impl Settings {
    /// Fills in what comes only from the environment (secrets).
    pub fn with_environment_secrets(mut self) -> Self {
        self.key_passphrase = std::env::var("MCP_SSH_KEY_PASSPHRASE")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret);
        self.password = std::env::var("MCP_SSH_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret);
        self
    }

    /// Checks values that clap cannot, returning one clear line on failure.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.command_timeout > 0.0 && self.command_timeout <= 86_400.0) {
            return Err(format!(
                "MCP_SSH_COMMAND_TIMEOUT must be between 0 and 86400 seconds, got {}",
                self.command_timeout
            ));
        }
        if !(self.connect_timeout > 0.0 && self.connect_timeout <= 3600.0) {
            return Err(format!(
                "MCP_SSH_CONNECT_TIMEOUT must be between 0 and 3600 seconds, got {}",
                self.connect_timeout
            ));
        }
        if self.max_output_bytes < 1024 {
            return Err("MCP_SSH_MAX_OUTPUT_BYTES must be at least 1024".into());
        }
        if !self
            .tool_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "MCP_SSH_TOOL_PREFIX may hold only A-Z, a-z, 0-9, '_', '-' and '.', got {:?}",
                self.tool_prefix
            ));
        }
        if let Some(list) = &self.password_hosts {
            for entry in split_list(list) {
                HostPattern::parse(entry).map_err(|e| format!("MCP_SSH_PASSWORD_HOSTS: {e}"))?;
            }
        }
        if self.tool_memory_mb == 0 || self.tool_cpu_ms == 0 || self.tool_timeout == 0 {
            return Err("tool memory and CPU limits must be greater than 0".into());
        }
        if self.tool_load_timeout == 0 {
            return Err("MCP_SSH_TOOL_LOAD_TIMEOUT must be greater than 0 seconds".into());
        }
        if self.max_concurrent_calls == 0 {
            return Err("MCP_SSH_MAX_CONCURRENT_CALLS must be at least 1".into());
        }
        if !(self.foreground_seconds >= 0.0 && self.foreground_seconds <= 86_400.0) {
            return Err(format!(
                "MCP_SSH_FOREGROUND_SECONDS must be between 0 and 86400 seconds, got {}",
                self.foreground_seconds
            ));
        }
        if self.max_jobs == 0 {
            return Err("MCP_SSH_MAX_JOBS must be at least 1".into());
        }
        Ok(())
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.command_timeout)
    }

    /// How long `ssh_execute` waits before returning a command as a job.
    pub fn foreground(&self) -> Duration {
        Duration::from_secs_f64(self.foreground_seconds)
    }

    /// The bounds of jobs.
    pub fn job_settings(&self) -> crate::jobs::JobSettings {
        crate::jobs::JobSettings {
            memory_bytes: self.job_memory_bytes,
            spool_bytes: self.job_spool_bytes,
            max_jobs: self.max_jobs,
            keep_for: Duration::from_secs(self.job_keep_seconds),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    /// Wall-clock limit of loading one tool component.
    pub fn tool_load_timeout(&self) -> Duration {
        Duration::from_secs(self.tool_load_timeout)
    }

    /// Age after which a leftover temporary transfer file is removed.
    pub fn stale_temp_age(&self) -> Duration {
        Duration::from_secs(self.stale_temp_age)
    }

    /// The known_hosts file set explicitly, if any.
    pub fn known_hosts_path(&self) -> Option<PathBuf> {
        self.known_hosts.as_deref().map(expand_tilde)
    }

    /// The system-wide known_hosts files set explicitly, if any (empty for `none`).
    pub fn global_known_hosts_paths(&self) -> Option<Vec<PathBuf>> {
        self.global_known_hosts.as_deref().map(|p| match p {
            "none" | "" => Vec::new(),
            p => vec![expand_tilde(p)],
        })
    }

    /// The OpenSSH client configuration file to read.
    pub fn ssh_config_path(&self) -> PathBuf {
        match &self.ssh_config {
            Some(p) => expand_tilde(p),
            None => home_dir().join(".ssh").join("config"),
        }
    }

    /// The compiled-code cache directory, or none when disabled.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        match self.cache_dir.as_deref() {
            Some("off") | Some("") => None,
            Some(p) => Some(expand_tilde(p)),
            None => Some(
                std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .unwrap_or_else(|| home_dir().join(".cache"))
                    .join("mcpssh"),
            ),
        }
    }

    /// The folder of user-supplied tools, if configured.
    pub fn tools_dir(&self) -> Option<PathBuf> {
        self.tools_dir
            .as_deref()
            .filter(|p| !p.is_empty())
            .map(expand_tilde)
    }

    /// The hosts besides the configured one that may be offered the password (checked
    /// by [`Settings::validate`]; an entry that does not parse matches nothing).
    pub fn password_hosts(&self) -> Vec<HostPattern> {
        self.password_hosts
            .as_deref()
            .map(|list| {
                split_list(list)
                    .filter_map(|e| HostPattern::parse(e).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The default username: configured, else the local user.
    pub fn default_username(&self) -> String {
        self.username
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into())
    }
}

/// The entries of a comma- or space-separated list setting.
fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
}

/// One entry of a host list setting: a host pattern (`*`, `?` wildcards, matched
/// case-insensitively) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Parses `host`, `host:port` or `[host]:port` (the form for IPv6 addresses).
    pub fn parse(entry: &str) -> Result<HostPattern, String> {
        let bad_port = || format!("{entry:?} has a port that is not a number from 1 to 65535");
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{entry:?} opens `[` without closing it"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok().filter(|&p| p > 0).ok_or_else(bad_port)?),
                None if after.is_empty() => None,
                None => return Err(format!("{entry:?}: expected `:port` after `]`")),
            };
            (host, port)
        } else {
            match entry.split_once(':') {
                Some((h, p)) if !p.contains(':') => (
                    h,
                    Some(p.parse().ok().filter(|&p| p > 0).ok_or_else(bad_port)?),
                ),
                _ => (entry, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{entry:?} has an empty host"));
        }
        Ok(HostPattern {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// True when `host` (case-insensitively) and `port` match this pattern.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port)
            && crate::pattern::glob(&self.host, &host.to_ascii_lowercase())
    }
}

/// A secret string that never prints itself.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The home directory of the user running `mcpssh`.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Expands a leading `~` or `~/` to the home directory.
pub fn expand_tilde(path: &str) -> PathBuf {
    if path == "~" {
        home_dir()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home_dir().join(rest)
    } else {
        PathBuf::from(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expands_only_at_the_start() {
        let home = home_dir();
        assert_eq!(expand_tilde("~"), home);
        assert_eq!(expand_tilde("~/x/y"), home.join("x/y"));
        assert_eq!(expand_tilde("/a/~/b"), PathBuf::from("/a/~/b"));
    }

    #[test]
    fn host_patterns_parse_and_match() {
        let p = HostPattern::parse("*.Example.com").unwrap();
        assert!(p.matches("db.example.COM", 22) && p.matches("a.example.com", 2222));
        assert!(!p.matches("example.com.evil", 22) && !p.matches("example.com", 22));
        let p = HostPattern::parse("10.0.0.5:2222").unwrap();
        assert!(p.matches("10.0.0.5", 2222) && !p.matches("10.0.0.5", 22));
        let p = HostPattern::parse("[::1]:22").unwrap();
        assert!(p.matches("::1", 22) && !p.matches("::1", 23));
        assert!(HostPattern::parse("[::1]").unwrap().matches("::1", 9));
        for bad in ["host:0", "host:x", "[::1", "[::1]x", ":22", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
        let settings = Settings {
            password_hosts: Some("a.example, b.example:2200".into()),
            ..test_settings()
        };
        assert_eq!(settings.password_hosts().len(), 2);
        assert!(settings.validate().is_ok());
        let settings = Settings {
            password_hosts: Some("a.example:nope".into()),
            ..test_settings()
        };
        assert!(
            settings
                .validate()
                .unwrap_err()
                .contains("MCP_SSH_PASSWORD_HOSTS")
        );
    }

    fn test_settings() -> Settings {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        Cli::parse_from(["mcpssh"]).settings
    }

    #[test]
    fn passphrase_debug_is_redacted() {
        let s = Secret("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
