//! The job functions of `exec`: starting a command as a job (waiting for it up to the
//! foreground limit), reading its output in pages, cancelling and listing. A tool limited
//! to some sessions sees only their jobs.

use std::sync::Arc;
use std::time::Duration;

use super::output::{MAX_OUTPUT_LIMIT, wit_job, wit_stream};
use crate::error::{HostError, HostResult};
use crate::jobs::{Job, JobInfo, OutputStream, detached};
use crate::plugin::bindings::mcpssh::plugin::exec;
use crate::plugin::state::CallHost;
use crate::ssh::exec::{self as ssh_exec, ExecRequest};

/// The longest a read may wait for new output, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Stops a job whose starting call is dropped while it waits for it (the call ran past
/// its wall-clock limit): as with any command, the remote process dies with the call.
struct StopIfAbandoned(Arc<Job>);

impl Drop for StopIfAbandoned {
    fn drop(&mut self) {
        if self.0.is_held() {
            self.0.stop();
            self.0.release();
        }
    }
}

impl CallHost {
    /// Reports a waited-for job's progress to the client, if it asked for progress.
    fn job_progress(&self) -> impl Fn(&JobInfo) + Send + Sync + use<> {
        let sink = self.call.progress.clone();
        move |info: &JobInfo| {
            if let Some(sink) = &sink {
                let elapsed = info.duration.as_secs_f64();
                let message = match &info.latest_line {
                    Some(l) => {
                        format!("{} running for {elapsed:.0} s; latest output: {l}", info.id)
                    }
                    None => format!("{} running for {elapsed:.0} s", info.id),
                };
                sink(elapsed, None, Some(message));
            }
        }
    }

    /// The job `id`, if this tool may see its session. A detached job the host does not
    /// follow (any more) is followed again, on the default session.
    async fn visible_job(&self, id: &str) -> HostResult<Arc<Job>> {
        let kept = self.services.jobs.get(id);
        // The follower lost its connection: follow again (a cancelled one stays).
        let lost = |job: &Arc<Job>| job.info().end.is_some_and(|end| end.error.is_some());
        let job = match kept {
            Ok(job) if !(detached::is_detached_id(id) && lost(&job)) => job,
            Err(e) if !detached::is_detached_id(id) => return Err(e),
            _ => self.follow_detached(id, None).await?,
        };
        self.scope.check_session(Some(&job.session))?;
        Ok(job)
    }

    /// Starts (again) the job that follows detached job `id` on `session`.
    async fn follow_detached(&self, id: &str, session: Option<&str>) -> HostResult<Arc<Job>> {
        self.scope.check_session(session)?;
        let conn = self.services.pool.get(session).await?;
        let request = ExecRequest {
            command: detached::follower(id),
            stdin: None,
            env: Vec::new(),
            working_directory: None,
            timeout: Duration::from_secs(365 * 86_400),
            output_limit: 1024,
            pty: false,
            idle_timeout: None,
        };
        self.services.jobs.start(
            conn.clone(),
            conn.info.name.clone(),
            request,
            false,
            Some(id.to_string()),
        )
    }

    /// Starts a checked request detached on the remote host, and follows it.
    async fn start_detached(
        &self,
        req: ExecRequest,
        session: Option<String>,
    ) -> HostResult<exec::JobStarted> {
        let conn = self.services.pool.get(session.as_deref()).await?;
        if conn.info.shell.family.is_windows() {
            return Err(HostError::Invalid(
                "detached jobs need a Unix login shell; this host's is Windows: run the \
                 command without `detached`"
                    .into(),
            ));
        }
        let id = detached::new_id();
        let launch = ExecRequest {
            command: detached::launcher(&id, &req.command),
            timeout: Duration::from_secs(30),
            output_limit: 4096,
            stdin: None,
            pty: false,
            idle_timeout: None,
            ..req
        };
        let out = ssh_exec::run(conn.clone(), launch, self.call.cancel.clone(), None).await?;
        let said = String::from_utf8_lossy(&[out.stderr.head, out.stderr.tail].concat())
            .trim()
            .to_string();
        match out.exit_code {
            Some(0) => {}
            Some(detached::NO_SETSID) => {
                return Err(HostError::Invalid(
                    "detached jobs need `setsid` on the remote host (util-linux), and it has \
                     none: run the command without `detached`"
                        .into(),
                ));
            }
            code => {
                return Err(HostError::Other(format!(
                    "starting the detached job failed (exit status {code:?}): {said}"
                )));
            }
        }
        let job = self.follow_detached(&id, Some(&conn.info.name)).await?;
        Ok(exec::JobStarted {
            output: exec::ExecOutput {
                exit_code: None,
                exit_signal: None,
                stdout: wit_stream(Default::default()),
                stderr: wit_stream(Default::default()),
                timed_out: false,
                duration_ms: 0,
                reconnected: false,
            },
            job: wit_job(job.info()),
        })
    }

    /// Starts a checked request as a job and waits for it up to the foreground limit.
    pub async fn start_prepared_job(
        &self,
        req: ExecRequest,
        session: Option<String>,
        options: exec::JobOptions,
    ) -> HostResult<exec::JobStarted> {
        if options.detached {
            return self.start_detached(req, session).await;
        }
        let cancel = self.call.cancel.clone();
        let session = self
            .until_cancelled(self.services.pool.session(session.as_deref()))
            .await?;
        let (conn, reconnected) = (session.connection.clone(), session.take_reconnected());
        let jobs = self.services.jobs.clone();
        let foreground = options
            .foreground_ms
            .map(Duration::from_millis)
            .unwrap_or_else(|| self.services.settings.foreground());
        let held = !foreground.is_zero();
        let job = jobs.start(conn.clone(), conn.info.name.clone(), req, held, None)?;
        let _abandoned = StopIfAbandoned(job.clone());
        let tick = self.job_progress();
        job.wait_for_output(None, foreground, &cancel, &tick).await;
        if cancel.is_cancelled() && !job.is_finished() {
            job.cancel().await;
            jobs.forget(&job.id);
            return Err(HostError::Cancelled);
        }
        // The state first: output after it only adds to what the job keeps.
        let info = job.info();
        let (stdout, stderr) = job.take_captured();
        job.release();
        if let Some(end) = &info.end {
            let nothing_more = stdout.cut_bytes == 0 && stderr.cut_bytes == 0;
            if nothing_more || end.error.is_some() {
                jobs.forget(&job.id);
            }
            if let Some(e) = &end.error {
                return Err(e.clone());
            }
        }
        let end = info.end.clone().unwrap_or_default();
        Ok(exec::JobStarted {
            output: exec::ExecOutput {
                exit_code: end.exit_code,
                exit_signal: end.exit_signal,
                stdout: wit_stream(stdout),
                stderr: wit_stream(stderr),
                timed_out: end.timed_out,
                duration_ms: info.duration.as_millis() as u64,
                reconnected,
            },
            job: wit_job(info),
        })
    }

    /// A page of a job's output, after waiting for new output if asked.
    pub async fn read_job_page(
        &self,
        request: exec::OutputRequest,
    ) -> HostResult<exec::OutputPage> {
        let job = self.visible_job(&request.id).await?;
        let stream = match request.stream {
            exec::OutputStream::Stdout => OutputStream::Stdout,
            exec::OutputStream::Stderr => OutputStream::Stderr,
        };
        let max = request.max_bytes.clamp(1, MAX_OUTPUT_LIMIT) as usize;
        if request.wait_ms > 0 {
            let after = match request.tail {
                Some(_) => job.read(stream, 0, Some(0), 1)?.total,
                None => request.offset,
            };
            let wait = Duration::from_millis(request.wait_ms).min(MAX_WAIT);
            let tick = self.job_progress();
            let cancel = self.call.cancel.clone();
            job.wait_for_output(Some((stream, after)), wait, &cancel, &tick)
                .await;
            if cancel.is_cancelled() {
                return Err(HostError::Cancelled);
            }
        }
        let chunk = job.read(stream, request.offset, request.tail, max)?;
        Ok(exec::OutputPage {
            offset: chunk.offset,
            data: chunk.data,
            first_kept: chunk.first_kept,
            job: wit_job(job.info()),
        })
    }

    /// Stops job `id`.
    pub async fn cancel_job_by_id(&self, id: &str) -> HostResult<exec::JobInfo> {
        self.scope.check_change("cancelling a job")?;
        let job = self.visible_job(id).await?;
        if detached::is_detached_id(id) {
            let conn = self.services.pool.get(Some(&job.session)).await?;
            let kill = ExecRequest {
                command: detached::killer(id),
                stdin: None,
                env: Vec::new(),
                working_directory: None,
                timeout: Duration::from_secs(20),
                output_limit: 4096,
                pty: false,
                idle_timeout: None,
            };
            ssh_exec::run(conn, kill, self.call.cancel.clone(), None).await?;
        }
        job.cancel().await;
        Ok(wit_job(job.info()))
    }

    /// The jobs of the sessions this tool may use.
    pub fn visible_jobs(&self) -> Vec<exec::JobInfo> {
        self.services
            .jobs
            .list()
            .into_iter()
            .filter(|job| self.scope.allows_session(&job.session))
            .map(|job| wit_job(job.info()))
            .collect()
    }
}
