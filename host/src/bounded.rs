//! Bounds on messages that tools make the server produce: cutting a message to a size,
//! and a token bucket for message rates. They keep a tool that logs or reports progress
//! in a tight loop from growing the server or flooding the client and the log.

use std::time::{Duration, Instant};

/// `text` cut to at most `max` bytes (on a character boundary), marked as cut.
pub fn cap_message(mut text: String, max: usize) -> String {
    if text.len() > max {
        let cut = text.floor_char_boundary(max);
        let dropped = text.len() - cut;
        text.truncate(cut);
        text.push_str(&format!(" [... {dropped} bytes cut]"));
    }
    text
}

/// Allows `burst` events at once, then `per_second` events a second.
pub struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    refilled: Instant,
    /// Events refused since the last one allowed.
    refused: u64,
}

impl TokenBucket {
    pub fn new(burst: u32, per_second: u32) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
            refilled: Instant::now(),
            refused: 0,
        }
    }

    /// Takes a token at `now`: `Some(n)` when the event is allowed (`n` events were refused
    /// since the last allowed one), `None` when it is refused.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.refused))
        } else {
            self.refused += 1;
            None
        }
    }

    /// Events refused since the last one allowed.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

/// The smallest gap between two notifications of one kind that a tool can cause.
pub const MIN_NOTIFICATION_GAP: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_on_a_character_boundary() {
        assert_eq!(cap_message("short".into(), 10), "short");
        let cut = cap_message("ééééé".into(), 3);
        assert!(cut.starts_with('é') && !cut.starts_with("éé"), "{cut}");
        assert!(cut.ends_with("[... 8 bytes cut]"), "{cut}");
    }

    #[test]
    fn the_bucket_allows_a_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(3, 10);
        for _ in 0..3 {
            assert_eq!(bucket.take(start), Some(0));
        }
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.take(start), None);
        assert_eq!(bucket.refused(), 2);
        // A tenth of a second later, one more token, reporting the two refused.
        assert_eq!(bucket.take(start + Duration::from_millis(100)), Some(2));
        assert_eq!(bucket.take(start + Duration::from_millis(100)), None);
    }
}
