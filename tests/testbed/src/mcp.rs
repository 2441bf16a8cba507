//! An MCP client (rmcp 3.11) driving the `mcpssh` binary over stdio, the way an AI
//! assistant's client would. Keeps the server's stderr (printed when a test panics),
//! the progress notifications per progress token and the log notifications.

// MCP log notifications are deprecated by SEP-2577, but servers still send them.
#![allow(deprecated)]

use std::{
    collections::HashMap,
    ffi::OsStr,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
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
    transport::TokioChildProcess,
};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::sshd::tail;

/// How long a call may take before the harness gives up on it (a hung server must fail
/// the test, not hang it).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(180);
/// Keep at most this much of the server's stderr.
const STDERR_KEEP: usize = 4 << 20;

type ProgressLog = Arc<Mutex<HashMap<ProgressToken, Vec<ProgressNotificationParam>>>>;

/// The client side handler: records what the server tells us.
#[derive(Clone, Default)]
struct Recorder {
    progress: ProgressLog,
    logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    cancelled: Arc<Mutex<Vec<CancelledNotificationParam>>>,
    tool_list_changes: Arc<std::sync::atomic::AtomicUsize>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tool_list_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress
            .lock()
            .unwrap()
            .entry(params.progress_token.clone())
            .or_default()
            .push(params);
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params);
    }

    async fn on_cancelled(
        &self,
        params: CancelledNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.cancelled.lock().unwrap().push(params);
    }
}

/// A running `mcpssh` with an initialised MCP client session.
pub struct McpServer {
    client: Option<RunningService<RoleClient, Recorder>>,
    recorder: Recorder,
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
        // If the runtime goes away before rmcp's own cleanup task runs, still kill it.
        cmd.kill_on_drop(true);
        let (transport, stderr_pipe) = TokioChildProcess::builder(cmd)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = transport.id();

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
        self.recorder.logs.lock().unwrap().clone()
    }

    /// Progress notifications received for `token` so far.
    pub fn progress_for(&self, token: &ProgressToken) -> Vec<ProgressNotificationParam> {
        self.recorder
            .progress
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .unwrap_or_default()
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

    /// `resources/list`, as a polling client (the seed's keep-alive) sends it. The inner
    /// result is the server's answer (a JSON-RPC error if it has no resources).
    pub async fn poll_resources(&self) -> Result<Result<(), ServiceError>> {
        let fut = self.client().peer().list_resources(None);
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(r) => Ok(r.map(|_| ())),
            Err(_) => Err(self.fail_msg("resources/list timed out")),
        }
    }

    /// `prompts/list`, the other keep-alive poll of the seed.
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
            progress: self.recorder.progress.clone(),
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

    /// Close the client's side (stdin) and wait for the server to exit (SIGTERM, then
    /// SIGKILL after a few seconds, as rmcp's child process transport does).
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(mut client) = self.client.take() {
            client
                .close_with_timeout(Duration::from_secs(10))
                .await
                .context("closing the MCP session")?;
        }
        Ok(())
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

/// A `tools/call` in flight.
pub struct PendingCall {
    handle: RequestHandle<RoleClient>,
    progress: ProgressLog,
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
        self.progress
            .lock()
            .unwrap()
            .get(&self.handle.progress_token)
            .cloned()
            .unwrap_or_default()
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
