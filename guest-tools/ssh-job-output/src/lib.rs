//! `ssh_job_output`: read a page of a job's output, waiting for new output first if
//! asked. Imports only `mcpssh:plugin/exec`.

use mcpssh_sdk::bindings::mcpssh::plugin::exec::{self, OutputPage, OutputRequest, OutputStream};
use mcpssh_sdk::jobs::{JobSummary, check_job_id, whole_chars_len};
use mcpssh_sdk::{JsonSchema, Tool, ToolError, ToolInfo, validate};
use serde::{Deserialize, Serialize};

/// The longest wait a call may ask for, in seconds.
pub const MAX_WAIT_SECONDS: f64 = 3600.0;
/// The page size when none is asked for, in bytes.
pub const DEFAULT_PAGE_BYTES: u64 = 64 * 1024;
/// The largest page, in bytes.
pub const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;

const DESCRIPTION: &str = "\
Read a job's output from `offset` (or its last `tail_bytes`), waiting up to `wait_seconds` for \
more. Pass the returned `next_offset` to continue; `complete` once all is read.";

/// Which stream of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    #[default]
    Stdout,
    Stderr,
}

/// Which part of which job's output.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputArgs {
    /// From ssh_execute or ssh_job_list.
    pub job_id: String,
    /// Default: stdout.
    pub stream: Option<Stream>,
    /// Byte offset. Default: 0.
    pub offset: Option<u64>,
    /// Read the last N bytes instead.
    pub tail_bytes: Option<u64>,
    /// Default 65536.
    #[schemars(range(min = 1, max = 4194304))]
    pub max_bytes: Option<u64>,
    /// Default 0.
    #[schemars(range(min = 0, max = 3600))]
    pub wait_seconds: Option<f64>,
}

/// A page of output and the job's state.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct OutputResult {
    /// Always true.
    pub success: bool,
    /// The offset of the first byte of `data` (later than asked when older output was
    /// dropped from the spool).
    pub offset: u64,
    /// Where the next page starts.
    pub next_offset: u64,
    /// The page as text (invalid UTF-8 replaced by U+FFFD; never ends inside a character).
    pub data: String,
    /// The earliest offset still kept.
    pub first_kept: u64,
    /// True when the job ended and this page reached the end of the stream.
    pub complete: bool,
    /// The job's state.
    pub job: JobSummary,
}

/// The `ssh_job_output` tool.
pub struct JobOutputTool;

impl Tool for JobOutputTool {
    type Args = OutputArgs;
    type Output = OutputResult;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_job_output", DESCRIPTION)
            .title("Read a job's output")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false)
    }

    fn run(args: OutputArgs) -> Result<OutputResult, ToolError> {
        let request = request(args)?;
        let stream = request.stream;
        let page = exec::read_job_output(&request)?;
        Ok(shape(page, stream))
    }
}

/// Checks the arguments and turns them into the host's request.
fn request(args: OutputArgs) -> Result<OutputRequest, ToolError> {
    check_job_id("job_id", &args.job_id)?;
    let max_bytes = args.max_bytes.unwrap_or(DEFAULT_PAGE_BYTES);
    validate::in_range("max_bytes", max_bytes, 1, MAX_PAGE_BYTES)?;
    let wait_ms = match args.wait_seconds {
        None => 0,
        Some(0.0) => 0,
        Some(s) => validate::seconds_to_millis("wait_seconds", s, MAX_WAIT_SECONDS)?,
    };
    Ok(OutputRequest {
        id: args.job_id,
        stream: match args.stream.unwrap_or_default() {
            Stream::Stdout => OutputStream::Stdout,
            Stream::Stderr => OutputStream::Stderr,
        },
        offset: args.offset.unwrap_or(0),
        tail: args.tail_bytes,
        max_bytes,
        wait_ms,
    })
}

/// Shapes a page into the tool result: the text ends on a whole character.
fn shape(page: OutputPage, stream: OutputStream) -> OutputResult {
    let len = whole_chars_len(&page.data);
    let next_offset = page.offset + len as u64;
    let total = match stream {
        OutputStream::Stdout => page.job.stdout_bytes,
        OutputStream::Stderr => page.job.stderr_bytes,
    };
    OutputResult {
        success: true,
        offset: page.offset,
        next_offset,
        data: String::from_utf8_lossy(&page.data[..len]).into_owned(),
        first_kept: page.first_kept,
        complete: !page.job.running && next_offset >= total,
        job: page.job.into(),
    }
}

mcpssh_sdk::export_tools!(JobOutputTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::bindings::mcpssh::plugin::exec::JobInfo;
    use mcpssh_sdk::{check_tool, parse_args};

    fn req(json: &str) -> Result<OutputRequest, ToolError> {
        request(parse_args::<OutputArgs>(json)?)
    }

    #[test]
    fn descriptor_is_valid() {
        check_tool::<JobOutputTool>().unwrap();
    }

    #[test]
    fn defaults_and_full_request() {
        let r = req(r#"{"job_id": "job-1"}"#).unwrap();
        assert_eq!(
            (r.offset, r.tail, r.max_bytes, r.wait_ms),
            (0, None, DEFAULT_PAGE_BYTES, 0)
        );
        assert_eq!(r.stream, OutputStream::Stdout);
        let r = req(
            r#"{"job_id": "job-1", "stream": "stderr", "offset": 5, "tail_bytes": 9,
                        "max_bytes": 100, "wait_seconds": 2.5}"#,
        )
        .unwrap();
        assert_eq!(
            (r.offset, r.tail, r.max_bytes, r.wait_ms),
            (5, Some(9), 100, 2500)
        );
        assert_eq!(r.stream, OutputStream::Stderr);
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for (args, field) in [
            (r#"{}"#, "job_id"),
            (r#"{"job_id": "7"}"#, "job_id"),
            (r#"{"job_id": "job-1", "stream": "both"}"#, "stream"),
            (r#"{"job_id": "job-1", "offset": -1}"#, "offset"),
            (r#"{"job_id": "job-1", "max_bytes": 0}"#, "max_bytes"),
            (r#"{"job_id": "job-1", "max_bytes": 4194305}"#, "max_bytes"),
            (r#"{"job_id": "job-1", "wait_seconds": -1}"#, "wait_seconds"),
            (
                r#"{"job_id": "job-1", "wait_seconds": 3601}"#,
                "wait_seconds",
            ),
        ] {
            let e = mcpssh_sdk::testing::refusal::<JobOutputTool>(args);
            assert_eq!(e["field"], field, "{args}: {e}");
        }
    }

    fn page(data: &[u8], running: bool, total: u64) -> OutputPage {
        OutputPage {
            offset: 10,
            data: data.to_vec(),
            first_kept: 0,
            job: JobInfo {
                stdout_bytes: total,
                ..mcpssh_sdk::testing::job_info("job-1", running)
            },
        }
    }

    #[test]
    fn a_page_ends_on_a_whole_character_and_says_when_all_is_read() {
        let r = shape(
            page("ab€".as_bytes()[..4].as_ref(), false, 15),
            OutputStream::Stdout,
        );
        assert_eq!(
            (r.data.as_str(), r.next_offset, r.complete),
            ("ab", 12, false)
        );
        let r = shape(page(b"hello", false, 15), OutputStream::Stdout);
        assert_eq!((r.next_offset, r.complete), (15, true));
        let r = shape(page(b"hello", true, 15), OutputStream::Stdout);
        assert!(!r.complete);
    }
}
