//! Forwarding a call's progress reports to the client without letting a tool flood it:
//! the latest report replaces any report not yet sent (nothing queues), at most one
//! notification goes out every 100 ms, and messages are cut to
//! [`MAX_PROGRESS_MESSAGE_BYTES`]. When the call ends, its last report goes out at once,
//! before the call's result.

use std::sync::{Arc, Mutex};

use rmcp::model::ProgressNotificationParam;
use rmcp::service::{Peer, RequestContext};
use rmcp::{RoleServer, model::ProgressToken};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bounded::{MIN_NOTIFICATION_GAP, cap_message};
use crate::plugin::ProgressSink;

/// The longest progress message forwarded, in bytes.
pub const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// The report waiting to be sent, the signal that one is there, and the task that
/// sends them, started by the first report (most calls report nothing, and then cost
/// no task).
struct Pending {
    report: Mutex<Option<ProgressNotificationParam>>,
    arrived: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
    peer: Peer<RoleServer>,
    finished: CancellationToken,
}

/// The progress forwarding of one call.
pub struct Forwarder {
    sink: ProgressSink,
    pending: Arc<Pending>,
}

impl Forwarder {
    /// Forwarding for the call of `context`, or none when the client asked for no
    /// progress.
    pub fn for_request(context: &RequestContext<RoleServer>) -> Option<Forwarder> {
        let token = context.meta.get_progress_token()?;
        let pending = Arc::new(Pending {
            report: Mutex::new(None),
            arrived: Notify::new(),
            task: Mutex::new(None),
            peer: context.peer.clone(),
            finished: CancellationToken::new(),
        });
        Some(Forwarder {
            sink: report_sink(token, pending.clone()),
            pending,
        })
    }

    /// Where the call reports its progress.
    pub fn sink(&self) -> ProgressSink {
        self.sink.clone()
    }

    /// Sends the call's last report, if not sent yet, and stops forwarding.
    pub async fn finish(self) {
        self.pending.finished.cancel();
        let task = self.pending.task.lock().unwrap().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// A sink that makes each report the pending one.
fn report_sink(token: ProgressToken, pending: Arc<Pending>) -> ProgressSink {
    Arc::new(
        move |done: f64, total: Option<f64>, message: Option<String>| {
            let mut report = ProgressNotificationParam::new(token.clone(), done);
            report.total = total;
            report.message = message.map(|m| cap_message(m, MAX_PROGRESS_MESSAGE_BYTES));
            *pending.report.lock().unwrap() = Some(report);
            pending.arrived.notify_one();
            let mut task = pending.task.lock().unwrap();
            if task.is_none()
                && !pending.finished.is_cancelled()
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                *task = Some(runtime.spawn(forward(pending.clone())));
            }
        },
    )
}

impl Drop for Forwarder {
    /// A call dropped without [`Forwarder::finish`] stops its forwarding too.
    fn drop(&mut self) {
        self.pending.finished.cancel();
    }
}

/// Sends the pending report whenever there is one, at most every 100 ms, until the call
/// has finished and its last report is out.
async fn forward(pending: Arc<Pending>) {
    let (peer, finished) = (&pending.peer, &pending.finished);
    loop {
        let finishing = tokio::select! {
            _ = pending.arrived.notified() => false,
            _ = finished.cancelled() => true,
        };
        let report = pending.report.lock().unwrap().take();
        if let Some(report) = report
            && peer.notify_progress(report).await.is_err()
        {
            return;
        }
        if finishing {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(MIN_NOTIFICATION_GAP) => {}
            _ = finished.cancelled() => {}
        }
    }
}
