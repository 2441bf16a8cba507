//! The policy file (TOML, `MCP_SSH_POLICY`): its format, the presets, and the pure
//! decision for one request on one host. Read once at start-up; nothing changes it
//! afterwards.
//!
//! A policy has top-level rules and `[[hosts]]` entries; the first entry whose `match`
//! names the host (its session name, alias or host name; `*` and `?` wildcards) adds to
//! or overrides them for that host. See [`Policy::decide_exec`] for the order in which
//! command rules apply.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::command::{CommandPattern, metacharacter};
use crate::config::Settings;
use crate::local::LocalPolicy;
use crate::trusted_file;

/// The largest policy file read.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// How much a host's tools may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Commands only from the read-only allow-list; remote writes and uploads refused.
    ReadOnly,
    /// Everything, except the preset deny-list of destructive commands.
    Standard,
    /// Everything.
    Open,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::ReadOnly => "read-only",
            Mode::Standard => "standard",
            Mode::Open => "open",
        }
    }
}

/// The read-only commands `ssh_execute_readonly` and read-only hosts run by default: each
/// reads and prints, none writes (options that write, like `date -s` or `hostname NAME`,
/// are not matched).
pub const DEFAULT_READONLY_COMMANDS: &[&str] = &[
    "uname",
    "uname *",
    "hostname",
    "uptime",
    "uptime *",
    "whoami",
    "id",
    "id *",
    "date",
    "pwd",
    "nproc",
    "lscpu",
    "df",
    "df *",
    "du",
    "du *",
    "free",
    "free *",
    "ls",
    "ls *",
    "cat *",
    "head *",
    "tail *",
    "wc *",
    "stat *",
    "grep *",
    "md5sum *",
    "sha256sum *",
    "which *",
    "ps",
    "ps *",
    "lsblk",
    "lsblk *",
    "ip addr",
    "ip route",
    "systemctl status",
    "systemctl status *",
    "systemctl is-active *",
    "systemctl list-units",
    "systemctl list-units *",
];

/// Commands the `standard` and `read-only` presets always refuse (defence in depth: a
/// determined caller can spell them otherwise).
const PRESET_DENY: &[&str] = &[
    r"re:.*\bmkfs(\.\w+)?\b.*",
    r"re:.*\bdd\b.*\bof=/dev/.*",
    r"re:(.*\W)?(shutdown|reboot|poweroff|halt)\b.*",
    r"re:.*\brm\s+(-\S+\s+)*-\S*[rR]\S*\s+(-\S+\s+)*(/|/\*)(\s.*)?",
    r"re:.*:\(\)\s*\{.*",
];

/// What the user said about clients that cannot ask (no elicitation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NoElicitation {
    /// Refuse what needs approval.
    #[default]
    Deny,
    /// Run it without asking.
    Allow,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CommandsFile {
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    ask: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    #[serde(rename = "match")]
    names: OneOrMany,
    mode: Option<Mode>,
    confirm: Option<bool>,
    #[serde(default)]
    refuse_tools: Vec<String>,
    #[serde(default)]
    commands: CommandsFile,
}

/// Caps on what one call may ask for.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The longest a command may run, in seconds.
    pub max_timeout_secs: Option<f64>,
    /// The most output kept per stream of a command, in bytes.
    pub max_output_bytes: Option<u64>,
    /// The largest file a transfer may move, in bytes.
    pub max_transfer_bytes: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    preset: Option<Mode>,
    #[serde(default)]
    when_no_elicitation: NoElicitation,
    readonly_tool: Option<bool>,
    readonly_commands: Option<Vec<String>>,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    refuse_tools: Vec<String>,
    local_roots: Option<Vec<String>>,
    allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    commands: CommandsFile,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    hosts: Vec<HostFile>,
}

/// Command rules, compiled.
#[derive(Debug, Default)]
struct Commands {
    allow: Option<Vec<CommandPattern>>,
    deny: Vec<CommandPattern>,
    ask: Vec<CommandPattern>,
}

impl Commands {
    fn compile(file: CommandsFile, at: &str) -> Result<Commands, String> {
        let list = |v: Vec<String>, key: &str| -> Result<Vec<CommandPattern>, String> {
            v.iter()
                .map(|p| CommandPattern::parse(p).map_err(|e| format!("{at}commands.{key}: {e}")))
                .collect()
        };
        Ok(Commands {
            allow: file.allow.map(|v| list(v, "allow")).transpose()?,
            deny: list(file.deny, "deny")?,
            ask: list(file.ask, "ask")?,
        })
    }
}

#[derive(Debug)]
struct HostRules {
    names: Vec<String>,
    mode: Option<Mode>,
    confirm: Option<bool>,
    refuse_tools: Vec<String>,
    commands: Commands,
}

/// The user's policy. [`Policy::open`] (no policy file) allows everything.
#[derive(Debug)]
pub struct Policy {
    /// The file it was read from; none for the open policy.
    pub source: Option<PathBuf>,
    mode: Mode,
    confirm: bool,
    refuse_tools: Vec<String>,
    commands: Commands,
    hosts: Vec<HostRules>,
    readonly_commands: Vec<CommandPattern>,
    preset_deny: Vec<CommandPattern>,
    pub when_no_elicitation: NoElicitation,
    /// Whether `ssh_execute_readonly` is served.
    pub readonly_tool: bool,
    pub limits: Limits,
    /// Canonical directories local paths must also be under; empty: no narrowing.
    pub local_roots: Vec<PathBuf>,
    /// Host names and patterns a session may be opened to (besides the configured host);
    /// none: any host.
    allowed_hosts: Option<Vec<String>>,
}

/// A decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The user must approve; `rule` names what asked for it.
    Ask {
        rule: String,
    },
    /// Refused by `rule`, for `reason`.
    Deny {
        rule: String,
        reason: String,
    },
}

/// What a request does on a host, for [`Policy::decide`].
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// Open or use a session, read remote files, download.
    Read,
    /// Change something on the host (`what`: "uploading a file", "removing a file", ...).
    Write(&'a str),
}

/// The rules in force on one host.
struct Effective<'a> {
    /// Where the host's rules come from, e.g. `hosts[1] (match "prod*")`.
    label: String,
    mode: Mode,
    confirm: bool,
    refused: Vec<&'a str>,
    allow: Option<&'a [CommandPattern]>,
    deny: Vec<&'a CommandPattern>,
    ask: Vec<&'a CommandPattern>,
}

impl Policy {
    /// No policy file: everything allowed, nothing asked.
    pub fn open() -> Policy {
        Policy {
            source: None,
            mode: Mode::Open,
            confirm: false,
            refuse_tools: Vec::new(),
            commands: Commands::default(),
            hosts: Vec::new(),
            readonly_commands: Vec::new(),
            preset_deny: Vec::new(),
            when_no_elicitation: NoElicitation::Deny,
            readonly_tool: false,
            limits: Limits::default(),
            local_roots: Vec::new(),
            allowed_hosts: None,
        }
    }

    /// The policy the settings name (`MCP_SSH_POLICY`), or the open policy. The error is
    /// one line naming the file, the place and the fix.
    pub fn from_settings(settings: &Settings) -> Result<Policy, String> {
        let Some(path) = settings.policy.as_deref() else {
            return Ok(Policy::open());
        };
        let path = crate::config::expand_tilde(path);
        // Another user who could change the policy file could loosen it.
        let text = trusted_file::read_trusted_text(&path, "the policy file", MAX_POLICY_BYTES)
            .map_err(|e| format!("{e:#} (MCP_SSH_POLICY)"))?
            .ok_or_else(|| {
                format!(
                    "cannot read the policy file {} (MCP_SSH_POLICY): no such file",
                    path.display()
                )
            })?;
        let local = LocalPolicy::from_settings(settings).map_err(|e| e.message().to_string())?;
        Policy::parse(&text, &path, &local)
            .map_err(|e| format!("policy file {}: {e}", path.display()))
    }

    /// Parses a policy file's text; `local` is the configuration's local-path policy,
    /// which `local_roots` may only narrow.
    pub fn parse(text: &str, path: &Path, local: &LocalPolicy) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string();
            match line {
                Some(n) => format!("line {n}: {message}"),
                None => message,
            }
        })?;
        let mode = file.preset.unwrap_or(Mode::Standard);
        let readonly_commands = file
            .readonly_commands
            .unwrap_or_else(|| {
                DEFAULT_READONLY_COMMANDS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .iter()
            .map(|p| CommandPattern::parse(p).map_err(|e| format!("readonly_commands: {e}")))
            .collect::<Result<_, _>>()?;
        let preset_deny = PRESET_DENY
            .iter()
            .map(|p| CommandPattern::parse(p).expect("preset patterns are valid"))
            .collect();
        let mut hosts = Vec::new();
        for (i, host) in file.hosts.into_iter().enumerate() {
            let names = match host.names {
                OneOrMany::One(n) => vec![n],
                OneOrMany::Many(v) => v,
            };
            if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
                return Err(format!(
                    "hosts[{i}]: `match` needs at least one non-empty host name or pattern"
                ));
            }
            check_tool_names(&host.refuse_tools, &format!("hosts[{i}].refuse_tools"))?;
            hosts.push(HostRules {
                names,
                mode: host.mode,
                confirm: host.confirm,
                refuse_tools: host.refuse_tools,
                commands: Commands::compile(host.commands, &format!("hosts[{i}]."))?,
            });
        }
        check_tool_names(&file.refuse_tools, "refuse_tools")?;
        if let Some(allowed) = &file.allowed_hosts
            && allowed.iter().any(|h| h.trim().is_empty())
        {
            return Err("allowed_hosts: a host name or pattern is empty".into());
        }
        let local_roots = file
            .local_roots
            .unwrap_or_default()
            .iter()
            .map(|root| narrowed_root(root, local))
            .collect::<Result<_, _>>()?;
        for (key, value) in [
            ("max_output_bytes", file.limits.max_output_bytes),
            ("max_transfer_bytes", file.limits.max_transfer_bytes),
        ] {
            if value == Some(0) {
                return Err(format!("limits.{key} must be more than 0"));
            }
        }
        if let Some(t) = file.limits.max_timeout_secs
            && !(t.is_finite() && t > 0.0)
        {
            return Err("limits.max_timeout_secs must be a positive number of seconds".into());
        }
        Ok(Policy {
            source: Some(path.to_path_buf()),
            mode,
            confirm: file.confirm,
            refuse_tools: file.refuse_tools,
            commands: Commands::compile(file.commands, "")?,
            hosts,
            readonly_commands,
            preset_deny,
            when_no_elicitation: file.when_no_elicitation,
            readonly_tool: file.readonly_tool.unwrap_or(mode != Mode::Open),
            limits: file.limits,
            local_roots,
            allowed_hosts: file.allowed_hosts,
        })
    }

    /// Whether this is the open policy (no file): nothing to check.
    pub fn is_open(&self) -> bool {
        self.source.is_none()
    }

    /// The file, for messages.
    pub fn file_name(&self) -> String {
        self.source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none)".into())
    }

    /// Whether `tool` is refused on every host (it is then not served).
    pub fn refuses_everywhere(&self, tool: &str) -> bool {
        self.refuse_tools.iter().any(|t| t == tool)
    }

    fn effective(&self, names: &[&str]) -> Effective<'_> {
        let host = self.hosts.iter().enumerate().find(|(_, h)| {
            h.names
                .iter()
                .any(|pattern| names.iter().any(|name| crate::pattern::glob(pattern, name)))
        });
        let mut refused: Vec<&str> = self.refuse_tools.iter().map(String::as_str).collect();
        let mut deny: Vec<&CommandPattern> = self.commands.deny.iter().collect();
        let mut ask: Vec<&CommandPattern> = self.commands.ask.iter().collect();
        let mut allow = self.commands.allow.as_deref();
        let (mut mode, mut confirm, mut label) = (self.mode, self.confirm, "top level".to_string());
        if let Some((i, h)) = host {
            label = format!("hosts[{i}] (match {:?})", h.names.join(", "));
            mode = h.mode.unwrap_or(mode);
            confirm = h.confirm.unwrap_or(confirm);
            refused.extend(h.refuse_tools.iter().map(String::as_str));
            deny.extend(h.commands.deny.iter());
            ask.extend(h.commands.ask.iter());
            if h.commands.allow.is_some() {
                allow = h.commands.allow.as_deref();
            }
        }
        if mode != Mode::Open {
            deny.extend(self.preset_deny.iter());
        }
        Effective {
            label,
            mode,
            confirm,
            refused,
            allow,
            deny,
            ask,
        }
    }

    /// The decision on a request of `tool` on the host known by `names` (session name,
    /// alias, host name).
    pub fn decide(&self, tool: &str, names: &[&str], request: Request<'_>) -> Verdict {
        if self.is_open() {
            return Verdict::Allow;
        }
        let rules = self.effective(names);
        if let Some(verdict) = rules.refuses(tool) {
            return verdict;
        }
        match request {
            Request::Read => Verdict::Allow,
            Request::Write(what) if rules.mode == Mode::ReadOnly => Verdict::Deny {
                rule: format!("{}: mode \"read-only\"", rules.label),
                reason: format!("{what} changes the host, and this host is read-only"),
            },
            Request::Write(_) if rules.confirm => Verdict::Ask {
                rule: format!("{}: confirm = true", rules.label),
            },
            Request::Write(_) => Verdict::Allow,
        }
    }

    /// Whether the policy lists the hosts sessions may be opened to (`allowed_hosts`).
    pub fn limits_hosts(&self) -> bool {
        self.allowed_hosts.is_some()
    }

    /// Whether a session may be opened to the host known by `names` (the name the request
    /// gave and the host name it resolves to): under `allowed_hosts`, one of them must
    /// match a listed name or pattern (case-insensitive; `*` and `?` stay within one
    /// dot-separated label, see [`crate::pattern::glob_labels`]). `None`: allowed.
    pub fn refuses_host(&self, names: &[&str]) -> Option<Verdict> {
        let allowed = self.allowed_hosts.as_ref()?;
        let matches = allowed.iter().any(|pattern| {
            names
                .iter()
                .any(|name| crate::pattern::glob_labels(pattern, name))
        });
        (!matches).then(|| Verdict::Deny {
            rule: "allowed_hosts".into(),
            reason: format!(
                "{} is not among the hosts this policy lets a session be opened to ({})",
                names.first().copied().unwrap_or_default(),
                allowed.join(", ")
            ),
        })
    }

    /// The decision on running `command` with `tool`. In order: a refused tool; a
    /// matching deny pattern (the user's, and the preset's unless the mode is `open`);
    /// the allow-list when one is in force (read-only mode or `readonly` tool: the
    /// read-only commands plus `commands.allow`; otherwise `commands.allow` when given),
    /// which also refuses shell metacharacters and environment variables; a matching ask
    /// pattern; `confirm = true` (except for read-only commands); else allowed.
    pub fn decide_exec(
        &self,
        tool: &str,
        names: &[&str],
        command: &str,
        has_env: bool,
        readonly: bool,
    ) -> Verdict {
        let rules = self.effective(names);
        if self.is_open() && !readonly {
            return Verdict::Allow;
        }
        if let Some(verdict) = rules.refuses(tool) {
            return verdict;
        }
        if let Some(p) = rules.deny.iter().find(|p| p.matches(command)) {
            return Verdict::Deny {
                rule: format!("{}: deny pattern {:?}", rules.label, p.text),
                reason: "the command matches a deny pattern".into(),
            };
        }
        let read_only = readonly || rules.mode == Mode::ReadOnly;
        let allow_list: Option<Vec<&CommandPattern>> = if read_only {
            Some(
                self.readonly_commands
                    .iter()
                    .chain(rules.allow.unwrap_or_default())
                    .collect(),
            )
        } else {
            rules.allow.map(|a| a.iter().collect())
        };
        if let Some(list) = allow_list {
            let which = if read_only {
                format!(
                    "{}: read-only commands (mode \"{}\"{})",
                    rules.label,
                    Mode::ReadOnly.name(),
                    if readonly { ", read-only tool" } else { "" }
                )
            } else {
                format!("{}: commands.allow", rules.label)
            };
            if let Some(c) = metacharacter(command) {
                return Verdict::Deny {
                    rule: which,
                    reason: format!(
                        "the command contains the shell metacharacter {c:?}; under an allow-list one plain command runs, without shell operators"
                    ),
                };
            }
            if has_env {
                return Verdict::Deny {
                    rule: which,
                    reason: "environment variables are refused under an allow-list (they can change what a command runs)".into(),
                };
            }
            if !list.iter().any(|p| p.matches(command)) {
                return Verdict::Deny {
                    rule: which,
                    reason: "the command is not in the allow-list".into(),
                };
            }
        }
        if let Some(p) = first_match_ref(&rules.ask, command) {
            return Verdict::Ask {
                rule: format!("{}: ask pattern {:?}", rules.label, p.text),
            };
        }
        if rules.confirm && !read_only {
            return Verdict::Ask {
                rule: format!("{}: confirm = true", rules.label),
            };
        }
        Verdict::Allow
    }

    /// Whether `path` (resolved) is under the policy's local roots (always, without them).
    pub fn allows_local(&self, path: &Path) -> bool {
        self.local_roots.is_empty() || self.local_roots.iter().any(|r| path.starts_with(r))
    }
}

impl Effective<'_> {
    fn refuses(&self, tool: &str) -> Option<Verdict> {
        self.refused.contains(&tool).then(|| Verdict::Deny {
            rule: format!("{}: refuse_tools", self.label),
            reason: format!("the tool {tool} is refused on this host"),
        })
    }
}

fn first_match_ref<'a>(
    patterns: &[&'a CommandPattern],
    command: &str,
) -> Option<&'a CommandPattern> {
    patterns.iter().copied().find(|p| p.matches(command))
}

/// Tool names as MCP allows them (without the configured prefix).
fn check_tool_names(names: &[String], key: &str) -> Result<(), String> {
    for name in names {
        crate::tool_name::check_tool_name(name).map_err(|e| format!("{key}: {e}"))?;
    }
    Ok(())
}

/// A `local_roots` entry: an existing directory that the configuration's local roots
/// already allow (a policy narrows them, never widens them past the protected paths).
fn narrowed_root(root: &str, local: &LocalPolicy) -> Result<PathBuf, String> {
    let resolved = local.resolve(root).map_err(|e| {
        format!(
            "local_roots entry {root:?} is not allowed by the configured local roots (a policy can only narrow MCP_SSH_LOCAL_ROOT): {}",
            e.message()
        )
    })?;
    if !resolved.is_dir() {
        return Err(format!(
            "local_roots entry {root:?} is not an existing directory"
        ));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_with(root: &str) -> LocalPolicy {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let settings =
            Cli::parse_from(["mcpssh", "--local-root", root, "--cache-dir", "off"]).settings;
        LocalPolicy::from_settings(&settings).unwrap()
    }

    fn local() -> LocalPolicy {
        local_with("/")
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new("/p.toml"), &local()).unwrap()
    }

    fn denied(v: Verdict) -> bool {
        matches!(v, Verdict::Deny { .. })
    }

    #[test]
    fn the_read_only_preset_runs_only_read_only_commands_and_refuses_writes() {
        let p = policy("preset = \"read-only\"");
        let exec = |c: &str| p.decide_exec("ssh_execute", &["h"], c, false, false);
        assert_eq!(exec("uname -a"), Verdict::Allow);
        assert_eq!(exec("systemctl status nginx"), Verdict::Allow);
        for bad in [
            "touch /tmp/x",
            "rm -rf /tmp/x",
            "ls; rm x",
            "cat x > y",
            "date -s 2020-01-01",
            "ls $(rm x)",
        ] {
            assert!(denied(exec(bad)), "{bad}");
        }
        assert!(
            denied(p.decide_exec("ssh_execute", &["h"], "ls", true, false)),
            "env under an allow-list"
        );
        assert!(denied(p.decide(
            "scp_upload",
            &["h"],
            Request::Write("uploading a file")
        )));
        assert_eq!(
            p.decide("scp_download", &["h"], Request::Read),
            Verdict::Allow
        );
        assert!(p.readonly_tool);
    }

    #[test]
    fn host_rules_refuse_tools_ask_and_confirm() {
        let p = policy(
            r#"
preset = "standard"
[commands]
ask = ["systemctl restart *"]
[[hosts]]
match = ["prod*", "db.example.com"]
confirm = true
refuse_tools = ["scp_remove"]
[hosts.commands]
deny = ["re:.*\\bdrop\\b.*"]
"#,
        );
        let prod = ["prod-1", "10.0.0.1"];
        assert!(denied(p.decide(
            "scp_remove",
            &prod,
            Request::Write("removing a file")
        )));
        assert_eq!(
            p.decide("scp_remove", &["dev"], Request::Write("removing a file")),
            Verdict::Allow
        );
        assert!(matches!(
            p.decide("scp_upload", &prod, Request::Write("x")),
            Verdict::Ask { .. }
        ));
        assert!(matches!(
            p.decide_exec("ssh_execute", &prod, "ls", false, false),
            Verdict::Ask { .. }
        ));
        assert!(denied(p.decide_exec(
            "ssh_execute",
            &["x", "db.example.com"],
            "echo drop",
            false,
            false
        )));
        assert_eq!(
            p.decide_exec("ssh_execute", &["dev"], "ls | wc -l", false, false),
            Verdict::Allow
        );
        assert!(matches!(
            p.decide_exec(
                "ssh_execute",
                &["dev"],
                "systemctl restart nginx",
                false,
                false
            ),
            Verdict::Ask { .. }
        ));
        // The preset's deny-list, and the read-only tool everywhere.
        assert!(denied(p.decide_exec(
            "ssh_execute",
            &["dev"],
            "sudo reboot",
            false,
            false
        )));
        assert!(denied(p.decide_exec(
            "ssh_execute",
            &["dev"],
            "rm -rf /",
            false,
            false
        )));
        assert!(denied(p.decide_exec(
            "ssh_execute_readonly",
            &["dev"],
            "touch x",
            false,
            true
        )));
        assert_eq!(
            p.decide_exec("ssh_execute_readonly", &["dev"], "df -h", false, true),
            Verdict::Allow
        );
    }

    #[test]
    fn an_allow_list_refuses_metacharacters_and_other_commands() {
        let p = policy(
            "preset = \"open\"\n[commands]\nallow = [\"git status\", \"re:make( [a-z]+)?\"]",
        );
        let exec = |c: &str| p.decide_exec("t", &["h"], c, false, false);
        assert_eq!(exec("git status"), Verdict::Allow);
        assert_eq!(exec("make test"), Verdict::Allow);
        assert!(denied(exec("git push")));
        assert!(denied(exec("git status && rm -rf ~")));
        assert!(denied(exec("make test\nrm x")));
    }

    #[test]
    fn a_bad_policy_is_one_line_naming_the_problem() {
        let bad = [
            ("preset = \"lenient\"", "line 1"),
            ("presett = \"open\"", "presett"),
            ("[commands]\ndeny = [\"re:(\"]", "commands.deny"),
            ("[[hosts]]\nmatch = []", "hosts[0]"),
            ("refuse_tools = [\"a b\"]", "refuse_tools"),
            ("[limits]\nmax_output_bytes = 0", "max_output_bytes"),
            ("local_roots = [\"/proc\"]", "local_roots"),
        ];
        for (text, needle) in bad {
            let e = Policy::parse(text, Path::new("/p.toml"), &local()).unwrap_err();
            assert!(e.contains(needle) && !e.contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn allowed_hosts_refuse_every_other_host_by_name_or_resolved_name() {
        let p = policy("allowed_hosts = [\"web-*\", \"10.0.0.5\"]\n");
        assert!(
            p.refuses_host(&["WEB-1", "web-1"]).is_none(),
            "case-insensitive"
        );
        assert!(
            p.refuses_host(&["db-alias", "10.0.0.5"]).is_none(),
            "an alias resolving to a listed host"
        );
        let Some(Verdict::Deny { rule, reason }) =
            p.refuses_host(&["evil.example", "evil.example"])
        else {
            panic!("an unlisted host is allowed");
        };
        assert_eq!(rule, "allowed_hosts");
        assert!(
            reason.contains("evil.example") && reason.contains("web-*"),
            "{reason}"
        );
        for lookalike in ["web-1.evil.example", "10.0.0.5.attacker.example"] {
            assert!(
                p.refuses_host(&[lookalike, lookalike]).is_some(),
                "{lookalike} passed as a listed host"
            );
        }
        let deep = policy("allowed_hosts = [\"*.prod.example.com\"]\n");
        assert!(deep.refuses_host(&["a.prod.example.com"]).is_none());
        assert!(deep.refuses_host(&["a.b.prod.example.com"]).is_some());
        assert!(
            policy("preset = \"standard\"\n")
                .refuses_host(&["any"])
                .is_none()
        );
        assert!(Policy::open().refuses_host(&["any"]).is_none());
        let e =
            Policy::parse("allowed_hosts = [\" \"]", Path::new("/p.toml"), &local()).unwrap_err();
        assert!(e.contains("allowed_hosts"), "{e}");
    }

    #[test]
    fn local_roots_only_narrow() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("local_roots = [{:?}]", dir.path().display().to_string());
        let p = policy(&text);
        let root = std::fs::canonicalize(dir.path()).unwrap();
        assert!(p.allows_local(&root.join("f")));
        assert!(!p.allows_local(Path::new("/tmp/elsewhere")));
        // Outside the configured roots: refused at load.
        let other = tempfile::tempdir().unwrap();
        let narrow = local_with(&other.path().display().to_string());
        let e = Policy::parse(&text, Path::new("/p.toml"), &narrow).unwrap_err();
        assert!(e.contains("only narrow"), "{e}");
    }
}
