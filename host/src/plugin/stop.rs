//! Stopping a guest: why the host stops one (`StopReason`), and the guard on guest time
//! spent blocked in WASI. A guest sleeping or polling in `wasi:io/poll` runs no code, so
//! the epoch deadline never sees it; the guarded `poll` and `pollable.block` defined here
//! end the wait with a trap when the call is cancelled or when the wait would take the
//! guest past its CPU budget (time blocked in WASI is the guest's own time, not host work).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll;

/// Why the host stopped a guest.
#[derive(Debug)]
pub enum StopReason {
    Cancelled,
    CpuLimit(Duration),
}

impl StopReason {
    /// The error kind of the failed call.
    pub fn kind(&self) -> &'static str {
        match self {
            StopReason::Cancelled => "cancelled",
            StopReason::CpuLimit(_) => "limit-exceeded",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Cancelled => write!(f, "the call was cancelled"),
            StopReason::CpuLimit(d) => write!(
                f,
                "the tool used more than its CPU time limit of {} ms (MCP_SSH_TOOL_CPU_MS; time spent sleeping or waiting in WASI counts) and was stopped",
                d.as_millis()
            ),
        }
    }
}

impl std::error::Error for StopReason {}

/// What may end a guest's wait in WASI: the call's cancellation, and the rest of its CPU
/// budget.
#[derive(Clone)]
pub struct WaitLimit {
    pub cancel: CancellationToken,
    /// The guest's CPU time still unused when the wait began.
    pub budget_left: Duration,
    /// The whole CPU budget, for the error message.
    pub cpu_limit: Duration,
}

impl WaitLimit {
    /// Runs `wait`, or stops the guest (a trap) when the limit comes first.
    async fn guard<T>(
        &self,
        wait: impl Future<Output = wasmtime::Result<T>>,
    ) -> wasmtime::Result<T> {
        tokio::select! {
            r = wait => r,
            _ = self.cancel.cancelled() => Err(wasmtime::Error::new(StopReason::Cancelled)),
            _ = tokio::time::sleep(self.budget_left) => {
                Err(wasmtime::Error::new(StopReason::CpuLimit(self.cpu_limit)))
            }
        }
    }
}

/// The view of a call's store that the guarded `wasi:io/poll` works on.
pub struct GuardedIo<'a> {
    pub table: &'a mut ResourceTable,
    pub limit: WaitLimit,
}

/// Marker type binding `wasi:io/poll` to [`GuardedIo`].
struct GuardedPoll;

impl HasData for GuardedPoll {
    type Data<'a> = GuardedIo<'a>;
}

impl poll::Host for GuardedIo<'_> {
    async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let limit = self.limit.clone();
        limit
            .guard(poll::Host::poll(&mut *self.table, pollables))
            .await
    }
}

impl poll::HostPollable for GuardedIo<'_> {
    async fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let limit = self.limit.clone();
        limit
            .guard(poll::HostPollable::block(&mut *self.table, pollable))
            .await
    }

    async fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(&mut *self.table, pollable).await
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

/// Replaces WASI's `wasi:io/poll` in `linker` (already holding WASI) by the guarded one,
/// which works on the view `guarded_io` gives of a store's data.
pub fn guard_wasi_poll<T: Send + 'static>(
    linker: &mut Linker<T>,
    guarded_io: fn(&mut T) -> GuardedIo<'_>,
) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<T, GuardedPoll>(linker, guarded_io)?;
    linker.allow_shadowing(false);
    Ok(())
}
