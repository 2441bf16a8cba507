//! What `exec` returns, as WIT data: captured output streams and jobs, and the most
//! output a call may keep per stream.

use crate::jobs::JobInfo;
use crate::plugin::bindings::mcpssh::plugin::exec;
use crate::ssh::exec::CapturedStream;

/// The most output a call may keep per stream, whatever it asks for: results travel
/// through guest memory and the MCP stream.
pub const MAX_OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;

/// A captured output stream as WIT data.
pub fn wit_stream(s: CapturedStream) -> exec::CapturedStream {
    exec::CapturedStream {
        head: s.head,
        tail: s.tail,
        cut_bytes: s.cut_bytes,
        total_bytes: s.total_bytes,
    }
}

/// A job as WIT data.
pub fn wit_job(info: JobInfo) -> exec::JobInfo {
    let running = info.end.is_none();
    let end = info.end.unwrap_or_default();
    exec::JobInfo {
        id: info.id,
        session: info.session,
        command: info.command,
        started_at: info.started_at,
        duration_ms: info.duration.as_millis() as u64,
        running,
        exit_code: end.exit_code,
        exit_signal: end.exit_signal,
        timed_out: end.timed_out,
        idle_timed_out: end.idle_timed_out,
        cancelled: end.cancelled,
        error: end.error.map(|e| e.message().to_string()),
        stdout_bytes: info.stdout_bytes,
        stderr_bytes: info.stderr_bytes,
    }
}
