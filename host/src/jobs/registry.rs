//! The job registry: starts a remote command as a job (through the same wrapper and
//! process-group handling as every command), keeps each stream in a [`Spool`], lets
//! callers wait for new output or the end, cancels (killing the remote process group as
//! timeouts do), lists, and forgets finished jobs after a while.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::spool::{Chunk, Spool};
use crate::error::{HostError, HostResult};
use crate::ssh::connection::Connection;
use crate::ssh::exec::{self, Capture, CapturedStream, ExecRequest, OutputSink};

/// The bounds of jobs, from the settings.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Bytes of each stream kept in memory before it moves to disk.
    pub memory_bytes: usize,
    /// Bytes of each stream kept on disk (the latest ones).
    pub spool_bytes: u64,
    /// Jobs kept at once, running or finished.
    pub max_jobs: usize,
    /// How long a finished job stays readable.
    pub keep_for: Duration,
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// How a job ended.
#[derive(Debug, Clone, Default)]
pub struct JobEnd {
    pub exit_code: Option<i32>,
    pub exit_signal: Option<String>,
    pub timed_out: bool,
    pub idle_timed_out: bool,
    pub cancelled: bool,
    /// Why the command could not run or its outcome is unknown.
    pub error: Option<HostError>,
}

/// A snapshot of a job, for results and listings.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub id: String,
    pub session: String,
    pub command: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub duration: Duration,
    pub end: Option<JobEnd>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The latest non-blank output line, for progress.
    pub latest_line: Option<String>,
}

/// What a job holds while it runs and after.
struct JobState {
    stdout: Spool,
    stderr: Spool,
    /// Head and tail of each stream, as a normal command's result keeps them.
    stdout_capture: Capture,
    stderr_capture: Capture,
    latest_line: Option<String>,
    end: Option<JobEnd>,
    ended: Option<Instant>,
}

/// One job.
pub struct Job {
    pub id: String,
    pub session: String,
    command: String,
    started: Instant,
    started_at: u64,
    state: Mutex<JobState>,
    /// Bumped on every change (output or end), for waiters.
    changed: watch::Sender<u64>,
    /// True while the call that started the job waits for it.
    held: AtomicBool,
    cancel: CancellationToken,
    /// Where spool files are made (each in a private directory of its own).
    spool_parent: Arc<PathBuf>,
}

/// The longest command text kept for listings.
const MAX_COMMAND_CHARS: usize = 200;

impl Job {
    fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A snapshot of the job.
    pub fn info(&self) -> JobInfo {
        let state = self.lock();
        JobInfo {
            id: self.id.clone(),
            session: self.session.clone(),
            command: self.command.clone(),
            started_at: self.started_at,
            duration: state
                .ended
                .unwrap_or_else(Instant::now)
                .duration_since(self.started),
            end: state.end.clone(),
            stdout_bytes: state.stdout.total(),
            stderr_bytes: state.stderr.total(),
            latest_line: state.latest_line.clone(),
        }
    }

    /// True while the call that started the job waits for it.
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Relaxed)
    }

    /// The starting call returns: the job is kept on its own from now on.
    pub fn release(&self) {
        self.held.store(false, Ordering::Relaxed);
    }

    /// True once the command ended.
    pub fn is_finished(&self) -> bool {
        self.lock().end.is_some()
    }

    /// Head and tail of both streams so far, for the call that started the job. They are
    /// kept no longer: from now on the output lives in the spools only.
    pub fn take_captured(&self) -> (CapturedStream, CapturedStream) {
        let mut state = self.lock();
        let captured = (
            state.stdout_capture.snapshot(),
            state.stderr_capture.snapshot(),
        );
        state.stdout_capture = Capture::new(0);
        state.stderr_capture = Capture::new(0);
        captured
    }

    /// Up to `max` bytes of `stream`: from `offset`, or (when `tail` is given) the last
    /// `tail` bytes.
    pub fn read(
        &self,
        stream: OutputStream,
        offset: u64,
        tail: Option<u64>,
        max: usize,
    ) -> HostResult<Chunk> {
        let state = self.lock();
        let spool = match stream {
            OutputStream::Stdout => &state.stdout,
            OutputStream::Stderr => &state.stderr,
        };
        let (offset, max) = match tail {
            Some(n) => {
                let n = n.min(max as u64);
                (spool.total().saturating_sub(n), n as usize)
            }
            None => (offset, max),
        };
        spool.read(offset, max).map_err(|e| {
            HostError::Other(format!("reading the output of job {} failed: {e}", self.id))
        })
    }

    /// Waits until `stream` holds more than `offset` bytes, the job ends, `wait` passes
    /// or `cancel` fires; calls `tick` every second meanwhile.
    pub async fn wait_for_output(
        &self,
        stream: Option<(OutputStream, u64)>,
        wait: Duration,
        cancel: &CancellationToken,
        tick: &(dyn Fn(&JobInfo) + Send + Sync),
    ) {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.tick().await;
        loop {
            {
                let state = self.lock();
                let grown = stream.is_some_and(|(s, offset)| match s {
                    OutputStream::Stdout => state.stdout.total() > offset,
                    OutputStream::Stderr => state.stderr.total() > offset,
                });
                if state.end.is_some() || grown {
                    return;
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = cancel.cancelled() => return,
                _ = ticker.tick() => tick(&self.info()),
            }
        }
    }

    /// Asks the command to stop (TERM, then KILL, to its whole remote process group)
    /// without waiting.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Stops the command (TERM, then KILL, to its whole remote process group) and waits
    /// briefly for it to end.
    pub async fn cancel(&self) {
        self.stop();
        let never = CancellationToken::new();
        self.wait_for_output(None, Duration::from_secs(5), &never, &|_| {})
            .await;
    }
}

/// Feeds a job's output into its spools.
struct JobSink {
    job: Arc<Job>,
}

impl JobSink {
    fn push(&mut self, stream: OutputStream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        {
            let mut guard = self.job.lock();
            let state = &mut *guard;
            let dir = self.job.spool_parent.as_path();
            match stream {
                OutputStream::Stdout => {
                    state.stdout.push(data, dir);
                    state.stdout_capture.push(data);
                }
                OutputStream::Stderr => {
                    state.stderr.push(data, dir);
                    state.stderr_capture.push(data);
                }
            }
            exec::note_line(&mut state.latest_line, data);
        }
        self.job.touch();
    }
}

impl OutputSink for JobSink {
    fn stdout(&mut self, data: &[u8]) {
        self.push(OutputStream::Stdout, data);
    }
    fn stderr(&mut self, data: &[u8]) {
        self.push(OutputStream::Stderr, data);
    }
}

/// Every job of this server.
pub struct Jobs {
    settings: JobSettings,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    next_id: AtomicU64,
    /// Where spool files are made (each in a private directory of its own).
    spool_parent: Arc<PathBuf>,
}

impl Jobs {
    pub fn new(settings: JobSettings) -> Jobs {
        Jobs {
            settings,
            jobs: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            spool_parent: Arc::new(std::env::temp_dir()),
        }
    }

    pub fn settings(&self) -> &JobSettings {
        &self.settings
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets finished jobs older than the keep time, and the oldest finished job kept
    /// when [`JobSettings::max_jobs`] are kept. Jobs whose starting call still waits for
    /// them do not count. When every kept job runs, a new job that would be kept at once
    /// (`background`) is refused; one with a call waiting for it is started anyway (the
    /// concurrent-call cap bounds those).
    fn make_room(&self, table: &mut BTreeMap<u64, Arc<Job>>, background: bool) -> HostResult<()> {
        self.forget_expired(table);
        let kept = table.values().filter(|job| !job.is_held()).count();
        if kept < self.settings.max_jobs {
            return Ok(());
        }
        let oldest_finished = table
            .iter()
            .filter(|(_, job)| job.is_finished() && !job.is_held())
            .map(|(n, _)| *n)
            .next();
        match oldest_finished {
            Some(n) => {
                table.remove(&n);
                Ok(())
            }
            None if !background => Ok(()),
            None => Err(HostError::Invalid(format!(
                "{kept} jobs are running, the most kept at once (MCP_SSH_MAX_JOBS): wait for one \
                 to end or cancel one with ssh_job_cancel"
            ))),
        }
    }

    /// Starts `request` on `conn` as a job of session `session`. `held`: the starting
    /// call waits for it (until [`Job::release`]). `id`: the job's id (replacing a job of
    /// that id), or none for a new `job-N`.
    pub fn start(
        &self,
        conn: Arc<Connection>,
        session: String,
        request: ExecRequest,
        held: bool,
        id: Option<String>,
    ) -> HostResult<Arc<Job>> {
        let mut table = self.table();
        if let Some(id) = &id {
            table.retain(|_, job| &job.id != id);
        }
        self.make_room(&mut table, !held)?;
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Arc::new(Job {
            id: id.unwrap_or_else(|| format!("job-{n}")),
            session,
            command: request.command.chars().take(MAX_COMMAND_CHARS).collect(),
            started: Instant::now(),
            started_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            state: Mutex::new(JobState {
                stdout: Spool::new(self.settings.memory_bytes, self.settings.spool_bytes),
                stderr: Spool::new(self.settings.memory_bytes, self.settings.spool_bytes),
                stdout_capture: Capture::new(request.output_limit),
                stderr_capture: Capture::new(request.output_limit),
                latest_line: None,
                end: None,
                ended: None,
            }),
            changed: watch::Sender::new(0),
            held: AtomicBool::new(held),
            cancel: CancellationToken::new(),
            spool_parent: self.spool_parent.clone(),
        });
        table.insert(n, job.clone());
        drop(table);
        let running = job.clone();
        tokio::spawn(async move {
            let mut sink = JobSink {
                job: running.clone(),
            };
            let result =
                exec::run_into(conn, request, running.cancel.clone(), None, &mut sink).await;
            let end = match result {
                Ok(out) => JobEnd {
                    exit_code: out.exit_code,
                    exit_signal: out.exit_signal,
                    timed_out: out.timed_out,
                    idle_timed_out: out.idle_timed_out,
                    ..JobEnd::default()
                },
                Err(HostError::Cancelled) => JobEnd {
                    cancelled: true,
                    ..JobEnd::default()
                },
                Err(e) => JobEnd {
                    error: Some(e),
                    ..JobEnd::default()
                },
            };
            {
                let mut state = running.lock();
                state.end = Some(end);
                state.ended = Some(Instant::now());
            }
            running.touch();
        });
        Ok(job)
    }

    /// The job `id`.
    pub fn get(&self, id: &str) -> HostResult<Arc<Job>> {
        let mut table = self.table();
        self.forget_expired(&mut table);
        table
            .values()
            .find(|job| job.id == id)
            .cloned()
            .ok_or_else(|| {
                HostError::NotFound(format!(
                    "no job {id:?}: it never existed or ended more than {} s ago and was \
                     forgotten; ssh_job_list shows the jobs",
                    self.settings.keep_for.as_secs()
                ))
            })
    }

    /// Forgets expired jobs only.
    fn forget_expired(&self, table: &mut BTreeMap<u64, Arc<Job>>) {
        let keep_for = self.settings.keep_for;
        table.retain(|_, job| {
            job.lock()
                .ended
                .is_none_or(|ended| ended.elapsed() < keep_for)
        });
    }

    /// Forgets job `id` now (its output is not needed any more).
    pub fn forget(&self, id: &str) {
        self.table().retain(|_, job| job.id != id);
    }

    /// Stops every running job (at shutdown: a job does not outlive the server), waiting
    /// for them up to `wait` in all.
    pub async fn cancel_all(&self, wait: Duration) {
        let running: Vec<Arc<Job>> = self
            .list()
            .into_iter()
            .filter(|job| !job.is_finished())
            .collect();
        for job in &running {
            job.stop();
        }
        let all = futures::future::join_all(running.iter().map(|job| job.cancel()));
        let _ = tokio::time::timeout(wait, all).await;
    }

    /// Every job kept, oldest first.
    pub fn list(&self) -> Vec<Arc<Job>> {
        let mut table = self.table();
        self.forget_expired(&mut table);
        table.values().cloned().collect()
    }
}
