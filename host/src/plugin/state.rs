//! The per-call store state: a WASI context that grants nothing, resource limits, and
//! what the call's host work uses (`CallHost`: the host's shared services, the call's
//! cancellation, progress sink and policy gate, the component's grant scope).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::scope::Scope;
use super::stop::{GuardedIo, WaitLimit};
use super::yield_clock::YieldClock;
use crate::bounded::TokenBucket;
use crate::config::Settings;
use crate::sessions::SessionPool;

/// Bytes of guest stdout/stderr kept per call (they go to the log, never to MCP).
const GUEST_OUTPUT_CAPACITY: usize = 64 * 1024;

/// Log messages a call may send at once, then per second; more are dropped.
const LOG_BURST: u32 = 200;
const LOG_PER_SECOND: u32 = 50;

/// Why a guest's log messages were dropped, for the log line that says so.
pub const LOG_RATE_NOTE: &str = "a tool may log 200 messages at once, then 50 a second";

/// Services shared by every call.
pub struct HostServices {
    pub settings: Arc<Settings>,
    pub pool: Arc<SessionPool>,
    pub jobs: Arc<crate::jobs::Jobs>,
}

/// Receives progress of a call: done, total, message.
pub type ProgressSink = Arc<dyn Fn(f64, Option<f64>, Option<String>) + Send + Sync>;

/// What one call brings with it from the MCP side.
#[derive(Clone)]
pub struct CallContext {
    /// Cancelled when the client cancels the call or the server shuts down.
    pub cancel: CancellationToken,
    /// Where progress goes; none when the client did not ask for progress.
    pub progress: Option<ProgressSink>,
    /// The user's policy for this call, asked by every host function before it acts.
    pub gate: crate::policy::Gate,
    /// False while guest code runs outside a call (`describe` at load time, an instance
    /// made ahead of its call): there is no call, no policy to ask and no one to answer,
    /// so every host function that acts or waits refuses.
    pub host_work_allowed: bool,
}

impl CallContext {
    /// A context for calls nobody can cancel and that report no progress.
    pub fn detached() -> Self {
        CallContext {
            cancel: CancellationToken::new(),
            progress: None,
            gate: crate::policy::Gate::open(),
            host_work_allowed: true,
        }
    }

    /// The context of guest code run outside any call: host work is refused.
    pub fn outside_a_call() -> Self {
        CallContext {
            host_work_allowed: false,
            ..CallContext::detached()
        }
    }
}

#[cfg(test)]
impl HostServices {
    /// The services of a host run with default settings and no code cache, with no
    /// session open.
    pub fn for_tests() -> Arc<HostServices> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let settings = Arc::new(Cli::parse_from(["mcpssh", "--cache-dir", "off"]).settings);
        Arc::new(HostServices {
            pool: Arc::new(SessionPool::new(settings.clone())),
            jobs: Arc::new(crate::jobs::Jobs::new(settings.job_settings())),
            settings,
        })
    }
}

/// What the host work of one call uses, cheap to clone so the work can run on its own
/// while the call's store keeps count of the time it takes.
#[derive(Clone)]
pub struct CallHost {
    pub services: Arc<HostServices>,
    pub call: CallContext,
    /// The limits of the component's grant file, enforced by every host function.
    pub scope: Arc<Scope>,
}

/// The data of one call's `Store`.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: CallLimiter,
    /// What host functions work with.
    pub host: CallHost,
    /// The name of the tool being called, for logs.
    pub tool: String,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// When the call started, and how long it has spent waiting in host functions:
    /// their difference is the guest's own CPU time, which the epoch callback limits.
    pub started: Instant,
    pub host_time: Duration,
    /// The time it waited for the thread after yielding at epoch ticks: not its own
    /// either.
    pub yields: Arc<YieldClock>,
    /// The rate of the guest's log messages.
    pub log_budget: TokenBucket,
}

impl CallState {
    pub fn new(
        services: Arc<HostServices>,
        call: CallContext,
        tool: &str,
        scope: Arc<Scope>,
    ) -> Self {
        let stdout = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(GUEST_OUTPUT_CAPACITY);
        // Nothing ambient: no preopened directories, no environment, no arguments,
        // no network, no stdin; stdout and stderr are captured.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory =
            usize::try_from(services.settings.tool_memory_mb * 1024 * 1024).unwrap_or(usize::MAX);
        let limits = CallLimiter::new(memory);
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            host: CallHost {
                services,
                call,
                scope,
            },
            tool: tool.to_string(),
            stdout,
            stderr,
            started: Instant::now(),
            host_time: Duration::ZERO,
            yields: Arc::default(),
            log_budget: TokenBucket::new(LOG_BURST, LOG_PER_SECOND),
        }
    }

    /// Hands a store made ahead of its call to the call: its context and tool name, and
    /// the guest's CPU time counted from now.
    pub fn begin_call(&mut self, call: CallContext, tool: &str) {
        self.host.call = call;
        self.tool = tool.to_string();
        self.started = Instant::now();
        self.host_time = Duration::ZERO;
        self.yields.restart();
    }

    /// The state of a call of an unrestricted tool on [`HostServices::for_tests`], ended
    /// by `cancel`.
    #[cfg(test)]
    pub fn for_tests(cancel: CancellationToken) -> Self {
        let call = CallContext {
            cancel,
            ..CallContext::detached()
        };
        CallState::new(
            HostServices::for_tests(),
            call,
            "test",
            Arc::new(Scope::default()),
        )
    }

    /// The guest's own CPU time so far: wall time minus time spent in host calls and
    /// time spent waiting for the thread after yielding (see `yield_clock`).
    pub fn guest_time(&self) -> Duration {
        self.started
            .elapsed()
            .saturating_sub(self.host_time)
            .saturating_sub(self.yields.waited())
    }

    /// The WASI resource table with what may end a wait in WASI now: the call's
    /// cancellation and the rest of the guest's CPU budget.
    pub fn guarded_io(&mut self) -> GuardedIo<'_> {
        let cpu_limit = Duration::from_millis(self.host.services.settings.tool_cpu_ms);
        let limit = WaitLimit {
            cancel: self.host.call.cancel.clone(),
            budget_left: cpu_limit.saturating_sub(self.guest_time()),
            cpu_limit,
        };
        GuardedIo {
            table: &mut self.table,
            limit,
        }
    }

    /// Sends what the guest printed to the log, and how many of its log messages were
    /// dropped at the end.
    pub fn flush_guest_output(&self) {
        let dropped = self.log_budget.refused();
        if dropped > 0 {
            tracing::warn!(tool = %self.tool, "{dropped} log messages of this tool were dropped: {LOG_RATE_NOTE}");
        }
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                let text = String::from_utf8_lossy(&bytes);
                tracing::info!(tool = %self.tool, stream, "guest output: {}", text.trim_end());
            }
        }
    }
}

/// Instances, tables and linear memories one call's store may create.
const MAX_INSTANCES: usize = 16;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;

/// What one table element costs the host, in bytes (a pointer, as wasmtime documents).
const TABLE_ELEMENT_BYTES: usize = std::mem::size_of::<usize>();

/// The store's resource limits. The memory limit covers the instance as a whole: every
/// linear memory and every table of the store together (a component may hold several
/// of each), not each one alone. Remembers whether growth was refused so a failed call
/// can name the limit it hit.
pub struct CallLimiter {
    pub memory_limit: usize,
    /// Bytes of every memory and table created or grown so far (they never shrink).
    used: usize,
    pub memory_refused: bool,
}

impl CallLimiter {
    pub fn new(memory_limit: usize) -> Self {
        CallLimiter {
            memory_limit,
            used: 0,
            memory_refused: false,
        }
    }

    /// Grants growth from `current` to `desired` bytes when the store's total stays within
    /// the limit. Growth past the item's own maximum fails anyway and is not counted.
    fn grow(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> bool {
        if maximum.is_some_and(|max| desired > max) {
            return false;
        }
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.memory_limit {
            self.memory_refused = true;
            return false;
        }
        self.used = total;
        true
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired, maximum))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = |elements: usize| elements.saturating_mul(TABLE_ELEMENT_BYTES);
        Ok(self.grow(bytes(current), bytes(desired), maximum.map(bytes)))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_covers_every_memory_and_table_together() {
        let mut limits = CallLimiter::new(100 * TABLE_ELEMENT_BYTES);
        assert!(
            limits
                .memory_growing(0, 40 * TABLE_ELEMENT_BYTES, None)
                .unwrap()
        );
        assert!(
            limits
                .memory_growing(0, 40 * TABLE_ELEMENT_BYTES, None)
                .unwrap()
        );
        assert!(!limits.memory_refused);
        // A third memory, or a table, would take the store past the limit.
        assert!(
            !limits
                .memory_growing(0, 40 * TABLE_ELEMENT_BYTES, None)
                .unwrap()
        );
        assert!(limits.memory_refused);
        assert!(!limits.table_growing(0, 21, None).unwrap());
        assert!(limits.table_growing(0, 20, None).unwrap());
        assert!(!limits.table_growing(20, 21, None).unwrap());
    }

    #[test]
    fn growth_past_its_own_maximum_is_not_counted() {
        let mut limits = CallLimiter::new(1000);
        assert!(!limits.memory_growing(0, 500, Some(100)).unwrap());
        assert!(!limits.memory_refused);
        assert!(limits.memory_growing(0, 1000, None).unwrap());
    }
}
