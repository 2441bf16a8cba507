//! What every end-to-end test uses: a fresh sshd, the real `mcpssh` binary behind an MCP
//! client, and assertions on the tool contract (docs/tool-contract.md).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use mcpssh_testbed::{
    CallToolResultExt, McpServer, Sshd,
    rmcp::{ServiceError, model::CallToolResult, model::Tool},
    schema,
};
use serde_json::{Value, json};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcpssh")
}

/// An sshd and an mcpssh pointed at it.
pub struct Harness {
    pub sshd: Sshd,
    pub server: McpServer,
    /// The tools by their public name (with the prefix).
    pub tools: HashMap<String, Tool>,
    /// The configured tool prefix.
    pub prefix: String,
}

impl Harness {
    /// A new sshd and mcpssh with the testbed's environment.
    pub async fn start() -> Harness {
        Self::start_with(Sshd::start().expect("starting sshd"), &[]).await
    }

    /// mcpssh against `sshd`, with `extra` environment variables on top of (or, with an
    /// empty value, removing) the testbed's.
    pub async fn start_with(sshd: Sshd, extra: &[(&str, &str)]) -> Harness {
        let mut env: HashMap<String, String> = sshd.mcp_env().into_iter().collect();
        for (k, v) in extra {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        let prefix = env.get("MCP_SSH_TOOL_PREFIX").cloned().unwrap_or_default();
        let server = McpServer::spawn(bin(), env).await.expect("starting mcpssh");
        let tools = server
            .list_tools()
            .await
            .expect("tools/list")
            .into_iter()
            .map(|t| (t.name.to_string(), t))
            .collect();
        Harness {
            sshd,
            server,
            tools,
            prefix,
        }
    }

    /// The public name of a built-in tool.
    pub fn name(&self, tool: &str) -> String {
        format!("{}{tool}", self.prefix)
    }

    /// `tools/call`; a protocol error fails the test.
    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        self.server
            .call_tool(&self.name(tool), args)
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e:#}"))
    }

    /// `tools/call` that must end in a JSON-RPC error; returns it.
    pub async fn protocol_error(&self, public_name: &str, args: Value) -> ServiceError {
        match self
            .server
            .call_tool_raw(public_name, args)
            .await
            .expect("the call got no answer")
        {
            Ok(result) => panic!(
                "expected a JSON-RPC error from {public_name}, got a result: {}",
                result.summary()
            ),
            Err(e) => e,
        }
    }

    /// A call that must succeed at the MCP level (`isError` false). Checks that the
    /// structured content fits the tool's output schema and that the text holds the same
    /// JSON. Returns the structured content.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let result = self.call(tool, args.clone()).await;
        self.expect_ok(tool, &args, &result)
    }

    /// [`Harness::ok`] for a call whose remote command matches `pattern`, which must show
    /// up on the server while the call runs (see [`Harness::call_seen_running`]).
    pub async fn ok_seen_running(&self, tool: &str, args: Value, pattern: &str) -> Value {
        let result = self.call_seen_running(tool, args.clone(), pattern).await;
        self.expect_ok(tool, &args, &result)
    }

    /// `isError` false, and the shape [`Harness::check_result_shape`] checks.
    fn expect_ok(&self, tool: &str, args: &Value, result: &CallToolResult) -> Value {
        assert!(
            !result.is_error(),
            "{tool} {args} failed: {}",
            result.summary()
        );
        self.check_result_shape(tool, result);
        result.structured()
    }

    /// Structured content present, text the same JSON, fits the output schema.
    pub fn check_result_shape(&self, tool: &str, result: &CallToolResult) {
        let value = result
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{tool}: no structuredContent: {}", result.summary()));
        let text: Value = serde_json::from_str(&result.text()).unwrap_or_else(|e| {
            panic!(
                "{tool}: the text content is not JSON ({e}): {}",
                result.text()
            )
        });
        assert_eq!(text, value, "{tool}: text and structuredContent differ");
        let public = self.name(tool);
        let tool_desc = self
            .tools
            .get(&public)
            .unwrap_or_else(|| panic!("{public} is not in tools/list"));
        let output_schema = tool_desc
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{public} has no outputSchema"));
        schema::assert_valid(&Value::Object((**output_schema).clone()), &value);
    }

    /// A call that must fail as a tool error (`isError` true) with the contract's error
    /// shape. Returns the structured error.
    pub async fn tool_error(&self, tool: &str, args: Value) -> Value {
        let result = self.call(tool, args.clone()).await;
        expect_tool_error(tool, &args, &result)
    }

    /// [`Harness::tool_error`] for a call whose remote command matches `pattern`, which must
    /// show up on the server while the call runs (see [`Harness::call_seen_running`]).
    pub async fn tool_error_seen_running(&self, tool: &str, args: Value, pattern: &str) -> Value {
        let result = self.call_seen_running(tool, args.clone(), pattern).await;
        expect_tool_error(tool, &args, &result)
    }

    /// `ssh_execute` of a command that must come back as a result (exit code aside).
    pub async fn exec(&self, command: &str) -> Value {
        self.ok("ssh_execute", json!({ "command": command })).await
    }

    /// The server still serves: a fresh command runs and answers.
    pub async fn assert_still_serving(&self) {
        assert!(self.server.is_running(), "mcpssh exited");
        let out = self.exec("echo still-here").await;
        assert_eq!(out["stdout"], "still-here\n", "{out}");
        assert_eq!(out["exit_code"], 0);
    }

    /// Wait (without blocking the runtime) until no process of the test user matches
    /// `pattern`. True when none is left within `timeout`.
    pub async fn wait_gone(&self, pattern: &str, timeout: Duration) -> bool {
        wait_gone(&self.sshd, pattern, timeout).await
    }

    /// `tools/call` whose remote command matches `pattern`: asserts that the command shows
    /// up on the server while the call runs (so that a later "gone" means stopped, not
    /// never started), then returns the result. A protocol error fails the test.
    pub async fn call_seen_running(
        &self,
        tool: &str,
        args: Value,
        pattern: &str,
    ) -> CallToolResult {
        let call = self
            .server
            .start_call(&self.name(tool), args.clone())
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e:#}"));
        assert!(
            self.wait_present(pattern, Duration::from_secs(10)).await,
            "`{pattern}` never ran on the server during {tool} {args}"
        );
        call.wait()
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e:#}"))
    }

    /// Wait until a process of the test user matches `pattern`.
    pub async fn wait_present(&self, pattern: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.sshd.processes_matching(pattern).is_empty() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Wait (async) until no process of the test user matches `pattern`.
pub async fn wait_gone(sshd: &Sshd, pattern: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if sshd.processes_matching(pattern).is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `isError` true, with the contract's error shape. Returns the structured error.
#[track_caller]
fn expect_tool_error(tool: &str, args: &Value, result: &CallToolResult) -> Value {
    assert!(
        result.is_error(),
        "{tool} {args} should have failed: {}",
        result.summary()
    );
    check_error_shape(result)
}

/// The contract's error shape: `success: false`, `error_kind`, `error`, the same JSON as
/// text. Returns the structured error.
#[track_caller]
pub fn check_error_shape(result: &CallToolResult) -> Value {
    let value = result.structured_content.clone().unwrap_or_else(|| {
        panic!(
            "a tool error without structuredContent: {}",
            result.summary()
        )
    });
    let text: Value = serde_json::from_str(&result.text())
        .unwrap_or_else(|e| panic!("the error text is not JSON ({e}): {}", result.text()));
    assert_eq!(text, value, "text and structuredContent differ");
    assert_eq!(value["success"], false, "{value}");
    assert!(
        value["error_kind"].as_str().is_some_and(|k| !k.is_empty()),
        "no error_kind: {value}"
    );
    assert!(
        value["error"].as_str().is_some_and(|m| m.len() > 5),
        "no error message: {value}"
    );
    value
}

/// An `invalid-argument` error naming `field`.
#[track_caller]
pub fn assert_invalid_argument(error: &Value, field: &str) {
    assert_eq!(error["error_kind"], "invalid-argument", "{error}");
    let named = error["field"].as_str().unwrap_or_default();
    assert!(
        named == field
            || named.starts_with(&format!("{field}."))
            || named.starts_with(&format!("{field}[")),
        "the error should name field `{field}`: {error}"
    );
}

/// A JSON-RPC "invalid params" error (-32602).
#[track_caller]
pub fn assert_invalid_params(err: &ServiceError) {
    match err {
        ServiceError::McpError(e) => assert_eq!(e.code.0, -32602, "{e:?}"),
        other => panic!("expected JSON-RPC error -32602, got: {other}"),
    }
}

/// The first and last 100 characters of `s`, for failure messages about long texts.
pub fn shorten(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 200 {
        return s.to_owned();
    }
    let head: String = chars[..100].iter().collect();
    let tail: String = chars[chars.len() - 100..].iter().collect();
    format!("{head}[...]{tail}")
}

/// Starts mcpssh with `sshd`'s environment plus `extra`, expecting start-up to fail:
/// returns its stderr, after checking that it exited non-zero within 30 s and wrote
/// nothing to stdout (which carries MCP messages only).
pub async fn start_up_failure(sshd: &mcpssh_testbed::Sshd, extra: &[(&str, &str)]) -> String {
    let mut env: HashMap<String, String> = sshd.mcp_env().into_iter().collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(bin())
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("mcpssh did not stop within 30 s")
    .expect("running mcpssh");
    assert!(!out.status.success(), "mcpssh started: {}", out.status);
    assert!(out.stdout.is_empty(), "stdout carries MCP messages only");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A memory figure of process `pid` from /proc/PID/status (`VmRSS`: now, `VmHWM`: the
/// peak so far), in KiB.
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The resident memory of process `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    memory_kib(pid, "VmRSS")
}
