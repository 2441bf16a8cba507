//! An MCP client (rmcp 3.11) driving the `mcpssh` binary over stdio, the way an AI
//! assistant's client would. Keeps the server's stderr (printed when a test panics),
//! the progress notifications per progress token and the log notifications (recorded in
//! wire order by [`crate::transport`]), and the process itself, so that a test can close
//! its stdin by hand and watch it exit.

// MCP log notifications are deprecated by SEP-2577, but servers still send them.
#![allow(deprecated)]

use std::{
    ffi::OsStr,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use rmcp::{
    ClientHandler, RoleClient, ServiceError, ServiceExt,
    model::{
        CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotification,
        CancelledNotificationParam, ClientNotification, ClientRequest, ContentBlock,
        LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, RequestId,
        ServerPeerInfo, ServerResult, Tool,
    },
    service::{NotificationContext, PeerRequestOptions, RequestHandle, RunningService},
};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::sshd::tail;
use crate::transport::{Received, RecordingTransport, ServerStdin};

/// How long a call may take before the harness gives up on it (a hung server must fail
/// the test, not hang it).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(180);
/// Keep at most this much of the server's stderr.
const STDERR_KEEP: usize = 4 << 20;
/// How long [`McpServer::shutdown`] waits for the server to exit after closing its stdin.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client side handler: counts `notifications/tools/list_changed`. (Progress and log
/// notifications are recorded by the transport, in wire order.)
#[derive(Clone, Default)]
struct Recorder {
    tool_list_changes: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tool_list_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A running `mcpssh` with an initialised MCP client session.
pub struct McpServer {
    client: Option<RunningService<RoleClient, Recorder>>,
    recorder: Recorder,
    received: Received,
    /// The server process (killed when this is dropped).
    child: tokio::process::Child,
    stdin: ServerStdin,
    stderr: Arc<Mutex<String>>,
    pid: Option<u32>,
    call_timeout: Duration,
}

impl McpServer {
    /// Spawn `bin` with `envs` added to the environment, and initialise the MCP session.
    pub async fn spawn<K, V>(
        bin: impl AsRef<Path>,
        envs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<McpServer>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::spawn_with_args(bin, std::iter::empty::<&str>(), envs).await
    }

    /// Like [`McpServer::spawn`], with command line arguments.
    pub async fn spawn_with_args<A, K, V>(
        bin: impl AsRef<Path>,
        args: impl IntoIterator<Item = A>,
        envs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<McpServer>
    where
        A: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let bin = bin.as_ref();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args);
        // Nothing from the developer's own MCP_SSH_* settings may leak into a test.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MCP_SSH_") {
                cmd.env_remove(key);
            }
        }
        cmd.envs(envs);
        // A test that ends (or panics) without shutting the server down kills it.
        cmd.kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id();
        let stdin = ServerStdin::new(child.stdin.take().context("the server's stdin")?);
        let stdout = child.stdout.take().context("the server's stdout")?;
        let stderr_pipe = child.stderr.take();
        let received = Received::default();
        let transport = RecordingTransport::new(stdout, stdin.clone(), received.clone());

        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut pipe) = stderr_pipe {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match pipe.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut s = sink.lock().unwrap();
                            s.push_str(&String::from_utf8_lossy(&buf[..n]));
                            if s.len() > STDERR_KEEP {
                                let keep = tail(&s, STDERR_KEEP / 2).to_owned();
                                *s = keep;
                            }
                        }
                    }
                }
            });
        }

        let recorder = Recorder::default();
        let client =
            match tokio::time::timeout(Duration::from_secs(120), recorder.clone().serve(transport))
                .await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    bail!(
                        "MCP initialisation with {} failed: {e}\nserver stderr:\n{}",
                        bin.display(),
                        tail(&stderr.lock().unwrap(), 20_000)
                    );
                }
                Err(_) => bail!(
                    "MCP initialisation with {} timed out\nserver stderr:\n{}",
                    bin.display(),
                    tail(&stderr.lock().unwrap(), 20_000)
                ),
            };
        Ok(McpServer {
            client: Some(client),
            recorder,
            received,
            child,
            stdin,
            stderr,
            pid,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        })
    }

    fn client(&self) -> &RunningService<RoleClient, Recorder> {
        self.client.as_ref().expect("the MCP client is open")
    }

    /// The client's peer, for requests the harness has no helper for
    /// (resources, prompts).
    pub fn peer(&self) -> &rmcp::service::Peer<RoleClient> {
        self.client().peer()
    }

    /// How many `notifications/tools/list_changed` the server sent so far.
    pub fn tool_list_changes(&self) -> usize {
        self.recorder
            .tool_list_changes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Change how long a call may take before the harness fails it.
    pub fn set_call_timeout(&mut self, timeout: Duration) {
        self.call_timeout = timeout;
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// What the server said about itself in the `initialize` result.
    pub fn server_info(&self) -> Option<ServerPeerInfo> {
        self.client().peer().peer_info().map(|i| (*i).clone())
    }

    /// `serverInfo.name` from the `initialize` result.
    pub fn server_name(&self) -> Option<String> {
        self.server_info()
            .and_then(|i| i.server_info)
            .map(|i| i.name)
    }

    /// The server's stderr so far (its log).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Log notifications (`notifications/message`) received so far.
    pub fn log_messages(&self) -> Vec<LoggingMessageNotificationParam> {
        self.received.logs()
    }

    /// Log notifications once `done` holds for them, or an error (with what did arrive)
    /// after `timeout`. The server forwards log events from a task of its own, so they may
    /// arrive after the response of the call that caused them.
    pub async fn log_messages_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[LoggingMessageNotificationParam]) -> bool,
    ) -> Result<Vec<LoggingMessageNotificationParam>> {
        poll_until(timeout, || self.received.logs(), |logs| done(logs))
            .await
            .map_err(|logs| anyhow!("the awaited log notifications did not arrive: {logs:?}"))
    }

    /// Progress notifications received for `token` so far, in the order they arrived.
    pub fn progress_for(&self, token: &ProgressToken) -> Vec<ProgressNotificationParam> {
        self.received.progress_for(token)
    }

    /// Progress notifications for `token` once `done` holds for them, or an error (with what
    /// did arrive) after `timeout`. The server forwards progress from a task of its own, so
    /// the last report may arrive after the response.
    pub async fn progress_until(
        &self,
        token: &ProgressToken,
        timeout: Duration,
        done: impl Fn(&[ProgressNotificationParam]) -> bool,
    ) -> Result<Vec<ProgressNotificationParam>> {
        poll_until(timeout, || self.progress_for(token), |p| done(p))
            .await
            .map_err(|p| anyhow!("the awaited progress notifications did not arrive: {p:?}"))
    }

    /// Whether the transport to the server is still open.
    pub fn is_open(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| !c.peer().is_transport_closed())
    }

    /// Whether the server process is still running.
    pub fn is_running(&self) -> bool {
        match self.pid {
            Some(pid) => {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // A zombie (state Z) has exited.
                !stat.is_empty()
                    && stat
                        .rfind(')')
                        .and_then(|i| stat[i + 1..].split_whitespace().next())
                        != Some("Z")
            }
            None => false,
        }
    }

    /// `tools/list` (every page).
    pub async fn list_tools(&self) -> Result<Vec<Tool>> {
        let fut = self.client().peer().list_all_tools();
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(r) => r.map_err(|e| self.fail("tools/list", e)),
            Err(_) => Err(self.fail_msg("tools/list timed out")),
        }
    }

    /// `resources/list`, as a polling client (the Python server's keep-alive) sends it. The inner
    /// result is the server's answer (a JSON-RPC error if it has no resources).
    pub async fn poll_resources(&self) -> Result<Result<(), ServiceError>> {
        let fut = self.client().peer().list_resources(None);
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(r) => Ok(r.map(|_| ())),
            Err(_) => Err(self.fail_msg("resources/list timed out")),
        }
    }

    /// `prompts/list`, the other keep-alive poll of the Python server.
    pub async fn poll_prompts(&self) -> Result<Result<(), ServiceError>> {
        let fut = self.client().peer().list_prompts(None);
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(r) => Ok(r.map(|_| ())),
            Err(_) => Err(self.fail_msg("prompts/list timed out")),
        }
    }

    /// `tools/call` with a JSON object of arguments (or `Value::Null` for none). A tool
    /// error is an `Ok` result with `is_error`; a JSON-RPC error is an `Err`.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<CallToolResult> {
        self.call_tool_raw(name, arguments)
            .await?
            .map_err(|e| self.fail(&format!("tools/call {name}"), e))
    }

    /// Like [`McpServer::call_tool`], but hands back the protocol error itself (for tests
    /// that expect one). The outer `Err` is a harness failure (e.g. a timeout).
    pub async fn call_tool_raw(
        &self,
        name: &str,
        arguments: Value,
    ) -> Result<Result<CallToolResult, ServiceError>> {
        let call = self.start_call(name, arguments).await?;
        call.wait_raw().await
    }

    /// Send `tools/call` and return at once with a handle to await, watch the progress
    /// of, or cancel the call. Every request rmcp 3.11 sends carries a progress token;
    /// the handle's [`PendingCall::progress_token`] is the one for this call.
    pub async fn start_call(&self, name: &str, arguments: Value) -> Result<PendingCall> {
        let mut params = CallToolRequestParams::new(name.to_owned());
        match arguments {
            Value::Null => {}
            Value::Object(map) => params = params.with_arguments(map),
            other => bail!("tool arguments must be an object, not {other}"),
        }
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = self
            .client()
            .peer()
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.fail(&format!("sending tools/call {name}"), e))?;
        Ok(PendingCall {
            handle,
            received: self.received.clone(),
            stderr: self.stderr.clone(),
            timeout: self.call_timeout,
            name: name.to_owned(),
        })
    }

    /// Send `notifications/cancelled` for a request id (see also [`PendingCall::cancel`]).
    pub async fn send_cancel(&self, request_id: RequestId, reason: Option<String>) -> Result<()> {
        let notification =
            CancelledNotification::new(CancelledNotificationParam::new(Some(request_id), reason));
        self.client()
            .peer()
            .send_notification(ClientNotification::CancelledNotification(notification))
            .await
            .map_err(|e| self.fail("sending notifications/cancelled", e))
    }

    /// Close the server's stdin, nothing else (no signal, no MCP message), as a client
    /// that goes away does, and wait up to `timeout` for the process to exit. Returns its
    /// exit status and how long after the close it exited; an error if it still runs then
    /// (it is killed when the `McpServer` is dropped).
    pub async fn close_stdin_and_wait(
        &mut self,
        timeout: Duration,
    ) -> Result<(ExitStatus, Duration)> {
        self.stdin.close();
        let closed = Instant::now();
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok((status.context("waiting for the server")?, closed.elapsed())),
            Err(_) => Err(self.fail_msg(&format!(
                "the server still runs {timeout:?} after its stdin closed"
            ))),
        }
    }

    /// Close the server's stdin and wait for it to exit; kill it (and fail) if it does not
    /// within a few seconds.
    pub async fn shutdown(mut self) -> Result<()> {
        let result = self.close_stdin_and_wait(SHUTDOWN_TIMEOUT).await;
        if result.is_err() {
            let _ = self.child.kill().await;
        }
        if let Some(client) = self.client.take() {
            let _ = client.cancel().await;
        }
        result.map(|_| ())
    }

    fn fail(&self, what: &str, e: ServiceError) -> anyhow::Error {
        self.fail_msg(&format!("{what}: {e}"))
    }

    fn fail_msg(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "{what}\nserver stderr (tail):\n{}",
            tail(&self.stderr(), 8_000)
        )
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- mcpssh stderr (pid {:?}) ----\n{}\n---- end of mcpssh stderr ----",
                self.pid,
                tail(&self.stderr(), 40_000)
            );
        }
    }
}

/// Calls `read` until `done` holds for what it returns (`Ok`), or `timeout` passes (`Err`
/// with the last value).
async fn poll_until<T>(
    timeout: Duration,
    read: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> Result<T, T> {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read();
        if done(&value) {
            return Ok(value);
        }
        if Instant::now() > deadline {
            return Err(value);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `tools/call` in flight.
pub struct PendingCall {
    handle: RequestHandle<RoleClient>,
    received: Received,
    stderr: Arc<Mutex<String>>,
    timeout: Duration,
    name: String,
}

impl PendingCall {
    /// The JSON-RPC id of the request.
    pub fn request_id(&self) -> &RequestId {
        &self.handle.id
    }

    /// The progress token sent in the request's `_meta`.
    pub fn progress_token(&self) -> &ProgressToken {
        &self.handle.progress_token
    }

    /// Progress notifications received for this call so far.
    pub fn progress(&self) -> Vec<ProgressNotificationParam> {
        self.received.progress_for(&self.handle.progress_token)
    }

    /// Send `notifications/cancelled` for this call. The server should then stop the work
    /// and send no response.
    pub async fn cancel(self, reason: Option<String>) -> Result<()> {
        self.handle
            .cancel(reason)
            .await
            .map_err(|e| anyhow!("sending notifications/cancelled: {e}"))
    }

    /// Wait for the result. A JSON-RPC error is an `Err`.
    pub async fn wait(self) -> Result<CallToolResult> {
        let name = self.name.clone();
        let stderr = self.stderr.clone();
        self.wait_raw().await?.map_err(|e| {
            anyhow!(
                "tools/call {name}: {e}\nserver stderr (tail):\n{}",
                tail(&stderr.lock().unwrap(), 8_000)
            )
        })
    }

    /// Wait for the result, handing back a protocol error as the inner `Err`.
    pub async fn wait_raw(self) -> Result<Result<CallToolResult, ServiceError>> {
        let name = self.name.clone();
        let timeout = self.timeout;
        let stderr = self.stderr.clone();
        let response = match tokio::time::timeout(timeout, self.handle.await_response()).await {
            Ok(r) => r,
            Err(_) => bail!(
                "tools/call {name} got no answer within {timeout:?}\nserver stderr (tail):\n{}",
                tail(&stderr.lock().unwrap(), 8_000)
            ),
        };
        Ok(match response {
            Ok(ServerResult::CallToolResult(result)) => Ok(result),
            Ok(other) => {
                // The untagged union can mistake an odd but valid result for another
                // variant: go through JSON.
                let json = serde_json::to_value(&other)?;
                Ok(serde_json::from_value(json.clone()).with_context(|| {
                    format!("tools/call {name} answered with something else: {json}")
                })?)
            }
            Err(e) => Err(e),
        })
    }
}

/// Convenient views of a tool result.
pub trait CallToolResultExt {
    /// `isError`, false when absent.
    fn is_error(&self) -> bool;
    /// All text content blocks, joined by newlines.
    fn text(&self) -> String;
    /// `structuredContent`, or `Value::Null`.
    fn structured(&self) -> Value;
    /// `structuredContent`, falling back to the text parsed as JSON.
    fn json(&self) -> Value;
    /// One-line summary for messages.
    fn summary(&self) -> String;
}

impl CallToolResultExt for CallToolResult {
    fn is_error(&self) -> bool {
        self.is_error.unwrap_or(false)
    }

    fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|c| match c {
                ContentBlock::Text(t) => Some(t.text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn structured(&self) -> Value {
        self.structured_content.clone().unwrap_or(Value::Null)
    }

    fn json(&self) -> Value {
        match &self.structured_content {
            Some(v) => v.clone(),
            None => serde_json::from_str(&self.text()).unwrap_or(Value::Null),
        }
    }

    fn summary(&self) -> String {
        format!(
            "isError={} structured={} text={}",
            self.is_error(),
            self.structured(),
            tail(&self.text(), 2000)
        )
    }
}
