//! Forwarding the server's own log events (target `mcpssh`) to the MCP client as
//! `notifications/message`, once the client chose a level with `logging/setLevel`.
//! Other crates' events never reach the client, so sending a notification cannot
//! log its way into a loop. The queue to the client is bounded and messages are capped:
//! when events come faster than the client reads them, the excess is dropped and counted.
//!
//! MCP logging is deprecated from protocol 2026-07-28 on (SEP-2577) but is what clients
//! of the 2025 revisions use; it stays until rmcp drops it.
#![allow(deprecated)]

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use serde_json::json;
use tokio::sync::mpsc::Sender;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use crate::bounded::cap_message;

/// Log notifications waiting to be written to the client; more are dropped (and counted)
/// rather than queued, so a flood of events cannot grow the server.
const QUEUE_CAPACITY: usize = 256;

/// The longest log message sent to the client, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Where events go, the most verbose level the client wants (0: nothing), and how many
/// events were dropped because the queue was full.
struct ClientLog {
    sender: Mutex<Option<Sender<LoggingMessageNotificationParam>>>,
    level: AtomicU8,
    dropped: AtomicU64,
}

static CLIENT_LOG: OnceLock<ClientLog> = OnceLock::new();

fn client_log() -> &'static ClientLog {
    CLIENT_LOG.get_or_init(|| ClientLog {
        sender: Mutex::new(None),
        level: AtomicU8::new(0),
        dropped: AtomicU64::new(0),
    })
}

/// 1 = error … 4 = debug; tracing's TRACE is never sent.
fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn mcp_level(level: &Level) -> LoggingLevel {
    match *level {
        Level::ERROR => LoggingLevel::Error,
        Level::WARN => LoggingLevel::Warning,
        Level::INFO => LoggingLevel::Info,
        _ => LoggingLevel::Debug,
    }
}

/// Sets the level the client asked for.
pub fn set_level(level: LoggingLevel) {
    let rank = match level {
        LoggingLevel::Debug => 4,
        LoggingLevel::Info | LoggingLevel::Notice => 3,
        LoggingLevel::Warning => 2,
        _ => 1,
    };
    client_log().level.store(rank, Ordering::Relaxed);
}

/// Sends events to `peer` from now on.
pub fn attach(peer: rmcp::service::Peer<rmcp::RoleServer>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUE_CAPACITY);
    *client_log().sender.lock().unwrap() = Some(tx);
    tokio::spawn(async move {
        while let Some(param) = rx.recv().await {
            let dropped = client_log().dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                let notice = LoggingMessageNotificationParam::new(
                    LoggingLevel::Warning,
                    json!(format!("{dropped} log messages were dropped: they came faster than the client read them")),
                )
                .with_logger("mcpssh");
                if peer.notify_logging_message(notice).await.is_err() {
                    break;
                }
            }
            if peer.notify_logging_message(param).await.is_err() {
                break;
            }
        }
    });
}

/// Collects an event's message and fields as text.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

/// The tracing layer that feeds the client.
pub struct ClientLogLayer;

impl<S: Subscriber> Layer<S> for ClientLogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        metadata.target().starts_with("mcpssh")
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let log = client_log();
        let level = event.metadata().level();
        if rank(level) > log.level.load(Ordering::Relaxed) {
            return;
        }
        let Some(sender) = log.sender.lock().unwrap().clone() else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let message = cap_message(text.0, MAX_MESSAGE_BYTES);
        let param = LoggingMessageNotificationParam::new(mcp_level(level), json!(message))
            .with_logger(event.metadata().target());
        if sender.try_send(param).is_err() {
            log.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
