//! Clean-up work that must finish before the process exits: killing a remote command
//! that was stopped, removing a partial temporary file, closing a remote handle. Such
//! work is started from `Drop` or after a call returned, so nothing awaits it; this
//! module keeps track of it so that shutdown can wait for exactly what is in flight
//! (and nothing when nothing is), instead of sleeping a fixed time.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio_util::task::TaskTracker;

/// Every clean-up task of the process.
static TASKS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Runs `work` in the background on the current runtime, tracked until it ends. Does
/// nothing outside a runtime (the process is going away then anyway).
pub fn spawn<F>(work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        TASKS.spawn_on(work, &runtime);
    }
}

/// Waits until every clean-up task has ended, at most `limit`. True when all ended.
pub async fn finish(limit: Duration) -> bool {
    TASKS.close();
    let finished = tokio::time::timeout(limit, TASKS.wait()).await.is_ok();
    TASKS.reopen();
    finished
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finishing_waits_for_tracked_work_and_no_longer() {
        let started = std::time::Instant::now();
        assert!(finish(Duration::from_secs(5)).await);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "nothing tracked: at once"
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tx.send(());
        });
        assert!(finish(Duration::from_secs(5)).await);
        assert!(rx.await.is_ok(), "the tracked task ran to its end first");
        spawn(std::future::pending());
        assert!(!finish(Duration::from_millis(100)).await);
    }
}
