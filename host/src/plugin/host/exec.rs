//! The host side of `exec`: running a guest's command on a session and waiting for it,
//! after checking it against the component's grant scope (a command can change
//! anything, so read-only scopes refuse it), the host's limits and the user's policy.
//! The job functions of the interface are in `jobs`; the WIT data it returns in
//! `output`. A cancelled call kills its remote command before it returns.

mod jobs;
mod output;

use std::sync::Arc;
use std::time::Duration;

use super::work::OnCancel;
use crate::error::{HostError, HostResult};
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::exec;
use crate::plugin::state::{CallHost, CallState};
use crate::ssh::exec::{self as ssh_exec, ExecRequest};
use output::{MAX_OUTPUT_LIMIT, wit_stream};

/// The most bytes a guest may send as a command's standard input.
const MAX_STDIN_BYTES: usize = 16 * 1024 * 1024;

impl CallHost {
    /// Checks a guest's command against the scope, the limits and the policy, and turns
    /// it into the host's request. Returns the request and the session it names.
    async fn prepare_exec(
        &self,
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

    /// Runs a guest's command and waits for it; a cancelled call kills it first.
    async fn run(&self, request: exec::ExecRequest) -> HostResult<exec::ExecOutput> {
        let (req, session) = self.prepare_exec(request, None).await?;
        let progress = self.call.progress.clone().map(|sink| {
            Arc::new(move |elapsed: f64, line: Option<String>| {
                let message = match line {
                    Some(l) => format!("running for {elapsed:.0} s; latest output: {l}"),
                    None => format!("running for {elapsed:.0} s"),
                };
                sink(elapsed, None, Some(message));
            }) as ssh_exec::ProgressFn
        });
        let pool = &self.services.pool;
        let session = self
            .until_cancelled(pool.session(session.as_deref()))
            .await?;
        let (conn, reconnected) = (session.connection.clone(), session.take_reconnected());
        let out = ssh_exec::run(conn, req, self.call.cancel.clone(), progress).await?;
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
}

impl exec::Host for CallState {
    async fn run(&mut self, request: exec::ExecRequest) -> Result<exec::ExecOutput, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            host.run(request).await
        })
        .await
    }

    async fn start_job(
        &mut self,
        request: exec::ExecRequest,
        options: exec::JobOptions,
    ) -> Result<exec::JobStarted, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            let idle = options.idle_timeout_ms.map(Duration::from_millis);
            let (req, session) = host.prepare_exec(request, idle).await?;
            host.start_prepared_job(req, session, options).await
        })
        .await
    }

    async fn read_job_output(
        &mut self,
        request: exec::OutputRequest,
    ) -> Result<exec::OutputPage, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            host.read_job_page(request).await
        })
        .await
    }

    async fn cancel_job(&mut self, id: String) -> Result<exec::JobInfo, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            host.cancel_job_by_id(&id).await
        })
        .await
    }

    async fn list_jobs(&mut self) -> Result<Vec<exec::JobInfo>, WitError> {
        Ok(self.host.visible_jobs())
    }
}
