//! The session pool: open connections by name, shared by every tool call, outliving
//! tool instances. Picks the default session, connects on demand to the configured
//! host, and replaces connections that dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use std::time::Duration;

use super::connection::{Connection, SessionInfo, Target, key_path};
use super::known_hosts::KnownHostsFiles;
use super::shell_probe;
use super::ssh_config::SshConfig;
use crate::config::Settings;
use crate::error::{HostError, HostResult};

/// What a request may say about where to connect; the rest comes from configuration.
#[derive(Debug, Clone, Default)]
pub struct TargetRequest {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub key_filename: Option<String>,
}

/// The outcome of `SessionPool::connect`.
pub struct Connected {
    pub connection: Arc<Connection>,
    pub reused: bool,
}

/// Open sessions by name.
pub struct SessionPool {
    settings: Arc<Settings>,
    sessions: Mutex<BTreeMap<String, Arc<Connection>>>,
    /// A lock per session name, held while connecting to it.
    connecting: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
}

impl SessionPool {
    pub fn new(settings: Arc<Settings>) -> Self {
        SessionPool {
            settings,
            sessions: Mutex::new(BTreeMap::new()),
            connecting: Mutex::new(BTreeMap::new()),
        }
    }

    /// Resolves a request against the settings and `~/.ssh/config` (read afresh, so
    /// edits apply to the next connection).
    fn resolve(&self, req: &TargetRequest) -> HostResult<Target> {
        let s = &self.settings;
        let alias = req.host.clone().or_else(|| s.hostname.clone()).ok_or_else(|| {
            HostError::NotConnected(
                "no host given and none configured: pass `hostname` to ssh_connect or set MCP_SSH_HOSTNAME".into(),
            )
        })?;
        let config = SshConfig::load(&s.ssh_config_path());
        let mut target = self.target_for(&config, &alias, req, false);
        if let Some(jumps) = config.resolve(&alias).proxy_jump {
            for hop in jumps.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                let (user, host, port) = parse_hop(hop)?;
                let hop_req = TargetRequest {
                    host: Some(host),
                    port,
                    username: user,
                    key_filename: None,
                };
                target.proxy_jump.push(self.target_for(
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
        &self,
        config: &SshConfig,
        alias: &str,
        req: &TargetRequest,
        hop: bool,
    ) -> Target {
        let s = &self.settings;
        let hc = config.resolve(alias);
        let settings = (!hop).then_some(s.as_ref());
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
            s.password.is_some() && self.user_named_endpoint(config, alias, &host, port);
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
            proxy_jump: Vec::new(),
            connect_timeout: hc
                .connect_timeout
                .map(Duration::from_secs)
                .unwrap_or_else(|| s.connect_timeout()),
            keepalive: Duration::from_secs(
                hc.server_alive_interval.filter(|&i| i > 0).unwrap_or(15),
            ),
        }
    }

    /// True when the user named the endpoint `host:port` (reached as `alias`): it is the
    /// configured host (`MCP_SSH_HOSTNAME` with its port, resolved through
    /// `~/.ssh/config` the same way), or it matches `MCP_SSH_PASSWORD_HOSTS`. Only such
    /// endpoints are offered the password: a host the model or a tool invented is not.
    fn user_named_endpoint(&self, config: &SshConfig, alias: &str, host: &str, port: u16) -> bool {
        let s = &self.settings;
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

    /// Opens a session to the requested target, or reuses the open one to it.
    pub async fn connect(&self, req: &TargetRequest) -> HostResult<Connected> {
        let target = self.resolve(req)?;
        self.connect_target(target).await
    }

    /// Opens a session to `target`, or reuses the open one to it.
    async fn connect_target(&self, target: Target) -> HostResult<Connected> {
        let name = target.name.clone();
        // One connect per name at a time; the pool itself stays free meanwhile, so a
        // slow or unreachable host never blocks calls to other sessions.
        let gate = {
            let mut connecting = self.connecting.lock().await;
            connecting.entry(name.clone()).or_default().clone()
        };
        let _gate = gate.lock().await;
        if let Some(existing) = self.sessions.lock().await.get(&name)
            && existing.target == target
            && !existing.is_closed()
        {
            return Ok(Connected {
                connection: existing.clone(),
                reused: true,
            });
        }
        // The new connection is opened before the old one under this name is closed: a
        // connect that fails (a bad key, a refused login) leaves the working session be.
        let mut connection = Connection::open(target, &self.settings).await?;
        // A probe that learns nothing is no failure: at most half the connect timeout.
        let probe_time = (connection.target.connect_timeout / 2).min(Duration::from_secs(5));
        connection.info.shell = shell_probe::detect(&connection, probe_time).await;
        tracing::info!(session = %connection.info.name, shell = %connection.info.shell.path, family = connection.info.shell.family.name(), "login shell");
        let connection = Arc::new(connection);
        let replaced = self.sessions.lock().await.insert(name, connection.clone());
        if let Some(old) = replaced {
            old.close().await;
        }
        Ok(Connected {
            connection,
            reused: false,
        })
    }

    /// The session a call should use: the named one, or the default (the only open
    /// session, else a session to the configured host, opened on demand). A session
    /// whose connection dropped is re-established.
    pub async fn get(&self, name: Option<&str>) -> HostResult<Arc<Connection>> {
        let found = {
            let sessions = self.sessions.lock().await;
            match name {
                Some(n) => Some(sessions.get(n).cloned().ok_or_else(|| {
                    HostError::NotConnected(format!(
                        "no open session named '{n}'; open sessions: {}",
                        names(&sessions)
                    ))
                })?),
                None if sessions.len() == 1 => sessions.values().next().cloned(),
                None if sessions.len() > 1 => {
                    let configured = self.resolve(&TargetRequest::default()).ok().map(|t| t.name);
                    match configured.and_then(|c| sessions.get(&c).cloned()) {
                        Some(c) => Some(c),
                        None => {
                            return Err(HostError::Invalid(format!(
                                "several sessions are open ({}); say which one to use",
                                names(&sessions)
                            )));
                        }
                    }
                }
                None => None,
            }
        };
        match found {
            Some(conn) if !conn.is_closed() => Ok(conn),
            Some(conn) => {
                tracing::warn!(session = %conn.info.name, "connection dropped; reconnecting");
                {
                    let fresh = self.connect_target(conn.target.clone()).await?.connection;
                    fresh.mark_reconnected();
                    Ok(fresh)
                }
            }
            None => {
                if self.settings.hostname.is_none() {
                    return Err(HostError::NotConnected(
                        "not connected: call ssh_connect with a hostname (no MCP_SSH_HOSTNAME is configured)".into(),
                    ));
                }
                Ok(self.connect(&TargetRequest::default()).await?.connection)
            }
        }
    }

    /// Closes the named session, or the default one. Returns it, or none if none was open.
    pub async fn disconnect(&self, name: Option<&str>) -> HostResult<Option<SessionInfo>> {
        let removed = {
            let mut sessions = self.sessions.lock().await;
            match name {
                Some(n) => sessions.remove(n),
                None if sessions.len() <= 1 => sessions.pop_first().map(|(_, c)| c),
                None => {
                    return Err(HostError::Invalid(format!(
                        "several sessions are open ({}); say which one to close",
                        names(&sessions)
                    )));
                }
            }
        };
        match removed {
            Some(conn) => {
                conn.close().await;
                tracing::info!(session = %conn.info.name, "SSH session closed");
                Ok(Some(conn.info.clone()))
            }
            None => Ok(None),
        }
    }

    /// The open sessions.
    pub async fn list(&self) -> Vec<SessionInfo> {
        self.sessions
            .lock()
            .await
            .values()
            .map(|c| c.info.clone())
            .collect()
    }

    /// Closes every session (at shutdown).
    pub async fn close_all(&self) {
        let all: Vec<_> = std::mem::take(&mut *self.sessions.lock().await)
            .into_values()
            .collect();
        for conn in all {
            conn.close().await;
        }
    }
}

fn names(sessions: &BTreeMap<String, Arc<Connection>>) -> String {
    if sessions.is_empty() {
        "none".into()
    } else {
        sessions.keys().cloned().collect::<Vec<_>>().join(", ")
    }
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
