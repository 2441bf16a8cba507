//! The MCP request handler: an rmcp `ServerHandler` that serves the registry's tools,
//! turns call outcomes into `structuredContent` results, forwards progress, wires
//! cancellation, asks the user for approvals (elicitation) and writes the audit line.
//! A remote file read as a resource acts on a host too, and gets the same call slot,
//! policy gate and audit line; resources, prompts and logging are otherwise answered by
//! their own modules.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::error::HostError;
use crate::mcp::call_slots::{Busy, CallSlots};
use crate::mcp::elicitation::ElicitationApprover;
use crate::mcp::progress::Forwarder;
use crate::mcp::resources::{self, remote_files};
use crate::mcp::watchdog::PollWatchdog;
use crate::plugin::{CallContext, CallOutcome, Registry, Runtime, ToolEntry};
use crate::policy::audit::Entry as AuditEntry;
use crate::policy::{AuditLog, Gate, Policy};
use crate::sessions::SessionPool;

/// The tools being served: a registry and its MCP descriptions, replaced as a whole when
/// the tools folder changes.
struct Published {
    registry: Arc<Registry>,
    tools: Vec<Tool>,
}

impl Published {
    fn new(registry: Arc<Registry>) -> Arc<Published> {
        let tools = registry.tools().iter().map(mcp_tool).collect();
        Arc::new(Published { registry, tools })
    }
}

/// The MCP server: the tool registry and the runtime that executes calls.
#[derive(Clone)]
pub struct McpSsh {
    runtime: Arc<Runtime>,
    published: Arc<std::sync::RwLock<Arc<Published>>>,
    settings: Arc<Settings>,
    pool: Arc<SessionPool>,
    watchdog: Arc<PollWatchdog>,
    /// Cancelled at shutdown: every in-flight call is cancelled with it.
    shutdown: CancellationToken,
    /// The cap on calls running at once.
    slots: Arc<CallSlots>,
    /// The user's policy and audit log (see `policy`).
    policy: Arc<Policy>,
    audit: Option<Arc<AuditLog>>,
}

impl McpSsh {
    pub fn new(
        runtime: Arc<Runtime>,
        registry: Arc<Registry>,
        settings: Arc<Settings>,
        pool: Arc<SessionPool>,
        watchdog: Arc<PollWatchdog>,
        shutdown: CancellationToken,
    ) -> Self {
        McpSsh {
            runtime,
            published: Arc::new(std::sync::RwLock::new(Published::new(registry))),
            slots: Arc::new(CallSlots::new(
                settings.max_concurrent_calls,
                settings.max_queued_calls,
            )),
            settings,
            pool,
            watchdog,
            shutdown,
            policy: Arc::new(Policy::open()),
            audit: None,
        }
    }

    /// Enforces `policy` on every call and records every call in `audit`.
    pub fn with_policy(mut self, policy: Arc<Policy>, audit: Option<Arc<AuditLog>>) -> Self {
        self.policy = policy;
        self.audit = audit;
        self
    }
}

impl McpSsh {
    /// Serves `registry` from now on (calls in flight finish with the old one).
    pub fn publish(&self, registry: Arc<Registry>) {
        *self.published.write().unwrap() = Published::new(registry);
    }

    /// Waits until no tool call is running.
    pub async fn calls_finished(&self) {
        self.slots.idle().await;
    }

    fn current(&self) -> Arc<Published> {
        self.published.read().unwrap().clone()
    }

    /// A call slot for a request that acts on a host (a tool call or a remote file read).
    /// Refused at once when the server is busy, or as soon as the client cancels while
    /// waiting: `(error kind, message)`.
    async fn call_slot(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<OwnedSemaphorePermit, (&'static str, String)> {
        tokio::select! {
            slot = self.slots.acquire(&context.ct) => slot.map_err(|Busy(message)| ("busy", message)),
            _ = context.ct.cancelled() => Err((
                "cancelled",
                "the call was cancelled while it waited for a free slot".into(),
            )),
        }
    }

    /// The policy gate of one request made as `tool` (its name without the prefix): it
    /// asks the user through the client when a rule says so.
    fn gate(
        &self,
        tool: &str,
        context: &RequestContext<RoleServer>,
        cancel: &CancellationToken,
    ) -> Gate {
        Gate::new(
            self.policy.clone(),
            tool,
            Some(Arc::new(ElicitationApprover::new(context.peer.clone()))),
            cancel.clone(),
            self.audit.is_some(),
        )
    }

    /// Writes one request's line to the audit log, if there is one (`line` is made only
    /// then).
    fn audit(&self, line: impl FnOnce() -> AuditEntry) {
        if let Some(audit) = &self.audit {
            audit.write(line());
        }
    }

    /// Reads a remote file resource as the download of its start it is: it takes a call
    /// slot, the policy decides it as [`remote_files::POLICY_TOOL`] (caps included), a
    /// cancelled request stops it, and it is written to the audit log as `resources/read`.
    async fn read_remote_file(
        &self,
        uri: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<ResourceContents, McpError> {
        let _slot = self
            .call_slot(context)
            .await
            .map_err(|(_, message)| McpError::internal_error(message, None))?;
        let cancel = self.shutdown.child_token();
        let gate = self.gate(remote_files::POLICY_TOOL, context, &cancel);
        let started = std::time::Instant::now();
        let read = tokio::select! {
            read = remote_files::read(&self.pool, uri, &gate) => read,
            _ = context.ct.cancelled() => Err(HostError::Cancelled),
        };
        cancel.cancel();
        let summary = match &read {
            Ok(read) => json!({ "success": true, "bytes": read.bytes, "size": read.size }),
            Err(e) => runtime_failure(e.kind(), e.message()),
        };
        self.audit(|| AuditEntry {
            client: client_name(context),
            tool: "resources/read".into(),
            arguments: json!({ "uri": uri }),
            record: gate.record(),
            outcome: if read.is_err() { "error" } else { "success" },
            result: summary,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        resources::remote_file_contents(uri, read)
    }
}

/// The MCP description of a registry entry.
fn mcp_tool(entry: &ToolEntry) -> Tool {
    let spec = &entry.spec;
    let mut annotations = ToolAnnotations::new()
        .read_only(spec.read_only)
        .destructive(spec.destructive)
        .idempotent(spec.idempotent)
        .open_world(spec.open_world);
    annotations.title = spec.title.clone();
    let mut tool = Tool::new(
        entry.public_name.clone(),
        spec.description.clone(),
        Arc::new(spec.input_schema.clone()),
    )
    .with_annotations(annotations);
    if let Some(title) = &spec.title {
        tool = tool.with_title(title.clone());
    }
    if let Some(schema) = &spec.output_schema {
        tool = tool.with_raw_output_schema(Arc::new(schema.clone()));
    }
    tool
}

/// What of a call's result goes to the audit log. The host-key fields are the built-in
/// `ssh_connect`'s report of the session it opened: from any other tool they are dropped,
/// so a tool cannot write "new host key recorded" into the record.
fn audited_result(entry: &ToolEntry, result: Option<&serde_json::Value>) -> serde_json::Value {
    let mut result = result.cloned().unwrap_or_default();
    if entry.source != "builtin:ssh_connect"
        && let Some(fields) = result.as_object_mut()
    {
        fields.remove("host_key_fingerprint");
        fields.remove("new_host_key_recorded");
    }
    result
}

/// The name the client gave itself, for the audit log.
fn client_name(context: &RequestContext<RoleServer>) -> String {
    context
        .peer
        .peer_info()
        .map(|info| info.client_info.name.clone())
        .unwrap_or_default()
}

/// The structured error of a call the runtime failed.
fn runtime_failure(kind: &str, message: &str) -> serde_json::Value {
    json!({ "success": false, "error_kind": kind, "error": message })
}

impl ServerHandler for McpSsh {
    #[allow(deprecated)] // enable_logging: MCP logging, see `client_log`.
    fn get_info(&self) -> ServerConfig {
        let mut server_info =
            Implementation::new(self.settings.server_name.clone(), env!("CARGO_PKG_VERSION"));
        server_info.title = Some(self.settings.server_name.clone());
        server_info.description = Some("SSH command execution and SFTP file transfer; every tool a sandboxed WebAssembly component".into());
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_logging()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
            .with_server_info(server_info)
            .with_instructions(format!(
                "Run commands on remote machines over SSH with {p}ssh_execute (it connects on demand to the \
                 configured host; use {p}ssh_connect to pick another host). A non-zero exit code is reported \
                 in the result, not as an error.",
                p = self.settings.tool_prefix
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult {
            tools: self.current().tools.clone(),
            ..Default::default()
        })
    }

    #[allow(deprecated)] // MCP logging: see `client_log`.
    async fn set_level(
        &self,
        request: rmcp::model::SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        crate::mcp::client_log::set_level(request.level);
        Ok(())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.watchdog.poll();
        Ok(ListResourcesResult::with_all_items(
            resources::list(&self.pool).await,
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::ListResourceTemplatesResult, McpError> {
        Ok(rmcp::model::ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let contents = if remote_files::is_remote_file_uri(&request.uri) {
            self.read_remote_file(&request.uri, &context).await?
        } else {
            resources::read(&self.pool, self.runtime.jobs(), &request.uri).await?
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.watchdog.poll();
        Ok(ListPromptsResult::with_all_items(
            crate::mcp::prompts::list(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let arguments = request.arguments.unwrap_or_default();
        crate::mcp::prompts::render(&self.settings.tool_prefix, &request.name, &arguments)
            .map(Into::into)
            .map_err(|message| McpError::invalid_params(message, None))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.current()
            .tools
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let published = self.current();
        let Some(entry) = published.registry.get(&request.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool: {}; tools/list shows the available tools",
                    request.name
                ),
                None,
            ));
        };
        let _slot = match self.call_slot(&context).await {
            Ok(slot) => slot,
            Err((kind, message)) => {
                if kind == "busy" {
                    tracing::info!(tool = %entry.public_name, "tool call refused: {message}");
                }
                return Ok(
                    CallToolResult::structured_error(runtime_failure(kind, &message)).into(),
                );
            }
        };
        let argument_value = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let arguments = argument_value.to_string();
        // The call's token: cancelled by the client's notifications/cancelled or by shutdown.
        let cancel = self.shutdown.child_token();
        let progress = Forwarder::for_request(&context);
        let tool = entry
            .public_name
            .strip_prefix(&self.settings.tool_prefix)
            .unwrap_or(&entry.public_name);
        let gate = self.gate(tool, &context, &cancel);
        let call = CallContext {
            cancel: cancel.clone(),
            progress: progress.as_ref().map(Forwarder::sink),
            gate: gate.clone(),
            host_work_allowed: true,
        };
        let started = std::time::Instant::now();
        let served = gate.check_served().await;
        let run = async {
            match served {
                Ok(()) => {
                    self.runtime
                        .call(&entry.component, &entry.name, &arguments, call)
                        .await
                }
                Err(e) => CallOutcome::Failed {
                    kind: e.kind(),
                    message: e.message().to_string(),
                },
            }
        };
        tokio::pin!(run);
        let outcome = tokio::select! {
            outcome = &mut run => outcome,
            _ = context.ct.cancelled() => {
                // Let the call see the cancellation and clean up (kill the remote
                // command, remove partial files) before answering.
                cancel.cancel();
                run.await
            }
        };
        cancel.cancel();
        if let Some(progress) = progress {
            progress.finish().await;
        }
        let outcome_kind = match &outcome {
            CallOutcome::Success(_) => "success",
            CallOutcome::ToolError(_) => "tool-error",
            CallOutcome::Failed { kind, .. } => *kind,
        };
        let result = match outcome {
            CallOutcome::Success(value) => {
                let link = resources::jobs::link_for(self.runtime.jobs(), &value);
                let mut result = CallToolResult::structured(value);
                result.content.extend(link);
                result
            }
            CallOutcome::ToolError(value) => CallToolResult::structured_error(value),
            CallOutcome::Failed { kind, message } => {
                CallToolResult::structured_error(runtime_failure(kind, &message))
            }
        };
        self.audit(|| AuditEntry {
            client: client_name(&context),
            tool: entry.public_name.clone(),
            arguments: argument_value,
            record: gate.record(),
            outcome: if result.is_error.unwrap_or(false) {
                "error"
            } else {
                "success"
            },
            result: audited_result(entry, result.structured_content.as_ref()),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        tracing::info!(
            tool = %entry.public_name,
            ms = started.elapsed().as_millis() as u64,
            error = result.is_error.unwrap_or(false),
            outcome = outcome_kind,
            "tool call finished"
        );
        Ok(result.into())
    }
}
