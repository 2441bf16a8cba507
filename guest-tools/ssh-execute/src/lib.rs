//! `ssh_execute`: run a command on the remote host. Imports only `mcpssh:plugin/exec`.

use std::collections::BTreeMap;

use mcpssh_sdk::bindings::mcpssh::plugin::exec::{
    self, ExecOutput, ExecRequest, JobInfo, JobOptions,
};
use mcpssh_sdk::jobs::stdout_resource;
use mcpssh_sdk::stream::captured_to_string;
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target, validate};
use serde::{Deserialize, Serialize};

/// The longest timeout a call may ask for, in seconds (one day).
pub const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;
/// The smallest per-stream output limit a call may ask for, in bytes.
pub const MIN_OUTPUT_BYTES: i64 = 1024;

const DESCRIPTION: &str = "\
Run a shell command on the remote host and wait for it to end. Each call starts a fresh shell: \
use `working_directory` and `env` instead of `cd` or `export` in an earlier call. A non-zero \
exit is a normal result (`success: false`). Each output stream keeps its head and tail \
(`*_cut_bytes` say what was cut; `job_id` then gets it all). Still running after the \
server's foreground limit (or with `background`), it returns a `job_id` to follow with \
ssh_job_output. Prompts hang: pass `stdin`, use non-interactive flags (`apt-get -y`).";

/// The command to run and how.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteArgs {
    /// Command line for the remote user's shell.
    pub command: String,
    /// Default: the server's (60 s).
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 86400))]
    pub timeout_seconds: Option<f64>,
    /// Text for standard input.
    pub stdin: Option<String>,
    /// Variables to set.
    pub env: Option<BTreeMap<String, String>>,
    /// Default: the remote home.
    pub working_directory: Option<String>,
    /// Per stream. Default: the server's (1 MiB).
    #[schemars(range(min = 1024))]
    pub max_output_bytes: Option<i64>,
    /// Run in a terminal (stderr merged into stdout).
    #[serde(default)]
    pub pty: bool,
    /// Return at once with a job_id.
    #[serde(default)]
    pub background: bool,
    /// Survive disconnects and restarts.
    #[serde(default)]
    pub detached: bool,
    /// Stop when silent this long.
    #[schemars(extend("exclusiveMinimum" = 0, "maximum" = 86400))]
    pub idle_timeout_seconds: Option<f64>,
    // Described by the SDK (`target::HOST_DESCRIPTION`).
    pub host: Option<HostArg>,
}

/// How the command ended and what it printed.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ExecuteOutput {
    /// True when the command exited with status 0 and did not time out.
    pub success: bool,
    /// The exit status, or null when the command did not exit normally (killed by a signal or
    /// stopped at the timeout).
    pub exit_code: Option<i32>,
    /// The signal that killed the command (e.g. `TERM`, `KILL`), or null.
    pub exit_signal: Option<String>,
    /// Standard output as text (invalid UTF-8 replaced by U+FFFD); when longer than the limit,
    /// its beginning and end joined by a line `[... N bytes cut ...]`.
    pub stdout: String,
    /// Standard error, like `stdout`.
    pub stderr: String,
    /// Bytes of stdout left out in the middle.
    pub stdout_cut_bytes: u64,
    /// Bytes of stderr left out in the middle.
    pub stderr_cut_bytes: u64,
    /// Bytes the command wrote to stdout in all.
    pub stdout_total_bytes: u64,
    /// Bytes the command wrote to stderr in all.
    pub stderr_total_bytes: u64,
    /// True when the command was stopped because it ran past its timeout.
    pub timed_out: bool,
    /// True when it was stopped because it printed nothing for `idle_timeout_seconds`.
    pub idle_timed_out: bool,
    /// How long the command ran, in milliseconds.
    pub duration_ms: u64,
    /// True when the SSH session had dropped and was re-established for this command.
    pub reconnected: bool,
    /// True when the command still runs (as job `job_id`); the output so far is above.
    pub running: bool,
    /// The job holding the command and its full output: set while it runs and when its
    /// output was cut. Follow with `ssh_job_output`.
    pub job_id: Option<String>,
    /// How to follow the job or get the full output.
    pub next: Option<String>,
}

/// The `ssh_execute` tool.
pub struct ExecuteTool;

impl Tool for ExecuteTool {
    type Args = ExecuteArgs;
    type Output = ExecuteOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_execute", DESCRIPTION)
            .title("Run a command over SSH")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    }

    fn run(args: ExecuteArgs) -> Result<ExecuteOutput, ToolError> {
        let (request, options) = request(args)?;
        let deadline = if options.detached {
            Deadline::None
        } else if request.timeout_ms.is_some() {
            Deadline::Given
        } else {
            Deadline::ServerDefault
        };
        let started = exec::start_job(&request, options)?;
        Ok(shape(&started.output, &started.job, deadline))
    }
}

/// Checks the arguments and turns them into the host's request.
fn request(args: ExecuteArgs) -> Result<(ExecRequest, JobOptions), ToolError> {
    validate::non_empty("command", &args.command)?;
    validate::no_nul("command", &args.command)?;

    let timeout_ms = args
        .timeout_seconds
        .map(|s| validate::seconds_to_millis("timeout_seconds", s, MAX_TIMEOUT_SECONDS))
        .transpose()?;

    let mut env = Vec::new();
    for (name, value) in args.env.unwrap_or_default() {
        validate::env_name("env", &name)?;
        if value.contains('\0') {
            return Err(ToolError::invalid_argument(
                "env",
                format!("`env` value of {name} must not contain NUL characters"),
            ));
        }
        env.push((name, value));
    }

    if let Some(dir) = &args.working_directory {
        validate::non_empty("working_directory", dir)?;
        validate::no_nul("working_directory", dir)?;
    }

    let output_limit = args
        .max_output_bytes
        .map(|n| validate::at_least("max_output_bytes", n, MIN_OUTPUT_BYTES))
        .transpose()?
        .map(|n| u64::try_from(n).expect("checked to be positive"));

    let session = target::session(args.host)?;
    let options = JobOptions {
        detached: args.detached,
        foreground_ms: (args.background || args.detached).then_some(0),
        idle_timeout_ms: args
            .idle_timeout_seconds
            .map(|s| validate::seconds_to_millis("idle_timeout_seconds", s, MAX_TIMEOUT_SECONDS))
            .transpose()?,
    };

    let request = ExecRequest {
        session,
        command: args.command,
        stdin: args.stdin.map(String::into_bytes),
        env,
        working_directory: args.working_directory,
        timeout_ms,
        output_limit,
        pty: args.pty,
    };
    Ok((request, options))
}

/// What stops a job that still runs, if the command does not end first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// The `timeout_seconds` the call gave.
    Given,
    /// The server's default timeout (`MCP_SSH_COMMAND_TIMEOUT`).
    ServerDefault,
    /// Nothing: a detached job runs until it ends or is cancelled.
    None,
}

/// How to follow a job that still runs (and when it will be stopped), or fetch the full
/// output of a cut one.
fn next_step(job: &JobInfo, cut: bool, deadline: Deadline) -> Option<String> {
    let id = &job.id;
    if job.running {
        let stops = match deadline {
            Deadline::Given => "; it is stopped at its timeout_seconds",
            Deadline::ServerDefault => {
                "; it is stopped at the server's default timeout (MCP_SSH_COMMAND_TIMEOUT): if \
                 it needs longer, cancel it and run it again with a larger timeout_seconds"
            }
            Deadline::None => "",
        };
        Some(format!(
            "still running as {id}: call ssh_job_output with job_id {id:?} and wait_seconds to \
             follow it (offset = the last next_offset), ssh_job_cancel to stop it{stops}"
        ))
    } else if cut {
        Some(format!(
            "output was cut: ssh_job_output with job_id {id:?} pages through all of it (also the \
             resource {})",
            stdout_resource(id)
        ))
    } else {
        None
    }
}

/// Shapes the host's answer into the tool result.
fn shape(output: &ExecOutput, job: &JobInfo, deadline: Deadline) -> ExecuteOutput {
    let cut = output.stdout.cut_bytes > 0 || output.stderr.cut_bytes > 0;
    let keeps_job = job.running || cut;
    ExecuteOutput {
        success: output.exit_code == Some(0) && !output.timed_out && !job.running,
        exit_code: output.exit_code,
        exit_signal: output.exit_signal.clone(),
        stdout: captured_to_string(&output.stdout),
        stderr: captured_to_string(&output.stderr),
        stdout_cut_bytes: output.stdout.cut_bytes,
        stderr_cut_bytes: output.stderr.cut_bytes,
        stdout_total_bytes: output.stdout.total_bytes,
        stderr_total_bytes: output.stderr.total_bytes,
        timed_out: output.timed_out,
        idle_timed_out: job.idle_timed_out,
        duration_ms: output.duration_ms,
        reconnected: output.reconnected,
        running: job.running,
        job_id: keeps_job.then(|| job.id.clone()),
        next: next_step(job, cut, deadline),
    }
}

mcpssh_sdk::export_tools!(ExecuteTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::bindings::mcpssh::plugin::exec::CapturedStream;
    use mcpssh_sdk::{check_tool, input_schema, parse_args};
    use serde_json::{Value, json};

    fn req(json: &str) -> Result<ExecRequest, ToolError> {
        request(parse_args::<ExecuteArgs>(json)?).map(|(r, _)| r)
    }

    fn options(json: &str) -> JobOptions {
        request(parse_args::<ExecuteArgs>(json).unwrap()).unwrap().1
    }

    #[test]
    fn background_and_idle_timeout_become_job_options() {
        let o = options(r#"{"command": "x"}"#);
        assert_eq!((o.foreground_ms, o.idle_timeout_ms), (None, None));
        let o = options(r#"{"command": "x", "background": true, "idle_timeout_seconds": 1.5}"#);
        assert_eq!((o.foreground_ms, o.idle_timeout_ms), (Some(0), Some(1500)));
        assert!(!o.detached);
        let o = options(r#"{"command": "x", "detached": true}"#);
        assert!(o.detached && o.foreground_ms == Some(0));
    }

    fn error_of(args: &str) -> Value {
        mcpssh_sdk::testing::refusal::<ExecuteTool>(args)
    }

    #[test]
    fn descriptor_is_valid() {
        check_tool::<ExecuteTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<ExecuteTool>();
        assert_eq!(d.name, "ssh_execute");
        assert!(!d.read_only && d.destructive && !d.idempotent && d.open_world);
    }

    #[test]
    fn schema_lists_the_contract_arguments() {
        let s = input_schema::<ExecuteArgs>();
        let props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            props,
            [
                "background",
                "command",
                "detached",
                "env",
                "host",
                "idle_timeout_seconds",
                "max_output_bytes",
                "pty",
                "stdin",
                "timeout_seconds",
                "working_directory"
            ]
        );
        assert_eq!(s["required"], json!(["command"]));
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"]["timeout_seconds"]["exclusiveMinimum"], 0);
        assert_eq!(s["properties"]["timeout_seconds"]["maximum"], 86400);
        assert_eq!(s["properties"]["max_output_bytes"]["minimum"], 1024);
        assert_eq!(s["properties"]["env"]["type"], "object");
        assert_eq!(s["properties"]["pty"]["default"], false);
        assert_eq!(s["properties"]["host"]["type"], "string");
        assert_eq!(
            s["properties"]["host"]["description"],
            mcpssh_sdk::target::HOST_DESCRIPTION
        );
    }

    #[test]
    fn minimal_request_leaves_defaults_to_the_host() {
        let r = req(r#"{"command": "ls -la"}"#).unwrap();
        assert_eq!(r.command, "ls -la");
        assert_eq!(r.session, None);
        assert_eq!(r.stdin, None);
        assert!(r.env.is_empty());
        assert_eq!(r.working_directory, None);
        assert_eq!(r.timeout_ms, None);
        assert_eq!(r.output_limit, None);
        assert!(!r.pty);
    }

    #[test]
    fn full_request() {
        let r = req(
            r#"{"command": "cat", "timeout_seconds": 2.5, "stdin": "hi", "env": {"B": "2", "A": "1"},
                "working_directory": "/tmp", "max_output_bytes": 4096, "pty": true,
                "host": "web1"}"#,
        )
        .unwrap();
        assert_eq!(r.timeout_ms, Some(2500));
        assert_eq!(r.stdin.as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            r.env,
            vec![("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(r.working_directory.as_deref(), Some("/tmp"));
        assert_eq!(r.output_limit, Some(4096));
        assert!(r.pty);
        assert_eq!(r.session.as_deref(), Some("web1"));
    }

    #[test]
    fn integer_timeout_is_fine() {
        assert_eq!(
            req(r#"{"command": "x", "timeout_seconds": 86400}"#)
                .unwrap()
                .timeout_ms,
            Some(86_400_000)
        );
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for (args, field) in [
            (r#"{}"#, "command"),
            (r#"{"command": ""}"#, "command"),
            (r#"{"command": "   "}"#, "command"),
            (r#"{"command": "a\u0000b"}"#, "command"),
            (r#"{"command": 1}"#, "command"),
            (
                r#"{"command": "x", "timeout_seconds": 0}"#,
                "timeout_seconds",
            ),
            (
                r#"{"command": "x", "timeout_seconds": -1}"#,
                "timeout_seconds",
            ),
            (
                r#"{"command": "x", "timeout_seconds": 86401}"#,
                "timeout_seconds",
            ),
            (
                r#"{"command": "x", "timeout_seconds": "10"}"#,
                "timeout_seconds",
            ),
            (r#"{"command": "x", "env": {"1BAD": "v"}}"#, "env"),
            (r#"{"command": "x", "env": {"A-B": "v"}}"#, "env"),
            (r#"{"command": "x", "env": {"A": 1}}"#, "env"),
            (r#"{"command": "x", "env": ["A=1"]}"#, "env"),
            (r#"{"command": "x", "env": {"A": "\u0000"}}"#, "env"),
            (
                r#"{"command": "x", "working_directory": ""}"#,
                "working_directory",
            ),
            (
                r#"{"command": "x", "max_output_bytes": 1023}"#,
                "max_output_bytes",
            ),
            (
                r#"{"command": "x", "max_output_bytes": -5}"#,
                "max_output_bytes",
            ),
            (
                r#"{"command": "x", "max_output_bytes": 2048.5}"#,
                "max_output_bytes",
            ),
            (r#"{"command": "x", "pty": "yes"}"#, "pty"),
            (r#"{"command": "x", "background": 1}"#, "background"),
            (
                r#"{"command": "x", "idle_timeout_seconds": 0}"#,
                "idle_timeout_seconds",
            ),
            (r#"{"command": "x", "cwd": "/"}"#, "cwd"),
            (r#"{"command": "x", "host": ""}"#, "host"),
            (r#"{"command": "x", "host": "a b"}"#, "host"),
            (r#"{"command": "x", "host": "a\u0001"}"#, "host"),
            (r#"{"command": "x", "host": 3}"#, "host"),
        ] {
            let e = error_of(args);
            assert_eq!(e["success"], false, "{args}");
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], field, "{args}: {e}");
        }
        assert_eq!(error_of("{}")["error"], "`command` is required");
        assert_eq!(
            error_of(r#"{"command": ""}"#)["error"],
            "`command` must not be empty"
        );
        assert_eq!(
            error_of(r#"{"command": "x", "max_output_bytes": 10}"#)["error"],
            "`max_output_bytes` must be at least 1024, got 10"
        );
    }

    fn stream(head: &[u8], tail: &[u8], cut: u64) -> CapturedStream {
        CapturedStream {
            head: head.to_vec(),
            tail: tail.to_vec(),
            cut_bytes: cut,
            total_bytes: (head.len() + tail.len()) as u64 + cut,
        }
    }

    fn output(exit_code: Option<i32>, timed_out: bool) -> ExecOutput {
        ExecOutput {
            exit_code,
            exit_signal: None,
            stdout: stream(b"out\n", b"", 0),
            stderr: stream(b"", b"", 0),
            timed_out,
            duration_ms: 12,
            reconnected: false,
        }
    }

    fn job(running: bool) -> JobInfo {
        JobInfo {
            duration_ms: 12,
            ..mcpssh_sdk::testing::job_info("job-7", running)
        }
    }

    #[test]
    fn success_only_for_exit_zero_without_timeout() {
        let done = job(false);
        assert!(shape(&output(Some(0), false), &done, Deadline::Given).success);
        assert!(!shape(&output(Some(1), false), &done, Deadline::Given).success);
        assert!(!shape(&output(Some(0), true), &done, Deadline::Given).success);
        assert!(!shape(&output(None, true), &done, Deadline::Given).success);
    }

    #[test]
    fn a_running_command_or_a_cut_output_names_its_job() {
        let running = shape(&output(None, false), &job(true), Deadline::Given);
        assert!(running.running && !running.success);
        assert_eq!(running.job_id.as_deref(), Some("job-7"));
        assert!(running.next.unwrap().contains("ssh_job_output"));
        let done = shape(&output(Some(0), false), &job(false), Deadline::Given);
        assert_eq!((done.job_id, done.next), (None, None));
        let mut cut = output(Some(0), false);
        cut.stdout = stream(b"a", b"b", 10);
        let cut = shape(&cut, &job(false), Deadline::Given);
        assert_eq!(cut.job_id.as_deref(), Some("job-7"));
        assert!(cut.next.unwrap().contains("mcpssh://jobs/job-7/stdout"));
    }

    #[test]
    fn a_running_job_says_what_will_stop_it() {
        let next = |deadline| {
            shape(&output(None, false), &job(true), deadline)
                .next
                .unwrap()
        };
        assert!(next(Deadline::Given).contains("stopped at its timeout_seconds"));
        let default = next(Deadline::ServerDefault);
        assert!(
            default.contains("MCP_SSH_COMMAND_TIMEOUT")
                && default.contains("larger timeout_seconds"),
            "{default}"
        );
        assert!(!next(Deadline::None).contains("stopped at"));
    }

    #[test]
    fn shapes_the_output() {
        let mut o = output(None, false);
        o.exit_signal = Some("KILL".into());
        o.stderr = stream(b"start", b"end\xff", 100);
        let out = serde_json::to_value(shape(&o, &job(false), Deadline::Given)).unwrap();
        assert_eq!(
            out,
            json!({
                "success": false, "exit_code": null, "exit_signal": "KILL",
                "stdout": "out\n", "stderr": "start\n[... 100 bytes cut ...]\nend\u{fffd}",
                "stdout_cut_bytes": 0, "stderr_cut_bytes": 100,
                "stdout_total_bytes": 4, "stderr_total_bytes": 109,
                "timed_out": false, "idle_timed_out": false, "duration_ms": 12, "reconnected": false,
                "running": false, "job_id": "job-7",
                "next": "output was cut: ssh_job_output with job_id \"job-7\" pages through all of it (also the resource mcpssh://jobs/job-7/stdout)"
            })
        );
    }
}
