//! Jobs as tool results: a job's state as a serializable [`JobSummary`], the id
//! argument every job tool takes, and the text of a page of output cut at a character
//! boundary so that paging through it yields every byte exactly once.

use crate::ToolError;
use crate::bindings::mcpssh::plugin::exec::JobInfo;
use schemars::JsonSchema;
use serde::Serialize;

/// A job's state, as the job tools return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct JobSummary {
    /// The job id (`job-N`).
    pub job_id: String,
    /// The session the command runs on.
    pub session: String,
    /// The command line (its start, when long).
    pub command: String,
    /// True while the command runs.
    pub running: bool,
    /// The exit status, once it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, if any.
    pub exit_signal: Option<String>,
    /// Stopped at its timeout (`idle_timed_out`: because it printed nothing for too long).
    pub timed_out: bool,
    /// Stopped because it printed nothing for its idle timeout.
    pub idle_timed_out: bool,
    /// Stopped by `ssh_job_cancel`.
    pub cancelled: bool,
    /// Why the command could not run or its outcome is unknown.
    pub error: Option<String>,
    /// Bytes written to stdout so far.
    pub stdout_bytes: u64,
    /// Bytes written to stderr so far.
    pub stderr_bytes: u64,
    /// Milliseconds it ran (so far).
    pub duration_ms: u64,
}

impl From<JobInfo> for JobSummary {
    fn from(info: JobInfo) -> Self {
        JobSummary {
            job_id: info.id,
            session: info.session,
            command: info.command,
            running: info.running,
            exit_code: info.exit_code,
            exit_signal: info.exit_signal,
            timed_out: info.timed_out,
            idle_timed_out: info.idle_timed_out,
            cancelled: info.cancelled,
            error: info.error,
            stdout_bytes: info.stdout_bytes,
            stderr_bytes: info.stderr_bytes,
            duration_ms: info.duration_ms,
        }
    }
}

/// Checks a `job_id` argument: `job-` and a number, or (a detached job) `d-` and 16
/// lowercase hex digits.
pub fn check_job_id(field: &str, id: &str) -> Result<(), ToolError> {
    let numbered = id
        .strip_prefix("job-")
        .is_some_and(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()));
    let detached = id.strip_prefix("d-").is_some_and(|h| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if numbered || detached {
        return Ok(());
    }
    Err(ToolError::invalid_argument(
        field,
        format!(
            "`{field}` must be a job id like `job-3` or `d-0123456789abcdef` (from ssh_execute \
             or ssh_job_list), got {id:?}"
        ),
    ))
}

/// The MCP resource holding a job's stdout.
pub fn stdout_resource(id: &str) -> String {
    format!("mcpssh://jobs/{id}/stdout")
}

/// The length of the longest prefix of `data` that does not end inside a UTF-8 character
/// (when the data is longer than 3 bytes: a page never ends on a split character, so
/// text pages joined give back the bytes exactly).
pub fn whole_chars_len(data: &[u8]) -> usize {
    let n = data.len();
    for back in 1..=3.min(n) {
        let b = data[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: look further back for the lead byte
        }
        let width = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back && n > back {
            n - back
        } else {
            n
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_never_end_inside_a_character() {
        let text = "añb€c😀".as_bytes();
        assert_eq!(whole_chars_len(text), text.len());
        assert_eq!(whole_chars_len(&text[..2]), 1); // "a" + first byte of ñ
        assert_eq!(whole_chars_len(&text[..6]), 4); // "añb" + 2 bytes of €
        assert_eq!(whole_chars_len(&text[..text.len() - 1]), text.len() - 4);
        assert_eq!(whole_chars_len(b"plain"), 5);
        assert_eq!(whole_chars_len(b"\xff\xfe"), 2); // not UTF-8: left alone
        assert_eq!(whole_chars_len(&[0xE2]), 1); // too short to cut
    }

    #[test]
    fn job_ids_are_checked() {
        assert!(check_job_id("job_id", "job-12").is_ok());
        assert!(check_job_id("job_id", "d-0123456789abcdef").is_ok());
        for bad in [
            "",
            "job-",
            "job-x",
            "12",
            "job-1 ",
            "../job-1",
            "d-0123",
            "d-0123456789ABCDEF",
        ] {
            assert_eq!(
                check_job_id("job_id", bad).unwrap_err().field(),
                Some("job_id")
            );
        }
    }
}
