//! What counts as a guest's own CPU time: not the time it waits for the thread after
//! yielding at an epoch tick. Guests yield every tick so that other calls are served, and
//! on one worker thread a guest may then wait while others run; that wait is theirs, not
//! its own. The epoch callback marks the moment a guest yields ([`YieldClock::yielding`]);
//! [`Resumed`], wrapped around the guest's future, adds the wait when the future is polled
//! again. (Time in host functions is subtracted elsewhere; a wait in WASI still counts.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One store's yields: when it last yielded, and how long it has waited in all.
#[derive(Debug)]
pub struct YieldClock {
    origin: Instant,
    /// Nanoseconds after `origin` when the guest yielded; 0 while it runs.
    yielded_at: AtomicU64,
    waited: AtomicU64,
}

impl Default for YieldClock {
    fn default() -> Self {
        YieldClock {
            origin: Instant::now(),
            yielded_at: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }
}

impl YieldClock {
    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The guest yields the thread now.
    pub fn yielding(&self) {
        self.yielded_at.store(self.now(), Ordering::Relaxed);
    }

    /// The guest's future is polled again: the wait since it yielded, if it did, ends.
    fn resumed(&self) {
        let at = self.yielded_at.swap(0, Ordering::Relaxed);
        if at != 0 {
            self.waited
                .fetch_add(self.now().saturating_sub(at), Ordering::Relaxed);
        }
    }

    /// How long the guest has waited for the thread after yielding.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Ordering::Relaxed))
    }

    /// Counts from zero again (a store made ahead of its call, when the call begins).
    pub fn restart(&self) {
        self.yielded_at.store(0, Ordering::Relaxed);
        self.waited.store(0, Ordering::Relaxed);
    }
}

/// A guest's future, telling its [`YieldClock`] each time it is polled again.
pub struct Resumed<F> {
    inner: Pin<Box<F>>,
    clock: Arc<YieldClock>,
}

impl<F: Future> Resumed<F> {
    pub fn new(inner: F, clock: Arc<YieldClock>) -> Self {
        Resumed {
            inner: Box::pin(inner),
            clock,
        }
    }
}

impl<F: Future> Future for Resumed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.clock.resumed();
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_wait_after_a_yield_is_counted() {
        let clock = Arc::new(YieldClock::default());
        let polls = Arc::new(AtomicU64::new(0));
        let guest = {
            let (clock, polls) = (clock.clone(), polls.clone());
            std::future::poll_fn(move |cx| {
                let n = polls.fetch_add(1, Ordering::Relaxed);
                if n == 0 {
                    // Yields at an epoch tick: wake at once, as wasmtime does.
                    clock.yielding();
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
        };
        // Another task holds the thread for 30 ms while the guest waits to run again.
        let busy = tokio::spawn(async { std::thread::sleep(Duration::from_millis(30)) });
        Resumed::new(guest, clock.clone()).await;
        busy.await.unwrap();
        assert!(
            clock.waited() >= Duration::from_millis(25),
            "{:?}",
            clock.waited()
        );
        clock.restart();
        assert_eq!(clock.waited(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_wait_that_did_not_follow_a_yield_is_not_counted() {
        // Pending for another reason (a WASI sleep, a host call): the guest's own time.
        let clock = Arc::new(YieldClock::default());
        let slept = Resumed::new(tokio::time::sleep(Duration::from_millis(30)), clock.clone());
        slept.await;
        assert_eq!(clock.waited(), Duration::ZERO);
    }
}
