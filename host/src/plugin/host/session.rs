//! The host side of `session`: opening, closing and listing the host's SSH sessions and
//! telling a session's login shell, within the component's grant scope (a tool limited
//! to some sessions may use them but not define them) and the user's policy.

use super::work::OnCancel;
use crate::error::{HostError, HostResult};
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::session;
use crate::plugin::state::CallState;
use crate::sessions::{Connected, SessionPool};
use crate::ssh::{SessionInfo, TargetRequest};

fn wit_session(info: SessionInfo) -> session::SessionInfo {
    session::SessionInfo {
        name: info.name,
        host: info.host,
        port: info.port,
        username: info.username,
        server_version: info.server_version,
        host_key_algorithm: info.host_key_algorithm,
        host_key_fingerprint: info.host_key_fingerprint,
        connected_at: info.connected_at,
    }
}

impl session::Host for CallState {
    async fn connect(
        &mut self,
        target: session::Target,
    ) -> Result<session::ConnectOutcome, WitError> {
        let scope = &self.host.scope;
        scope.check_change("opening an SSH session")?;
        scope.check_session(target.host.as_deref())?;
        let scoped = scope.limits_hosts();
        if scoped
            && (target.port.is_some() || target.username.is_some() || target.key_filename.is_some())
        {
            return Err(HostError::Denied(format!(
                "this tool may use the sessions {} (scope.hosts in its grant file) but not define them: \
                 connect with the session name only, without port, username or key_filename",
                scope.hosts.join(", ")
            ))
            .into());
        }
        let connected = self
            .host_work(OnCancel::LetFinish, |host| async move {
                let default_host = host.services.settings.hostname.clone();
                let pool = &host.services.pool;
                host.call
                    .gate
                    .check_connect(pool, target.host.as_deref(), default_host.as_deref())
                    .await?;
                let request = TargetRequest {
                    host: target.host,
                    port: target.port,
                    username: target.username,
                    key_filename: target.key_filename,
                };
                host.until_cancelled(async {
                    if scoped {
                        use_session(pool, &request).await
                    } else {
                        pool.connect(&request).await
                    }
                })
                .await
            })
            .await?;
        Ok(session::ConnectOutcome {
            info: wit_session(connected.connection.info.clone()),
            reused: connected.reused,
            new_host_key_recorded: !connected.reused && connected.connection.new_host_key_recorded,
        })
    }

    async fn disconnect(
        &mut self,
        name: Option<String>,
    ) -> Result<Option<session::SessionInfo>, WitError> {
        self.host.scope.check_change("closing an SSH session")?;
        self.host.scope.check_session(name.as_deref())?;
        let closed = self
            .host_work(OnCancel::Abandon, |host| async move {
                host.services.pool.disconnect(name.as_deref()).await
            })
            .await?;
        Ok(closed.map(wit_session))
    }

    async fn login_shell(&mut self, name: Option<String>) -> Result<session::ShellInfo, WitError> {
        self.host.scope.check_session(name.as_deref())?;
        let connection = self
            .host_work(OnCancel::Abandon, |host| async move {
                host.services.pool.get(name.as_deref()).await
            })
            .await?;
        let shell = connection.info.shell.clone();
        Ok(session::ShellInfo {
            family: shell.family.name().to_string(),
            path: shell.path,
        })
    }

    async fn open_sessions(&mut self) -> Vec<session::SessionInfo> {
        // The list cannot report an error: it is read to the end (a short lock).
        let list = self
            .host_work(OnCancel::LetFinish, |host| async move {
                Ok(host.services.pool.list().await)
            })
            .await
            .unwrap_or_default();
        list.into_iter()
            .filter(|info| self.host.scope.allows_session(&info.name))
            .map(wit_session)
            .collect()
    }
}

/// For a tool limited to some sessions: the open session `request` names, as it is
/// (reconnected with its own settings if its connection dropped), or else that session
/// opened as the user's configuration defines it. Never replaces an open session.
async fn use_session(pool: &SessionPool, request: &TargetRequest) -> HostResult<Connected> {
    match pool.get(request.host.as_deref()).await {
        Ok(connection) => Ok(Connected {
            connection,
            reused: true,
        }),
        Err(HostError::NotConnected(_)) => pool.connect(request).await,
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;

    #[tokio::test]
    async fn a_cancelled_call_does_not_go_on_to_disconnect() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut state = CallState::for_tests(cancel);
        let closed = session::Host::disconnect(&mut state, None).await;
        assert!(
            matches!(closed, Err(WitError::Cancelled)),
            "disconnect went ahead in a cancelled call: {closed:?}"
        );
    }
}
