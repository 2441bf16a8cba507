//! The session pool: open connections by name, shared by every tool call, outliving
//! tool instances. Picks the default session, connects on demand to the configured
//! host, and replaces connections that dropped.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::connection::{Connection, SessionInfo, Target, key_path};
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
}

impl SessionPool {
    pub fn new(settings: Arc<Settings>) -> Self {
        SessionPool {
            settings,
            sessions: Mutex::new(BTreeMap::new()),
        }
    }

    /// Resolves a request against the configuration.
    fn resolve(&self, req: &TargetRequest) -> HostResult<Target> {
        let s = &self.settings;
        let host = req.host.clone().or_else(|| s.hostname.clone()).ok_or_else(|| {
            HostError::NotConnected(
                "no host given and none configured: pass `hostname` to ssh_connect or set MCP_SSH_HOSTNAME".into(),
            )
        })?;
        // Explicit parameters for another host do not inherit the configured key's host.
        Ok(Target {
            port: req.port.unwrap_or(s.port),
            username: req.username.clone().unwrap_or_else(|| s.default_username()),
            key_file: req
                .key_filename
                .as_deref()
                .or(s.key_filename.as_deref())
                .map(key_path),
            host,
        })
    }

    /// Opens a session to the requested target, or reuses the open one to it.
    pub async fn connect(&self, req: &TargetRequest) -> HostResult<Connected> {
        let target = self.resolve(req)?;
        let name = target.session_name();
        let mut sessions = self.sessions.lock().await;
        if let Some(existing) = sessions.get(&name) {
            if existing.target == target && !existing.is_closed() {
                return Ok(Connected {
                    connection: existing.clone(),
                    reused: true,
                });
            }
            if let Some(old) = sessions.remove(&name) {
                old.close().await;
            }
        }
        let connection = Arc::new(Connection::open(target, &self.settings).await?);
        sessions.insert(name, connection.clone());
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
                    let configured = self
                        .resolve(&TargetRequest::default())
                        .ok()
                        .map(|t| t.session_name());
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
                let req = TargetRequest {
                    host: Some(conn.target.host.clone()),
                    port: Some(conn.target.port),
                    username: Some(conn.target.username.clone()),
                    key_filename: conn
                        .target
                        .key_file
                        .as_ref()
                        .map(|p| p.display().to_string()),
                };
                Ok(self.connect(&req).await?.connection)
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
