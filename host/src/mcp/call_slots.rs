//! The cap on tool calls running at once. Up to `max_running` calls run; up to
//! `max_waiting` more wait for a free slot, in arrival order; any further call is refused
//! at once as busy. Every running call holds a tool instance with its own memory and,
//! often, an SSH channel: the cap keeps a burst of calls from exhausting either.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The running and waiting calls.
pub struct CallSlots {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_running: usize,
    max_waiting: usize,
}

/// A call was refused because every slot is taken and the waiting line is full.
#[derive(Debug)]
pub struct Busy(pub String);

/// Counts a call in the waiting line while it exists.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CallSlots {
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        CallSlots {
            running: Arc::new(Semaphore::new(max_running)),
            waiting: AtomicUsize::new(0),
            max_running,
            max_waiting,
        }
    }

    /// Waits until no call runs (every slot free), then frees the slots again.
    pub async fn idle(&self) {
        let all = u32::try_from(self.max_running).unwrap_or(u32::MAX);
        drop(self.running.acquire_many(all).await);
    }

    /// Takes a place in the waiting line; false when the line stays full.
    ///
    /// A full line is looked at twice: calls the client cancelled just before this one
    /// have been told to stop but leave the line only when their tasks next run, so the
    /// first look yields to them. Without it, a client that cancels a burst and calls again
    /// at once is refused by calls that no longer exist.
    async fn join_the_line(&self) -> bool {
        for look in 0..2 {
            if self.waiting.fetch_add(1, Ordering::SeqCst) < self.max_waiting {
                return true;
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if look == 0 {
                tokio::task::yield_now().await;
            }
        }
        false
    }

    /// A slot for one call, held until the permit is dropped. Waits while every slot is
    /// taken, unless the waiting line is full: then the call is refused as busy.
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if !self.join_the_line().await {
            return Err(Busy(format!(
                "the server is busy: {} tool calls are running (MCP_SSH_MAX_CONCURRENT_CALLS) and {} more are waiting (MCP_SSH_MAX_QUEUED_CALLS); try again when some have finished",
                self.max_running, self.max_waiting
            )));
        }
        let _in_line = InLine(&self.waiting);
        tracing::info!(
            running = self.max_running,
            "tool call waiting for a free slot (MCP_SSH_MAX_CONCURRENT_CALLS)"
        );
        Ok(self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("the call semaphore is never closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_beyond_the_slots_wait_and_beyond_the_line_are_busy() {
        let slots = Arc::new(CallSlots::new(1, 1));
        let first = slots.acquire().await.unwrap();
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire().await.map(|_| ()) })
        };
        while slots.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let busy = slots.acquire().await.unwrap_err();
        assert!(busy.0.contains("MCP_SSH_MAX_CONCURRENT_CALLS"), "{busy:?}");
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(slots.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn calls_cancelled_just_before_leave_the_line_before_a_call_is_refused() {
        let slots = Arc::new(CallSlots::new(1, 1));
        let _first = slots.acquire().await.unwrap();
        let cancel = tokio_util::sync::CancellationToken::new();
        let waiting = {
            let (slots, cancel) = (slots.clone(), cancel.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = slots.acquire() => {}
                    _ = cancel.cancelled() => {}
                }
            })
        };
        while slots.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The waiting call is cancelled; the next call comes before its task has run.
        cancel.cancel();
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire());
        assert!(
            next.await.is_err(),
            "the next call was refused as busy instead of taking the cancelled call's place"
        );
        waiting.await.unwrap();
    }

    #[tokio::test]
    async fn a_call_that_gives_up_waiting_leaves_the_line() {
        let slots = CallSlots::new(1, 1);
        let _first = slots.acquire().await.unwrap();
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), slots.acquire());
        assert!(gave_up.await.is_err());
        assert_eq!(slots.waiting.load(Ordering::SeqCst), 0);
    }
}
