//! Where to connect: a [`TargetRequest`] (what a call may say) resolved against the
//! user's settings and `~/.ssh/config` into a [`Target`] (host, port, user, keys,
//! known_hosts files, ProxyJump hops, timeouts), including whether the user named the
//! endpoint, which decides if a configured password may be offered to it.

use std::path::PathBuf;
use std::time::Duration;

use super::known_hosts::KnownHostsFiles;
use crate::config::{HostKeyPolicy, Settings, expand_tilde};
use crate::error::{HostError, HostResult};
use crate::ssh_config::SshConfig;

/// Where to connect, fully resolved from a request, the settings and `~/.ssh/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The name the session goes by: the alias or host the user gave (`:port` added
    /// when an explicit port differs from 22).
    pub name: String,
    /// The host to reach (after `HostName`).
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Key files to try; empty means the default `~/.ssh/id_*` files.
    pub identity_files: Vec<PathBuf>,
    /// Offer only the configured keys, even from the agent.
    pub identities_only: bool,
    /// The user named this endpoint (the configured host, or one listed in
    /// `MCP_SSH_PASSWORD_HOSTS`), so a configured password may be offered to it.
    pub password_allowed: bool,
    /// The key file came from the request (a model or a tool), not from the user's
    /// configuration, so the configured passphrase is not used to open it.
    pub key_from_request: bool,
    /// The known_hosts files that verify the host key.
    pub known_hosts: KnownHostsFiles,
    /// How strictly the host key is checked: `MCP_SSH_STRICT_HOST_KEY_CHECKING` when set,
    /// else the host's `StrictHostKeyChecking`, else `accept-new`.
    pub host_key_policy: HostKeyPolicy,
    /// Jump hosts, first hop first.
    pub proxy_jump: Vec<Target>,
    pub connect_timeout: Duration,
    pub keepalive: Duration,
}

/// What a request may say about where to connect; the rest comes from configuration.
#[derive(Debug, Clone, Default)]
pub struct TargetRequest {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub key_filename: Option<String>,
}

/// Resolves a request against the settings and `~/.ssh/config` (read afresh, so
/// edits apply to the next connection).
pub fn resolve(settings: &Settings, req: &TargetRequest) -> HostResult<Target> {
    let s = settings;
    let alias = req.host.clone().or_else(|| s.hostname.clone()).ok_or_else(|| {
        HostError::NotConnected(
            "no host given and none configured: pass `hostname` to ssh_connect or set MCP_SSH_HOSTNAME".into(),
        )
    })?;
    // A refused configuration is the user's to fix, not the request's.
    let config = SshConfig::load(&s.ssh_config_path()).map_err(HostError::PermissionDenied)?;
    let mut target = target_for(settings, &config, &alias, req, false);
    if let Some(jumps) = config.resolve(&alias).proxy_jump {
        for hop in jumps.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (user, host, port) = parse_hop(hop)?;
            let hop_req = TargetRequest {
                host: Some(host),
                port,
                username: user,
                key_filename: None,
            };
            target.proxy_jump.push(target_for(
                settings,
                &config,
                hop_req.host.as_deref().unwrap_or_default(),
                &hop_req,
                true,
            ));
        }
    }
    Ok(target)
}

/// One target: request first, then (except for jump hops) the settings, then the
/// configuration, then OpenSSH's defaults.
fn target_for(
    settings: &Settings,
    config: &SshConfig,
    alias: &str,
    req: &TargetRequest,
    hop: bool,
) -> Target {
    let s = settings;
    let hc = config.resolve(alias);
    let settings = (!hop).then_some(s);
    let port = req
        .port
        .or(settings.and_then(|s| s.port))
        .or(hc.port)
        .unwrap_or(22);
    let username = req
        .username
        .clone()
        .or_else(|| settings.and_then(|s| s.username.clone()))
        .or(hc.user)
        .unwrap_or_else(|| s.default_username());
    let explicit_key = req
        .key_filename
        .clone()
        .or_else(|| settings.and_then(|s| s.key_filename.clone()));
    let identity_files = match explicit_key {
        Some(k) => vec![key_path(&k)],
        None => hc.identity_files,
    };
    // A key named by the request is the user's own only when it is the configured one.
    let key_from_request = req
        .key_filename
        .as_deref()
        .is_some_and(|k| s.key_filename.as_deref().map(key_path) != Some(key_path(k)));
    let host = hc.hostname.unwrap_or_else(|| alias.to_string());
    let password_allowed =
        s.password.is_some() && user_named_endpoint(s, config, alias, &host, port);
    let known_hosts = KnownHostsFiles::select(s, hc.known_hosts);
    let name = if config.knows(alias) || port == 22 {
        alias.to_string()
    } else {
        format!("{alias}:{port}")
    };
    Target {
        name,
        host,
        port,
        username,
        identity_files,
        identities_only: hc.identities_only.unwrap_or(false),
        password_allowed,
        key_from_request,
        known_hosts,
        host_key_policy: s
            .strict_host_key_checking
            .or(hc.strict_host_key_checking.map(from_config))
            .unwrap_or(HostKeyPolicy::AcceptNew),
        proxy_jump: Vec::new(),
        connect_timeout: hc
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or_else(|| s.connect_timeout()),
        keepalive: Duration::from_secs(hc.server_alive_interval.filter(|&i| i > 0).unwrap_or(15)),
    }
}

/// A `StrictHostKeyChecking` from `~/.ssh/config` as mcpssh applies it. `no` there is
/// often a leftover of a development set-up (`Host *`), and OpenSSH's own `no` still
/// refuses passwords to a host whose key changed; mcpssh's `no` would accept a changed key
/// outright. So from the file it is taken as `accept-new` (new keys recorded, changed keys
/// refused); only `MCP_SSH_STRICT_HOST_KEY_CHECKING=no` turns checking off.
fn from_config(policy: HostKeyPolicy) -> HostKeyPolicy {
    match policy {
        HostKeyPolicy::No => HostKeyPolicy::AcceptNew,
        other => other,
    }
}

/// True when the user named the endpoint `host:port` (reached as `alias`): it is the
/// configured host (`MCP_SSH_HOSTNAME` with its port, resolved through
/// `~/.ssh/config` the same way), or it matches `MCP_SSH_PASSWORD_HOSTS`. Only such
/// endpoints are offered the password: a host the model or a tool invented is not.
fn user_named_endpoint(
    settings: &Settings,
    config: &SshConfig,
    alias: &str,
    host: &str,
    port: u16,
) -> bool {
    let s = settings;
    let configured = s.hostname.as_deref().is_some_and(|configured| {
        let hc = config.resolve(configured);
        let configured_port = s.port.or(hc.port).unwrap_or(22);
        let configured_host = hc.hostname.unwrap_or_else(|| configured.to_string());
        configured_port == port && configured_host.eq_ignore_ascii_case(host)
    });
    configured
        || s.password_hosts()
            .iter()
            .any(|p| p.matches(alias, port) || p.matches(host, port))
}

/// Resolves the key file path given by a request or the configuration.
pub fn key_path(path: &str) -> PathBuf {
    expand_tilde(path)
}

/// Splits a ProxyJump hop `[user@]host[:port]` (or `ssh://user@host:port`).
fn parse_hop(hop: &str) -> HostResult<(Option<String>, String, Option<u16>)> {
    let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, hop),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => {
            let port = p
                .parse()
                .map_err(|_| HostError::Invalid(format!("bad port in ProxyJump hop {hop:?}")))?;
            (h.to_string(), Some(port))
        }
        _ => (
            rest.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            None,
        ),
    };
    if host.is_empty() {
        return Err(HostError::Invalid(format!(
            "empty host in ProxyJump hop {hop:?}"
        )));
    }
    Ok((user, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_jump_hops_parse() {
        assert_eq!(
            parse_hop("bastion").unwrap(),
            (None, "bastion".into(), None)
        );
        assert_eq!(
            parse_hop("me@b:2222").unwrap(),
            (Some("me".into()), "b".into(), Some(2222))
        );
        assert_eq!(
            parse_hop("ssh://me@b:22").unwrap(),
            (Some("me".into()), "b".into(), Some(22))
        );
        assert!(parse_hop("b:notaport").is_err());
    }
}
