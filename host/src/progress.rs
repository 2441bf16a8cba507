//! Forwarding a call's progress reports to the client without letting a tool flood it:
//! the latest report replaces any report not yet sent (nothing queues), at most one
//! notification goes out every 100 ms, and messages are cut to
//! [`MAX_PROGRESS_MESSAGE_BYTES`]. The last report of a call always goes out, so the
//! client sees the final state.

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;

use crate::bounded::{MIN_NOTIFICATION_GAP, cap_message};
use crate::plugin::ProgressSink;

/// The longest progress message forwarded, in bytes.
pub const MAX_PROGRESS_MESSAGE_BYTES: usize = 1024;

/// A progress sink for the call of `context`, or none when the client asked for no
/// progress.
pub fn sink(context: &RequestContext<RoleServer>) -> Option<ProgressSink> {
    let token = context.meta.get_progress_token()?;
    let peer = context.peer.clone();
    let (latest, mut reports) = tokio::sync::watch::channel(None::<ProgressNotificationParam>);
    // Ends once the call dropped its sink and the last report went out.
    tokio::spawn(async move {
        while reports.changed().await.is_ok() {
            let report = reports.borrow_and_update().clone();
            if let Some(report) = report
                && peer.notify_progress(report).await.is_err()
            {
                break;
            }
            tokio::time::sleep(MIN_NOTIFICATION_GAP).await;
        }
    });
    Some(Arc::new(
        move |done: f64, total: Option<f64>, message: Option<String>| {
            let mut report = ProgressNotificationParam::new(token.clone(), done);
            report.total = total;
            report.message = message.map(|m| cap_message(m, MAX_PROGRESS_MESSAGE_BYTES));
            latest.send_replace(Some(report));
        },
    ))
}
