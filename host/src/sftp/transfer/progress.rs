//! A transfer's progress reports to the caller, rate-limited (see [`Progress`]).

use std::time::{Duration, Instant};

use super::TransferProgress;

/// Reports progress at most every 100 ms, and always the end.
pub(super) struct Progress {
    sink: Option<TransferProgress>,
    total: u64,
    last: Option<Instant>,
}

impl Progress {
    pub(super) fn new(sink: Option<TransferProgress>, total: u64) -> Self {
        let mut p = Progress {
            sink,
            total,
            last: None,
        };
        p.update(0);
        p
    }

    pub(super) fn update(&mut self, done: u64) {
        let Some(sink) = &self.sink else { return };
        let now = Instant::now();
        if done < self.total
            && self
                .last
                .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(now);
        sink(done, self.total);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn progress_is_rate_limited_but_reports_the_end() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut p = Progress::new(
            Some(Arc::new(move |d, t| s.lock().unwrap().push((d, t)))),
            100,
        );
        for d in 1..=100 {
            p.update(d);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.first(), Some(&(0, 100)));
        assert_eq!(seen.last(), Some(&(100, 100)));
        assert!(seen.len() <= 3, "{seen:?}");
    }
}
