//! One thing made ahead of need and kept for the next user (an SSH channel, a wasm
//! instance): the slot that keeps it, and the claim of the one task making the next, so
//! that at most one is kept and at most one is being made at a time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A slot for one `T` made ahead.
pub struct KeptAhead<T> {
    kept: Mutex<Option<T>>,
    /// True while a task makes the next one.
    making: AtomicBool,
}

impl<T> Default for KeptAhead<T> {
    fn default() -> Self {
        KeptAhead {
            kept: Mutex::new(None),
            making: AtomicBool::new(false),
        }
    }
}

impl<T> KeptAhead<T> {
    /// The kept one, if any; the slot is then empty.
    pub fn take(&self) -> Option<T> {
        self.lock().take()
    }

    /// Claims the right to make the next one: true when none is kept and no other task
    /// is making one. The claim ends with [`KeptAhead::keep`] or [`KeptAhead::give_up`].
    pub fn claim_making(&self) -> bool {
        self.lock().is_none()
            && self
                .making
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Keeps `item` for the next user and ends the claim; returns the one it displaced,
    /// if any.
    pub fn keep(&self, item: T) -> Option<T> {
        let displaced = self.lock().replace(item);
        self.making.store(false, Ordering::Release);
        displaced
    }

    /// Ends a claim that made nothing.
    pub fn give_up(&self) {
        self.making.store(false, Ordering::Release);
    }

    /// True when one is kept.
    #[cfg(test)]
    pub fn is_kept(&self) -> bool {
        self.lock().is_some()
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_maker_at_a_time_and_none_while_one_is_kept() {
        let slot = KeptAhead::default();
        assert!(slot.claim_making());
        assert!(!slot.claim_making(), "a second maker while one is at work");
        assert_eq!(slot.keep(1), None);
        assert!(!slot.claim_making(), "a maker while one is kept");
        assert_eq!(slot.take(), Some(1));
        assert_eq!(slot.take(), None, "taken twice");
        assert!(slot.claim_making());
        slot.give_up();
        assert!(slot.claim_making(), "a claim given up is free again");
    }
}
