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

/// The report waiting to be sent, and the signal that one is there.
#[derive(Default)]
struct Pending {
    report: Mutex<Option<ProgressNotificationParam>>,
    arrived: Notify,
}

/// The progress forwarding of one call.
pub struct Forwarder {
    sink: ProgressSink,
    finished: CancellationToken,
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Forwarding for the call of `context`, or none when the client asked for no
    /// progress.
    pub fn for_request(context: &RequestContext<RoleServer>) -> Option<Forwarder> {
        let token = context.meta.get_progress_token()?;
        let pending = Arc::new(Pending::default());
        let finished = CancellationToken::new();
        let task = tokio::spawn(forward(
            context.peer.clone(),
            pending.clone(),
            finished.clone(),
        ));
        Some(Forwarder {
            sink: report_sink(token, pending),
            finished,
            task,
        })
    }

    /// Where the call reports its progress.
    pub fn sink(&self) -> ProgressSink {
        self.sink.clone()
    }

    /// Sends the call's last report, if not sent yet, and stops forwarding.
    pub async fn finish(self) {
        self.finished.cancel();
        let _ = self.task.await;
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
        },
    )
}

/// Sends the pending report whenever there is one, at most every 100 ms, until the call
/// has finished and its last report is out.
async fn forward(peer: Peer<RoleServer>, pending: Arc<Pending>, finished: CancellationToken) {
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
