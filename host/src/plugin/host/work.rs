//! Host work done for a guest, the one way every host function waits: the time it takes
//! is counted as host time (so it does not eat into the guest's CPU budget), and the
//! call's cancellation ends it, in the way the work needs ([`OnCancel`]). The call's
//! deadline drops the whole call, this work included. Guest code run outside a call
//! (`describe`, an instance made ahead) gets no host work at all.

use std::future::Future;
use std::time::Instant;

use crate::error::{HostError, HostResult};
use crate::plugin::bindings::WitError;
use crate::plugin::state::{CallHost, CallState};

/// What the call's cancellation does to a piece of host work.
#[derive(Debug, Clone, Copy)]
pub enum OnCancel {
    /// The work stops at once (it is dropped) with `cancelled`: it has nothing to undo,
    /// or its parts that must not be cut short watch the cancellation themselves. A call
    /// cancelled before the work starts does not start it.
    Abandon,
    /// The work runs to its end: it watches the call's cancellation itself and returns
    /// `cancelled` once it has undone what it started (the remote command killed, the
    /// temporary file removed, the policy decision recorded). Waits inside it that have
    /// nothing to undo use [`CallHost::until_cancelled`].
    LetFinish,
}

impl CallHost {
    /// `work`, or `cancelled` as soon as the call is cancelled (the work is then
    /// dropped); a call already cancelled does not start it.
    pub async fn until_cancelled<T>(
        &self,
        work: impl Future<Output = HostResult<T>>,
    ) -> HostResult<T> {
        tokio::select! {
            biased;
            _ = self.call.cancel.cancelled() => Err(HostError::Cancelled),
            r = work => r,
        }
    }
}

impl CallState {
    /// Runs the host work `work` builds from the call's [`CallHost`], as host time, ended
    /// by the call's cancellation as `on_cancel` says.
    pub async fn host_work<T, F, Fut>(
        &mut self,
        on_cancel: OnCancel,
        work: F,
    ) -> Result<T, WitError>
    where
        F: FnOnce(CallHost) -> Fut,
        Fut: Future<Output = HostResult<T>>,
    {
        if !self.host.call.host_work_allowed {
            return Err(WitError::from(HostError::Denied(
                "host functions are only available during a tool call, not while the \
                 component is loaded or prepared"
                    .into(),
            )));
        }
        let since = Instant::now();
        let host = self.host.clone();
        let result = match on_cancel {
            OnCancel::Abandon => self.host.until_cancelled(work(host)).await,
            OnCancel::LetFinish => work(host).await,
        };
        self.host_time += since.elapsed();
        result.map_err(WitError::from)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;

    #[tokio::test]
    async fn abandoned_work_ends_when_the_call_is_cancelled_midway() {
        let cancel = CancellationToken::new();
        let mut state = CallState::for_tests(cancel.clone());
        let result: Result<(), WitError> = state
            .host_work(OnCancel::Abandon, |_| async move {
                cancel.cancel();
                std::future::pending().await
            })
            .await;
        assert!(matches!(result, Err(WitError::Cancelled)), "{result:?}");
    }

    #[tokio::test]
    async fn work_let_finish_ends_on_its_own_and_counts_as_host_time() {
        let cancel = CancellationToken::new();
        let mut state = CallState::for_tests(cancel.clone());
        let result = state
            .host_work(OnCancel::LetFinish, |host| async move {
                cancel.cancel();
                tokio::time::sleep(Duration::from_millis(20)).await;
                // What it does on cancellation is its own: here, finish the job.
                Ok(host.call.cancel.is_cancelled())
            })
            .await;
        assert!(matches!(result, Ok(true)), "{result:?}");
        assert!(state.host_time >= Duration::from_millis(20));
    }

    #[tokio::test]
    async fn a_cancelled_call_starts_no_abandonable_work() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut state = CallState::for_tests(cancel);
        let started = std::sync::atomic::AtomicBool::new(false);
        let result = state
            .host_work(OnCancel::Abandon, |_| async {
                started.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })
            .await;
        assert!(matches!(result, Err(WitError::Cancelled)), "{result:?}");
        assert!(!started.load(std::sync::atomic::Ordering::Relaxed));
    }
}
