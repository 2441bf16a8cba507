//! The host side of the capability interfaces: each `Host` trait turns a guest's request
//! into a call on the host's services and the outcome back into WIT data. Time spent
//! here is counted as host time, so it does not eat into a guest's CPU budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bindings::WitError;
use super::bindings::mcpssh::plugin::{exec, host_log, session, types};
use super::state::{CallState, LOG_RATE_NOTE};
use crate::bounded::cap_message;
use crate::error::{HostError, HostResult};
use crate::sessions::{Connected, SessionPool};
use crate::ssh::exec::{CapturedStream, ExecRequest};
use crate::ssh::{SessionInfo, TargetRequest, exec as ssh_exec};

/// Interfaces the host implements, by WIT name (without version).
pub const IMPLEMENTED_INTERFACES: &[&str] = &[
    "types",
    "session",
    "exec",
    "host-log",
    "remote-read",
    "remote-write",
    "transfer",
    "local-read",
];

/// The most output a call may keep per stream, whatever it asks for: results travel
/// through guest memory and the MCP stream.
pub(super) const MAX_OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;

/// The longest log message of a guest, in bytes.
const MAX_LOG_MESSAGE_BYTES: usize = 4096;

/// The most bytes a guest may send as a command's standard input.
const MAX_STDIN_BYTES: usize = 16 * 1024 * 1024;

impl CallState {
    /// Adds the time since `since` to the host-time account.
    fn count_host_time(&mut self, since: Instant) {
        self.host_time += since.elapsed();
    }
}

impl types::Host for CallState {}

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
        self.scope.check_change("opening an SSH session")?;
        self.scope.check_session(target.host.as_deref())?;
        let scoped = self.scope.limits_hosts();
        if scoped
            && (target.port.is_some() || target.username.is_some() || target.key_filename.is_some())
        {
            return Err(HostError::Denied(format!(
                "this tool may use the sessions {} (scope.hosts in its grant file) but not define them: \
                 connect with the session name only, without port, username or key_filename",
                self.scope.hosts.join(", ")
            ))
            .into());
        }
        let since = Instant::now();
        let default_host = self.services.settings.hostname.clone();
        let checked = self
            .call
            .gate
            .check_connect(target.host.as_deref().or(default_host.as_deref()))
            .await;
        if let Err(e) = checked {
            self.count_host_time(since);
            return Err(e.into());
        }
        let pool = self.services.pool.clone();
        let request = TargetRequest {
            host: target.host,
            port: target.port,
            username: target.username,
            key_filename: target.key_filename,
        };
        let connecting = async {
            if scoped {
                use_session(&pool, &request).await
            } else {
                pool.connect(&request).await
            }
        };
        let result = tokio::select! {
            r = connecting => r,
            _ = self.call.cancel.cancelled() => Err(HostError::Cancelled),
        };
        self.count_host_time(since);
        let connected = result?;
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
        self.scope.check_change("closing an SSH session")?;
        self.scope.check_session(name.as_deref())?;
        let since = Instant::now();
        let result = self.services.pool.disconnect(name.as_deref()).await;
        self.count_host_time(since);
        Ok(result?.map(wit_session))
    }

    async fn login_shell(&mut self, name: Option<String>) -> Result<session::ShellInfo, WitError> {
        self.scope.check_session(name.as_deref())?;
        let since = Instant::now();
        let pool = self.services.pool.clone();
        let result = tokio::select! {
            r = pool.get(name.as_deref()) => r,
            _ = self.call.cancel.cancelled() => Err(HostError::Cancelled),
        };
        self.count_host_time(since);
        let shell = result?.info.shell.clone();
        Ok(session::ShellInfo {
            family: shell.family.name().to_string(),
            path: shell.path,
        })
    }

    async fn open_sessions(&mut self) -> Vec<session::SessionInfo> {
        let since = Instant::now();
        let list = self.services.pool.list().await;
        self.count_host_time(since);
        list.into_iter()
            .filter(|info| self.scope.allows_session(&info.name))
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

pub(super) fn wit_stream(s: CapturedStream) -> exec::CapturedStream {
    exec::CapturedStream {
        head: s.head,
        tail: s.tail,
        cut_bytes: s.cut_bytes,
        total_bytes: s.total_bytes,
    }
}

impl CallState {
    /// Checks a guest's command against the scope, the limits and the policy, and turns
    /// it into the host's request. Returns the request and the session it names.
    async fn prepare_exec(
        &mut self,
        request: exec::ExecRequest,
        idle_timeout: Option<Duration>,
    ) -> HostResult<(ExecRequest, Option<String>)> {
        // A command can change anything, so read-only scopes refuse it.
        self.scope.check_change("running a command")?;
        self.scope.check_session(request.session.as_deref())?;
        let settings = self.services.settings.clone();
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| settings.command_timeout());
        if let Some(stdin) = &request.stdin
            && stdin.len() > MAX_STDIN_BYTES
        {
            return Err(HostError::Invalid(format!(
                "stdin of {} bytes is more than the {MAX_STDIN_BYTES} bytes a call may send; upload a file instead",
                stdin.len()
            )));
        }
        let mut req = ExecRequest {
            command: request.command,
            stdin: request.stdin,
            env: request.env,
            working_directory: request.working_directory,
            timeout,
            output_limit: request
                .output_limit
                .unwrap_or(settings.max_output_bytes)
                .clamp(1024, MAX_OUTPUT_LIMIT),
            pty: request.pty,
            idle_timeout,
        };
        self.call
            .gate
            .check_exec(
                &self.services.pool,
                request.session.as_deref(),
                &req.command,
                !req.env.is_empty(),
                &mut req.timeout,
                &mut req.output_limit,
            )
            .await?;
        Ok((req, request.session))
    }
}

impl exec::Host for CallState {
    async fn run(&mut self, request: exec::ExecRequest) -> Result<exec::ExecOutput, WitError> {
        let since = Instant::now();
        let prepared = self.prepare_exec(request, None).await;
        let (req, session) = match prepared {
            Ok(p) => p,
            Err(e) => {
                self.count_host_time(since);
                return Err(e.into());
            }
        };
        let progress = self.call.progress.clone().map(|sink| {
            Arc::new(move |elapsed: f64, line: Option<String>| {
                let message = match line {
                    Some(l) => format!("running for {elapsed:.0} s; latest output: {l}"),
                    None => format!("running for {elapsed:.0} s"),
                };
                sink(elapsed, None, Some(message));
            }) as ssh_exec::ProgressFn
        });
        let cancel = self.call.cancel.clone();
        let pool = self.services.pool.clone();
        let result = async {
            let conn = tokio::select! {
                c = pool.get(session.as_deref()) => c?,
                _ = cancel.cancelled() => return Err(HostError::Cancelled),
            };
            let reconnected = conn.take_reconnected();
            ssh_exec::run(conn, req, cancel, progress)
                .await
                .map(|out| (out, reconnected))
        }
        .await;
        self.count_host_time(since);
        let (out, reconnected) = result?;
        Ok(exec::ExecOutput {
            exit_code: out.exit_code,
            exit_signal: out.exit_signal,
            stdout: wit_stream(out.stdout),
            stderr: wit_stream(out.stderr),
            timed_out: out.timed_out,
            duration_ms: out.duration.as_millis() as u64,
            reconnected,
        })
    }

    async fn start_job(
        &mut self,
        request: exec::ExecRequest,
        options: exec::JobOptions,
    ) -> Result<exec::JobStarted, WitError> {
        let since = Instant::now();
        let idle = options.idle_timeout_ms.map(Duration::from_millis);
        let result = match self.prepare_exec(request, idle).await {
            Ok((req, session)) => self.start_prepared_job(req, session, options).await,
            Err(e) => Err(e),
        };
        self.count_host_time(since);
        Ok(result?)
    }

    async fn read_job_output(
        &mut self,
        request: exec::OutputRequest,
    ) -> Result<exec::OutputPage, WitError> {
        let since = Instant::now();
        let result = self.read_job_page(request).await;
        self.count_host_time(since);
        Ok(result?)
    }

    async fn cancel_job(&mut self, id: String) -> Result<exec::JobInfo, WitError> {
        let since = Instant::now();
        let result = self.cancel_job_by_id(&id).await;
        self.count_host_time(since);
        Ok(result?)
    }

    async fn list_jobs(&mut self) -> Result<Vec<exec::JobInfo>, WitError> {
        Ok(self.visible_jobs())
    }
}

impl host_log::Host for CallState {
    fn log(&mut self, level: host_log::Level, message: String) -> wasmtime::Result<()> {
        let Some(dropped) = self.log_budget.take(Instant::now()) else {
            return Ok(());
        };
        let message = cap_message(message, MAX_LOG_MESSAGE_BYTES);
        let tool = &self.tool;
        if dropped > 0 {
            tracing::warn!(%tool, "{dropped} log messages of this tool were dropped: {LOG_RATE_NOTE}");
        }
        match level {
            host_log::Level::Trace => tracing::trace!(%tool, "{message}"),
            host_log::Level::Debug => tracing::debug!(%tool, "{message}"),
            host_log::Level::Info => tracing::info!(%tool, "{message}"),
            host_log::Level::Warn => tracing::warn!(%tool, "{message}"),
            host_log::Level::Error => tracing::error!(%tool, "{message}"),
        }
        Ok(())
    }

    fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: Option<String>,
    ) -> wasmtime::Result<()> {
        if let Some(sink) = &self.call.progress {
            sink(done as f64, total.map(|t| t as f64), message);
        }
        Ok(())
    }
}
