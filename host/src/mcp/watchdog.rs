//! The Python server's polling shutdown. Clients that keep a server alive poll it with
//! `resources/list` or `prompts/list`; once a client has polled at least once, the server
//! shuts down when `threshold` whole poll intervals pass without another poll. A client
//! that never polls is never shut down by this, and a threshold of 0 turns it off.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Tracks polls and decides when the client has gone quiet.
pub struct PollWatchdog {
    interval: Duration,
    threshold: u32,
    last_poll: Mutex<Option<Instant>>,
}

impl PollWatchdog {
    pub fn new(interval: Duration, threshold: u32) -> Self {
        PollWatchdog {
            interval,
            threshold,
            last_poll: Mutex::new(None),
        }
    }

    /// Records a poll.
    pub fn poll(&self) {
        *self.last_poll.lock().unwrap() = Some(Instant::now());
    }

    /// The silence after which the server stops, or none when the watchdog is off.
    fn limit(&self) -> Option<Duration> {
        (self.threshold > 0 && !self.interval.is_zero()).then(|| self.interval * self.threshold)
    }

    /// True when the client polled once and then stayed silent past the limit.
    pub fn expired(&self, now: Instant) -> bool {
        match (self.limit(), *self.last_poll.lock().unwrap()) {
            (Some(limit), Some(last)) => now.duration_since(last) > limit,
            _ => false,
        }
    }

    /// Cancels `stop` once the client has gone quiet; returns when `stop` is cancelled.
    pub async fn run(&self, stop: CancellationToken) {
        let Some(limit) = self.limit() else {
            stop.cancelled().await;
            return;
        };
        let tick = (self.interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
            }
            if self.expired(Instant::now()) {
                tracing::info!(
                    silence_s = limit.as_secs_f64(),
                    "no resources/list or prompts/list poll for {} intervals: shutting down (MCP_SSH_MISSED_POLLS_THRESHOLD)",
                    self.threshold
                );
                stop.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_expires_without_a_first_poll() {
        let w = PollWatchdog::new(Duration::from_millis(10), 3);
        assert!(!w.expired(Instant::now() + Duration::from_secs(60)));
    }

    #[test]
    fn expires_after_threshold_intervals_of_silence() {
        let w = PollWatchdog::new(Duration::from_secs(1), 3);
        w.poll();
        let now = Instant::now();
        assert!(!w.expired(now + Duration::from_millis(2900)));
        assert!(w.expired(now + Duration::from_millis(3100)));
    }

    #[test]
    fn threshold_zero_turns_it_off() {
        let w = PollWatchdog::new(Duration::from_secs(1), 0);
        w.poll();
        assert!(!w.expired(Instant::now() + Duration::from_secs(3600)));
    }
}
