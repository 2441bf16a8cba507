//! The cap on tool calls running at once. Up to `max_running` calls run; up to
//! `max_waiting` more wait for a free slot, in arrival order; any further call is refused
//! at once as busy. Every running call holds a tool instance with its own memory and,
//! often, an SSH channel: the cap keeps a burst of calls from exhausting either.
//!
//! A waiting call the client has cancelled no longer counts against the waiting line,
//! even before its task has run to leave it: the line holds each waiter's cancellation
//! token, so a client that cancels a burst and calls again at once is not refused by calls
//! that no longer exist.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The running and waiting calls.
pub struct CallSlots {
    running: Arc<Semaphore>,
    /// The waiting calls: an id each, and the token that cancels the call.
    waiting: Mutex<Vec<(u64, CancellationToken)>>,
    next_id: AtomicU64,
    max_running: usize,
    max_waiting: usize,
}

/// A call was refused because every slot is taken and the waiting line is full.
#[derive(Debug)]
pub struct Busy(pub String);

/// A call's place in the waiting line, given up when dropped.
struct InLine<'a> {
    slots: &'a CallSlots,
    id: u64,
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        let mut line = self.slots.waiting.lock().unwrap();
        line.retain(|(id, _)| *id != self.id);
    }
}

impl CallSlots {
    pub fn new(max_running: usize, max_waiting: usize) -> Self {
        CallSlots {
            running: Arc::new(Semaphore::new(max_running)),
            waiting: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            max_running,
            max_waiting,
        }
    }

    /// Waits until no call runs (every slot free), then frees the slots again.
    pub async fn idle(&self) {
        let all = u32::try_from(self.max_running).unwrap_or(u32::MAX);
        drop(self.running.acquire_many(all).await);
    }

    /// Takes a place in the waiting line for a call cancelled by `cancel`; none when the
    /// line is full of calls not cancelled.
    fn join_the_line(&self, cancel: &CancellationToken) -> Option<InLine<'_>> {
        let mut line = self.waiting.lock().unwrap();
        let live = line.iter().filter(|(_, t)| !t.is_cancelled()).count();
        if live >= self.max_waiting {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        line.push((id, cancel.clone()));
        Some(InLine { slots: self, id })
    }

    /// A slot for a call that `cancel` cancels, held until the permit is dropped. Waits
    /// while every slot is taken, unless the waiting line is full: then the call is
    /// refused as busy. The caller stops waiting when `cancel` fires.
    pub async fn acquire(&self, cancel: &CancellationToken) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.running.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let Some(_in_line) = self.join_the_line(cancel) else {
            return Err(Busy(format!(
                "the server is busy: {} tool calls are running (MCP_SSH_MAX_CONCURRENT_CALLS) and {} more are waiting (MCP_SSH_MAX_QUEUED_CALLS); try again when some have finished",
                self.max_running, self.max_waiting
            )));
        };
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

    /// Calls in the waiting line, cancelled or not (for tests).
    #[cfg(test)]
    fn in_line(&self) -> usize {
        self.waiting.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_beyond_the_slots_wait_and_beyond_the_line_are_busy() {
        let slots = Arc::new(CallSlots::new(1, 1));
        let never = CancellationToken::new();
        let first = slots.acquire(&never).await.unwrap();
        let waiting = {
            let (slots, never) = (slots.clone(), never.clone());
            tokio::spawn(async move { slots.acquire(&never).await.map(|_| ()) })
        };
        while slots.in_line() == 0 {
            tokio::task::yield_now().await;
        }
        let busy = slots.acquire(&never).await.unwrap_err();
        assert!(busy.0.contains("MCP_SSH_MAX_CONCURRENT_CALLS"), "{busy:?}");
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(slots.in_line(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_no_longer_counts_even_before_its_task_runs() {
        let slots = CallSlots::new(1, 1);
        let never = CancellationToken::new();
        let _first = slots.acquire(&never).await.unwrap();
        let cancel = CancellationToken::new();
        // A waiter whose task never runs again (its future is only held).
        let waiter = slots.acquire(&cancel);
        tokio::pin!(waiter);
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        assert_eq!(slots.in_line(), 1);
        // The client cancels it, and calls again at once.
        cancel.cancel();
        let next = slots.acquire(&never);
        tokio::pin!(next);
        assert!(
            futures::poll!(next.as_mut()).is_pending(),
            "the next call was refused as busy instead of taking the cancelled call's place"
        );
        assert_eq!(slots.in_line(), 2);
    }

    #[tokio::test]
    async fn a_call_that_gives_up_waiting_leaves_the_line() {
        let slots = CallSlots::new(1, 1);
        let never = CancellationToken::new();
        let _first = slots.acquire(&never).await.unwrap();
        let gave_up =
            tokio::time::timeout(std::time::Duration::from_millis(10), slots.acquire(&never));
        assert!(gave_up.await.is_err());
        assert_eq!(slots.in_line(), 0);
    }
}
