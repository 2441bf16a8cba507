//! Logging and progress through the host (`mcpssh:plugin/host-log`).
//!
//! Using any function here makes the component import `host-log`, which a user-supplied
//! component must be granted. The SDK itself never calls these. Guest stdout and stderr (for
//! example `eprintln!`) also end up in the host's log, without needing a grant.

use crate::bindings::mcpssh::plugin::host_log;

pub use host_log::Level;

/// Writes `message` to the host's log at `level` (and, through it, to MCP log notifications).
pub fn log(level: Level, message: &str) {
    host_log::log(level, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Reports progress of the current call: `done` out of `total` (when known), with an optional
/// message. The host forwards it only when the client asked for progress, and rate-limits it.
pub fn progress(done: u64, total: Option<u64>, message: Option<&str>) {
    host_log::progress(done, total, message);
}
