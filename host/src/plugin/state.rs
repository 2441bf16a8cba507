//! The per-call store state: a WASI context that grants nothing, resource limits, the
//! call's cancellation and progress sink, and a handle to the host's shared services.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::grants::Scope;
use crate::config::Settings;
use crate::ssh::SessionPool;

/// Bytes of guest stdout/stderr kept per call (they go to the log, never to MCP).
const GUEST_OUTPUT_CAPACITY: usize = 64 * 1024;

/// Services shared by every call.
pub struct HostServices {
    pub settings: Arc<Settings>,
    pub pool: Arc<SessionPool>,
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
}

impl CallContext {
    /// A context for calls nobody can cancel and that report no progress.
    pub fn detached() -> Self {
        CallContext {
            cancel: CancellationToken::new(),
            progress: None,
            gate: crate::policy::Gate::open(),
        }
    }
}

/// The data of one call's `Store`.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: CallLimiter,
    pub services: Arc<HostServices>,
    pub call: CallContext,
    /// The limits of the component's grant file, enforced by every host function.
    pub scope: Arc<Scope>,
    /// The name of the tool being called, for logs.
    pub tool: String,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// When the call started, and how long it has spent waiting in host functions:
    /// their difference is the guest's own CPU time, which the epoch callback limits.
    pub started: Instant,
    pub host_time: Duration,
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
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(false)
            .build();
        let limits = CallLimiter {
            inner,
            memory_limit: memory,
            memory_refused: false,
        };
        CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            services,
            call,
            scope,
            tool: tool.to_string(),
            stdout,
            stderr,
            started: Instant::now(),
            host_time: Duration::ZERO,
        }
    }

    /// The guest's own CPU time so far (wall time minus time spent in host calls).
    pub fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time)
    }

    /// Sends what the guest printed to the log.
    pub fn flush_guest_output(&self) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            if !bytes.is_empty() {
                let text = String::from_utf8_lossy(&bytes);
                tracing::info!(tool = %self.tool, stream, "guest output: {}", text.trim_end());
            }
        }
    }
}

/// The store's resource limits, remembering whether memory growth was refused so a
/// failed call can name the limit it hit.
pub struct CallLimiter {
    inner: StoreLimits,
    pub memory_limit: usize,
    pub memory_refused: bool,
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.memory_refused = true;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
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
