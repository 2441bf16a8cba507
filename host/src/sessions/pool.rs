//! The session pool: open sessions by name, shared by every tool call, outliving tool
//! instances. Picks the default session, connects on demand to the configured host,
//! detects the login shell of a new connection, and replaces connections that dropped
//! (with their SFTP channel, which belongs to the session).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::session::Session;
use crate::config::Settings;
use crate::error::{HostError, HostResult};
use crate::sftp::SftpChannel;
use crate::ssh::host_key_prompt::HostKeyPrompt;
use crate::ssh::shell_probe;
use crate::ssh::target::{self, TargetRequest};
use crate::ssh::{Connection, SessionInfo, Target};

/// The outcome of `SessionPool::connect`.
pub struct Connected {
    pub connection: Arc<Connection>,
    pub reused: bool,
}

/// Open sessions by name.
pub struct SessionPool {
    settings: Arc<Settings>,
    sessions: Mutex<BTreeMap<String, Arc<Session>>>,
    /// A lock per session name, held while connecting to it.
    connecting: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    /// Who is asked about a new host key under `MCP_SSH_STRICT_HOST_KEY_CHECKING=ask`
    /// (the MCP client, once it is connected); nobody before that.
    host_key_prompt: std::sync::RwLock<Option<Arc<dyn HostKeyPrompt>>>,
}

impl SessionPool {
    pub fn new(settings: Arc<Settings>) -> Self {
        SessionPool {
            settings,
            sessions: Mutex::new(BTreeMap::new()),
            connecting: Mutex::new(BTreeMap::new()),
            host_key_prompt: std::sync::RwLock::new(None),
        }
    }

    /// From now on, new host keys are put to `prompt` (under `ask`).
    pub fn set_host_key_prompt(&self, prompt: Arc<dyn HostKeyPrompt>) {
        *self.host_key_prompt.write().unwrap() = Some(prompt);
    }

    /// Resolves a request against the settings and `~/.ssh/config` (read afresh, so
    /// edits apply to the next connection); see [`target::resolve`].
    pub fn resolve(&self, req: &TargetRequest) -> HostResult<Target> {
        target::resolve(&self.settings, req)
    }

    /// Opens a session to the requested target, or reuses the open one to it.
    pub async fn connect(&self, req: &TargetRequest) -> HostResult<Connected> {
        let target = self.resolve(req)?;
        let (session, reused) = self.connect_target(target).await?;
        Ok(Connected {
            connection: session.connection.clone(),
            reused,
        })
    }

    /// Opens a session to `target`, or reuses the open one to it (then `true`).
    async fn connect_target(&self, target: Target) -> HostResult<(Arc<Session>, bool)> {
        let name = target.name.clone();
        // One connect per name at a time; the pool itself stays free meanwhile, so a
        // slow or unreachable host never blocks calls to other sessions.
        let gate = {
            let mut connecting = self.connecting.lock().await;
            connecting.entry(name.clone()).or_default().clone()
        };
        let _gate = gate.lock().await;
        if let Some(existing) = self.sessions.lock().await.get(&name)
            && existing.connection.target == target
            && !existing.connection.is_closed()
        {
            return Ok((existing.clone(), true));
        }
        // The new connection is opened before the old one under this name is closed: a
        // connect that fails (a bad key, a refused login) leaves the working session be.
        let prompt = self.host_key_prompt.read().unwrap().clone();
        let mut connection = Connection::open(target, &self.settings, prompt).await?;
        // A probe that learns nothing is no failure: at most half the connect timeout.
        let probe_time = (connection.target.connect_timeout / 2).min(Duration::from_secs(5));
        connection.info.shell = shell_probe::detect(&connection, probe_time).await;
        tracing::info!(session = %connection.info.name, shell = %connection.info.shell.path, family = connection.info.shell.family.name(), "login shell");
        let session = Arc::new(Session::new(Arc::new(connection)));
        let replaced = self.sessions.lock().await.insert(name, session.clone());
        if let Some(old) = replaced {
            old.close().await;
        }
        Ok((session, false))
    }

    /// The connection of the session a call should use (see [`SessionPool::session`]).
    pub async fn get(&self, name: Option<&str>) -> HostResult<Arc<Connection>> {
        Ok(self.session(name).await?.connection.clone())
    }

    /// The connection of the session a call should use and the session's SFTP channel,
    /// opened on first use (see [`Session::sftp`]).
    pub async fn sftp(
        &self,
        name: Option<&str>,
    ) -> HostResult<(Arc<Connection>, Arc<SftpChannel>)> {
        let session = self.session(name).await?;
        let channel = session.sftp().await?;
        Ok((session.connection.clone(), channel))
    }

    /// The session a call should use: the named one, or the default (the only open
    /// session, else a session to the configured host, opened on demand). A session
    /// whose connection dropped is re-established.
    pub async fn session(&self, name: Option<&str>) -> HostResult<Arc<Session>> {
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
            Some(session) if !session.connection.is_closed() => Ok(session),
            Some(session) => {
                let dropped = &session.connection;
                tracing::warn!(session = %dropped.info.name, "connection dropped; reconnecting");
                let (fresh, _) = self.connect_target(dropped.target.clone()).await?;
                fresh.mark_reconnected();
                Ok(fresh)
            }
            None => {
                if self.settings.hostname.is_none() {
                    return Err(HostError::NotConnected(
                        "not connected: call ssh_connect with a hostname (no MCP_SSH_HOSTNAME is configured)".into(),
                    ));
                }
                let target = self.resolve(&TargetRequest::default())?;
                Ok(self.connect_target(target).await?.0)
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
            Some(session) => {
                session.close().await;
                let info = &session.connection.info;
                tracing::info!(session = %info.name, "SSH session closed");
                Ok(Some(info.clone()))
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
            .map(|s| s.connection.info.clone())
            .collect()
    }

    /// Closes every session (at shutdown).
    pub async fn close_all(&self) {
        let all: Vec<_> = std::mem::take(&mut *self.sessions.lock().await)
            .into_values()
            .collect();
        for session in all {
            session.close().await;
        }
    }
}

fn names(sessions: &BTreeMap<String, Arc<Session>>) -> String {
    if sessions.is_empty() {
        "none".into()
    } else {
        sessions.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}
