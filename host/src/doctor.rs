//! `mcpssh doctor`: checks the configuration the way the server would use it and prints
//! a checklist: the settings and the files they name, where the default session goes,
//! whether that host resolves and answers, its host key (never recorded here: a new key
//! is reported as what accept-new would record), the ways authentication would try (no
//! secret printed), the login, the SFTP subsystem, the tools the server would serve
//! (and the custom ones it would refuse), and the local roots of transfers.
//!
//! It uses the server's own code for each step (target resolution, connecting, host key
//! verification, authentication, SFTP, the tool registry), so what it reports is what
//! the first tool call would meet.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::Settings;
use crate::error::HostError;
use crate::local::LocalPolicy;
use crate::plugin::selection::BuiltinSelection;
use crate::plugin::{HostServices, Registry, Runtime};
use crate::policy::{Policy, audit};
use crate::sessions::SessionPool;
use crate::sftp::SftpChannel;
use crate::ssh::auth::{self, Availability, Credentials};
use crate::ssh::connection::Probe;
use crate::ssh::known_hosts::{self, Verdict};
use crate::ssh::{Connection, Target, TargetRequest};
use crate::ssh_config::SshConfig;

/// How one line of the checklist came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Ok,
    /// For information: nothing wrong.
    Info,
    /// Works, but something the user may want to fix.
    Warn,
    /// Stops the server from working for this host.
    Fail,
    /// Not checked, because an earlier step failed (or the check does not exist yet).
    Skipped,
}

impl Mark {
    fn label(self) -> &'static str {
        match self {
            Mark::Ok => "ok",
            Mark::Info => "--",
            Mark::Warn => "WARN",
            Mark::Fail => "FAIL",
            Mark::Skipped => "skip",
        }
    }
}

/// The checklist, in the order the checks ran.
#[derive(Debug, Default)]
pub struct Checklist {
    lines: Vec<(Mark, &'static str, String)>,
}

impl Checklist {
    fn add(&mut self, mark: Mark, subject: &'static str, detail: impl Into<String>) {
        self.lines.push((mark, subject, detail.into()));
    }

    /// True when a check failed: the exit status is then non-zero.
    pub fn failed(&self) -> bool {
        self.lines.iter().any(|(mark, _, _)| *mark == Mark::Fail)
    }

    /// The checklist as text, one check per line, and a last line with the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (mark, subject, detail) in &self.lines {
            out.push_str(&format!("[{:>4}] {subject}: {detail}\n", mark.label()));
        }
        out.push_str(if self.failed() {
            "mcpssh doctor: problems found (lines marked FAIL); the server will not work as configured\n"
        } else {
            "mcpssh doctor: the configured host works\n"
        });
        out
    }
}

/// Runs every check against `settings`.
pub async fn run(settings: Settings) -> Checklist {
    let mut list = Checklist::default();
    if let Err(e) = settings.validate() {
        list.add(Mark::Fail, "settings", e);
        return list;
    }
    list.add(Mark::Ok, "settings", "valid");
    let settings = Arc::new(settings);
    let pool = Arc::new(SessionPool::new(settings.clone()));
    config_files(&settings, &mut list);
    policy_and_audit(&settings, &mut list);
    connection(&settings, &pool, &mut list).await;
    tools(&settings, &pool, &mut list).await;
    local_roots(&settings, &mut list);
    list
}

/// The OpenSSH client configuration, the cache and the tools folder.
fn config_files(settings: &Settings, list: &mut Checklist) {
    let ssh_config = settings.ssh_config_path();
    match SshConfig::load(&ssh_config) {
        Ok(_) => list.add(
            Mark::Info,
            "ssh config",
            describe_file(&ssh_config, "not found (optional)"),
        ),
        Err(refused) => list.add(Mark::Fail, "ssh config", refused),
    }
    match settings.cache_dir() {
        Some(dir) => list.add(
            Mark::Info,
            "compiled-code cache",
            describe_file(&dir, "not created yet (made on first start)"),
        ),
        None => list.add(Mark::Info, "compiled-code cache", "off (MCP_SSH_CACHE_DIR)"),
    }
}

/// The policy file and the audit log's files, checked as start-up reads them; the log is
/// neither created nor written.
fn policy_and_audit(settings: &Settings, list: &mut Checklist) {
    match Policy::from_settings(settings) {
        Ok(policy) if policy.is_open() => list.add(
            Mark::Info,
            "policy",
            "none (MCP_SSH_POLICY): the tools may do everything the host lets them",
        ),
        Ok(policy) => list.add(Mark::Ok, "policy", format!("{} read", policy.file_name())),
        Err(refused) => list.add(Mark::Fail, "policy", refused),
    }
    match audit::check_settings(settings) {
        Ok(None) => list.add(Mark::Info, "audit log", "off (MCP_SSH_AUDIT_LOG)"),
        Ok(Some(log)) => list.add(
            Mark::Ok,
            "audit log",
            describe_file(&log, "not created yet (made on first start)"),
        ),
        Err(refused) => list.add(Mark::Fail, "audit log", refused),
    }
}

/// `path (found)`, or `path: <missing>`.
fn describe_file(path: &Path, missing: &str) -> String {
    if path.exists() {
        format!("{} (found)", path.display())
    } else {
        format!("{}: {missing}", path.display())
    }
}

/// The default session: target, name resolution, reachability, host key, identities,
/// login, SFTP.
async fn connection(settings: &Settings, pool: &SessionPool, list: &mut Checklist) {
    let target = match pool.resolve(&TargetRequest::default()) {
        Ok(target) => target,
        Err(e) => {
            list.add(Mark::Fail, "host", e.message().to_string());
            return;
        }
    };
    let via = match target.proxy_jump.as_slice() {
        [] => String::new(),
        hops => format!(
            " through {}",
            hops.iter()
                .map(|h| format!("{}@{}:{}", h.username, h.host, h.port))
                .collect::<Vec<_>>()
                .join(" then ")
        ),
    };
    list.add(
        Mark::Ok,
        "host",
        format!(
            "{} is {}@{}:{}{via}",
            target.name, target.username, target.host, target.port
        ),
    );
    known_hosts_files(&target, list);
    let creds = Credentials::for_target(&target, settings);
    for identity in auth::planned_identities(&target, &creds).await {
        let mark = match identity.availability {
            Availability::Ready => Mark::Ok,
            Availability::Absent => Mark::Info,
            Availability::Broken => Mark::Warn,
        };
        list.add(mark, "identity", identity.description);
    }
    // The first hop is what this machine connects to; later hops are reached through it.
    let first = target.proxy_jump.first().unwrap_or(&target);
    if !reachable(first, list).await {
        skip_session_checks("the host is not reachable", list);
        return;
    }
    let conn = match Connection::probe(target.clone(), settings).await {
        Ok(Probe::Connected(conn)) => conn,
        Ok(Probe::NewKeyToConfirm(new_key)) => {
            list.add(
                Mark::Info,
                "host key",
                format!(
                    "{} {} of {}:{} is new: the first connection will ask you (through the MCP \
                     client) before recording it (ask); compare the fingerprint with the server's \
                     (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on it)",
                    new_key.key.algorithm(),
                    known_hosts::fingerprint(&new_key.key),
                    new_key.host,
                    new_key.port
                ),
            );
            skip_session_checks(
                "not tried: under ask the new host key must be confirmed first, and doctor asks nobody",
                list,
            );
            return;
        }
        Err(e) => {
            login_failed(&e, list);
            return;
        }
    };
    host_key_verdict(&conn, &target, list);
    list.add(
        Mark::Ok,
        "login",
        format!(
            "authenticated as {} ({})",
            conn.info.username, conn.info.server_version
        ),
    );
    match SftpChannel::open(&conn).await {
        Ok(_) => list.add(Mark::Ok, "sftp", "the sftp subsystem answers"),
        Err(e) => list.add(
            Mark::Fail,
            "sftp",
            format!(
                "{}; the file tools (scp_*) will not work: enable `Subsystem sftp` in the server's sshd_config",
                e.message()
            ),
        ),
    }
    // The login shell family (POSIX sh, fish, csh, PowerShell, cmd) is reported here
    // once exec knows how to detect it.
    list.add(Mark::Skipped, "login shell", "not checked by this version");
    conn.close().await;
}

/// The known_hosts files that verify the target, and which of them exist.
fn known_hosts_files(target: &Target, list: &mut Checklist) {
    let files = &target.known_hosts;
    if files.user.is_empty() && files.global.is_empty() {
        list.add(Mark::Info, "known_hosts", "none configured");
    }
    for (i, file) in files.user.iter().enumerate() {
        let role = if i == 0 {
            "not found yet (new host keys are recorded here)"
        } else {
            "not found"
        };
        list.add(Mark::Info, "known_hosts", describe_file(file, role));
    }
    for file in &files.global {
        list.add(
            Mark::Info,
            "known_hosts (system)",
            describe_file(file, "not found"),
        );
    }
}

/// Resolves `target` and opens (then drops) a TCP connection to it; says which step
/// failed. Only the first address is tried, as the server's connect does.
async fn reachable(target: &Target, list: &mut Checklist) -> bool {
    let addresses: Vec<SocketAddr> =
        match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
            Ok(found) => found.collect(),
            Err(e) => {
                list.add(
                    Mark::Fail,
                    "resolve",
                    format!("cannot resolve {}: {e}", target.host),
                );
                return false;
            }
        };
    let shown: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    list.add(
        Mark::Ok,
        "resolve",
        format!("{} is {}", target.host, shown.join(", ")),
    );
    let connect = tokio::net::TcpStream::connect((target.host.as_str(), target.port));
    match tokio::time::timeout(target.connect_timeout, connect).await {
        Ok(Ok(_)) => {
            list.add(
                Mark::Ok,
                "reach",
                format!("{}:{} accepts connections", target.host, target.port),
            );
            true
        }
        Ok(Err(e)) => {
            list.add(
                Mark::Fail,
                "reach",
                format!(
                    "cannot connect to {}:{}: {e}; check the host and port (MCP_SSH_PORT, Port in ~/.ssh/config) and that sshd runs",
                    target.host, target.port
                ),
            );
            false
        }
        Err(_) => {
            list.add(
                Mark::Fail,
                "reach",
                format!(
                    "{}:{} did not answer within {:.0} s (MCP_SSH_CONNECT_TIMEOUT); a firewall may drop the packets",
                    target.host,
                    target.port,
                    target.connect_timeout.as_secs_f64()
                ),
            );
            false
        }
    }
}

/// What verification concluded about the host key of an open connection.
fn host_key_verdict(conn: &Connection, target: &Target, list: &mut Checklist) {
    let key = format!(
        "{} {}",
        conn.info.host_key_algorithm, conn.info.host_key_fingerprint
    );
    let record_in = target
        .known_hosts
        .user
        .first()
        .map_or("known_hosts".into(), |f| f.display().to_string());
    let (mark, detail) = match conn.host_key_verdict {
        Verdict::Known | Verdict::Recorded => (Mark::Ok, format!("{key} is known")),
        Verdict::Certified => (
            Mark::Ok,
            format!("{key}: a valid certificate from a trusted @cert-authority"),
        ),
        Verdict::WouldRecord => (
            Mark::Info,
            format!(
                "{key} is new: the first connection will record it in {record_in} (accept-new); \
                 compare the fingerprint with the server's (`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on it)"
            ),
        ),
        Verdict::Unchecked => (
            Mark::Warn,
            format!(
                "{key} NOT verified (MCP_SSH_STRICT_HOST_KEY_CHECKING=no): the connection may be intercepted"
            ),
        ),
    };
    list.add(mark, "host key", detail);
}

/// Reports a failed connection under the step that failed.
fn login_failed(e: &HostError, list: &mut Checklist) {
    match e {
        HostError::HostKey(_) => {
            list.add(Mark::Fail, "host key", e.message().to_string());
            list.add(Mark::Skipped, "login", "the host key was refused");
        }
        HostError::Auth(_) => {
            list.add(Mark::Ok, "host key", "accepted");
            list.add(Mark::Fail, "login", e.message().to_string());
        }
        _ => list.add(Mark::Fail, "login", e.message().to_string()),
    }
    list.add(Mark::Skipped, "sftp", "no connection");
    list.add(Mark::Skipped, "login shell", "no connection");
}

/// The checks that need a session, skipped for `why`.
fn skip_session_checks(why: &str, list: &mut Checklist) {
    for subject in ["login", "sftp", "login shell"] {
        list.add(Mark::Skipped, subject, why);
    }
}

/// The tools the server would serve, and the custom components it would refuse.
async fn tools(settings: &Arc<Settings>, pool: &Arc<SessionPool>, list: &mut Checklist) {
    let selection = match BuiltinSelection::of_embedded(settings.builtin_tools.as_deref()) {
        Ok(selection) => selection,
        Err(e) => {
            list.add(Mark::Fail, "tools", e);
            return;
        }
    };
    let services = Arc::new(HostServices {
        settings: settings.clone(),
        pool: pool.clone(),
        jobs: Arc::new(crate::jobs::Jobs::new(settings.job_settings())),
    });
    let loaded = async {
        let runtime = Arc::new(Runtime::new(services)?);
        let mut registry =
            Registry::load_builtins(runtime.clone(), &settings.tool_prefix, &selection).await?;
        if let Some(dir) = settings.tools_dir() {
            registry
                .load_folder(&runtime, &settings.tool_prefix, &dir)
                .await?;
        }
        anyhow::Ok(registry)
    }
    .await;
    let registry = match loaded {
        Ok(registry) => registry,
        Err(e) => {
            list.add(Mark::Fail, "tools", format!("{e:#}"));
            return;
        }
    };
    let (builtin, custom): (Vec<_>, Vec<_>) = registry
        .tools()
        .iter()
        .partition(|t| t.source.starts_with("builtin:"));
    list.add(
        Mark::Ok,
        "built-in tools",
        format!("{} served", builtin.len()),
    );
    match settings.tools_dir() {
        None => list.add(Mark::Info, "tools folder", "none (MCP_SSH_TOOLS_DIR)"),
        Some(dir) if !dir.is_dir() => list.add(
            Mark::Warn,
            "tools folder",
            format!("{}: not a directory", dir.display()),
        ),
        Some(dir) => list.add(Mark::Ok, "tools folder", dir.display().to_string()),
    }
    for tool in custom {
        list.add(
            Mark::Ok,
            "custom tool",
            format!("{} from {}", tool.public_name, tool.source),
        );
    }
    for error in registry.load_errors() {
        list.add(Mark::Warn, "custom tool not loaded", error.clone());
    }
}

/// The local directories transfers are confined to.
fn local_roots(settings: &Settings, list: &mut Checklist) {
    match LocalPolicy::from_settings(settings) {
        Ok(policy) => {
            for root in policy.roots() {
                list.add(Mark::Info, "local root", root.display().to_string());
            }
        }
        Err(e) => list.add(Mark::Fail, "local root", e.message().to_string()),
    }
}
