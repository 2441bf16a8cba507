//! The host side of `host-log`: a guest's log lines (capped, rate-limited, tagged with the
//! tool's name) go to the host's log, and its progress to the client when it asked for
//! progress. Neither waits, so neither is host work.

use std::time::Instant;

use crate::bounded::cap_message;
use crate::plugin::bindings::mcpssh::plugin::host_log;
use crate::plugin::state::{CallState, LOG_RATE_NOTE};

/// The longest log message of a guest, in bytes.
const MAX_LOG_MESSAGE_BYTES: usize = 4096;

impl host_log::Host for CallState {
    fn log(&mut self, level: host_log::Level, message: String) -> wasmtime::Result<()> {
        let Some(dropped) = self.log_budget.take(Instant::now()) else {
            return Ok(());
        };
        let message = cap_message(message, MAX_LOG_MESSAGE_BYTES);
        let tool = &self.tool;
        if dropped > 0 {
            tracing::warn!(%tool, "{dropped} log messages of this tool were dropped: {LOG_RATE_NOTE}");
        }
        match level {
            host_log::Level::Trace => tracing::trace!(%tool, "{message}"),
            host_log::Level::Debug => tracing::debug!(%tool, "{message}"),
            host_log::Level::Info => tracing::info!(%tool, "{message}"),
            host_log::Level::Warn => tracing::warn!(%tool, "{message}"),
            host_log::Level::Error => tracing::error!(%tool, "{message}"),
        }
        Ok(())
    }

    fn progress(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: Option<String>,
    ) -> wasmtime::Result<()> {
        if let Some(sink) = &self.host.call.progress {
            sink(done as f64, total.map(|t| t as f64), message);
        }
        Ok(())
    }
}
