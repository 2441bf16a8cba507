//! Putting the host together: settings → session pool → wasm runtime → tool registry,
//! and the two ways to use it: serving MCP over stdio, or calling one tool directly.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::plugin::selection::BuiltinSelection;
use crate::plugin::watch::FolderSnapshot;
use crate::plugin::{CallContext, CallOutcome, HostServices, Registry, Runtime};
use crate::policy::{AuditLog, Gate, Policy};
use crate::mcp::server::McpSsh;
use crate::ssh::SessionPool;
use crate::mcp::watchdog::PollWatchdog;

/// A ready host: every built-in component loaded.
pub struct App {
    pub settings: Arc<Settings>,
    pub pool: Arc<SessionPool>,
    pub runtime: Arc<Runtime>,
    pub registry: Arc<Registry>,
    /// The user's policy (`MCP_SSH_POLICY`) and audit log (`MCP_SSH_AUDIT_LOG`).
    pub policy: Arc<Policy>,
    pub audit: Option<Arc<AuditLog>>,
    tools_snapshot: FolderSnapshot,
}

impl App {
    /// Validates the settings and loads the tools.
    pub async fn start(settings: Settings) -> Result<App> {
        settings.validate().map_err(anyhow::Error::msg)?;
        // A bad MCP_SSH_LOCAL_ROOT stops start-up with one clear line.
        let local = crate::local::LocalPolicy::from_settings(&settings)
            .map_err(|e| anyhow::Error::msg(e.message().to_string()))?;
        tracing::info!(roots = ?local.roots(), "local paths of transfers are confined to these roots");
        // A bad policy file or audit log stops start-up with one clear line.
        let policy = Arc::new(Policy::from_settings(&settings).map_err(anyhow::Error::msg)?);
        let audit = AuditLog::from_settings(&settings)
            .map_err(anyhow::Error::msg)?
            .map(Arc::new);
        if let Some(file) = &policy.source {
            tracing::info!(policy = %file.display(), "enforcing the policy file");
        }
        let selection = BuiltinSelection::of_embedded(settings.builtin_tools.as_deref())
            .map_err(anyhow::Error::msg)?;
        let settings = Arc::new(settings);
        let pool = Arc::new(SessionPool::new(settings.clone()));
        let jobs = Arc::new(crate::jobs::Jobs::new(settings.job_settings()));
        let services = Arc::new(HostServices {
            settings: settings.clone(),
            pool: pool.clone(),
            jobs: jobs.clone(),
        });
        let runtime = Arc::new(Runtime::new(services)?);
        let mut registry =
            Registry::load_builtins(runtime.clone(), &settings.tool_prefix, &selection).await?;
        // What the folder held when it was loaded: the reloader compares against this,
        // so a component copied in right after start-up is not missed.
        let mut tools_snapshot = FolderSnapshot::default();
        if let Some(dir) = settings.tools_dir() {
            tools_snapshot = FolderSnapshot::take(&dir);
            registry
                .load_folder(&runtime, &settings.tool_prefix, &dir)
                .await?;
        }
        registry.apply_policy(&policy, &settings.tool_prefix);
        let registry = Arc::new(registry);
        Ok(App {
            settings,
            pool,
            runtime,
            registry,
            policy,
            audit,
            tools_snapshot,
        })
    }

    /// Serves MCP on stdin/stdout until the client goes away or a signal arrives, then
    /// cancels in-flight calls and closes every SSH session.
    pub async fn serve_stdio(self) -> Result<()> {
        let shutdown = CancellationToken::new();
        let watchdog = Arc::new(PollWatchdog::new(
            Duration::from_secs(self.settings.poll_interval),
            self.settings.missed_polls_threshold,
        ));
        let server = McpSsh::new(
            self.runtime.clone(),
            self.registry.clone(),
            self.settings.clone(),
            self.pool.clone(),
            watchdog.clone(),
            shutdown.clone(),
        )
        .with_policy(self.policy.clone(), self.audit.clone());
        // When the client closes stdin, cancel running calls at once: rmcp would otherwise
        // wait for them (up to 5 s) before its serve loop returns, and clients kill a
        // server 2 s after closing its stdin.
        let (stdin, stdout) = rmcp::transport::stdio_pipes();
        let stdin = CancelOnEof {
            inner: stdin,
            on_eof: shutdown.clone(),
        };
        let running = server.clone().serve((stdin, stdout)).await?;
        let stop = running.cancellation_token();
        crate::mcp::client_log::attach(running.peer().clone());
        let calls = server.clone();
        let reload = self.settings.tools_dir().map(|dir| {
            let reloader = FolderReloader {
                dir,
                server,
                peer: running.peer().clone(),
                runtime: self.runtime.clone(),
                builtins: self.registry.builtins_only(),
                seen: self.tools_snapshot.clone(),
                prefix: self.settings.tool_prefix.clone(),
            };
            tokio::spawn(reloader.run(shutdown.clone()))
        });
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let quiet = CancellationToken::new();
        let watch = {
            let (watchdog, quiet) = (watchdog.clone(), quiet.clone());
            tokio::spawn(async move { watchdog.run(quiet).await })
        };
        let waiting = running.waiting();
        tokio::pin!(waiting);
        tokio::select! {
            r = &mut waiting => { tracing::info!(reason = ?r.ok(), "client closed the connection"); }
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); stop.cancel(); }
            _ = quiet.cancelled() => { stop.cancel(); }
            _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); stop.cancel(); }
        }
        shutdown.cancel();
        self.runtime.jobs().cancel_all(Duration::from_secs(3)).await;
        quiet.cancel();
        let _ = watch.await;
        if let Some(reload) = reload {
            let _ = reload.await;
        }
        // In-flight calls now stop: wait for them and for their clean-up (remote kills,
        // partial files removed), bounded, and not at all when nothing runs.
        let settle = async {
            calls.calls_finished().await;
            crate::cleanup::finish(Duration::from_secs(3)).await;
        };
        if tokio::time::timeout(Duration::from_secs(4), settle)
            .await
            .is_err()
        {
            tracing::warn!("calls still running at shutdown were abandoned");
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.close_all()).await;
        Ok(())
    }

    /// Runs one tool without an MCP client.
    pub async fn call(&self, public_name: &str, arguments: &str) -> Result<CallOutcome> {
        let entry = self.registry.get(public_name).ok_or_else(|| {
            let names: Vec<_> = self
                .registry
                .tools()
                .iter()
                .map(|t| t.public_name.as_str())
                .collect();
            anyhow::anyhow!(
                "unknown tool {public_name}; available: {}",
                names.join(", ")
            )
        })?;
        // No client to ask: what needs approval is refused (unless the policy allows it).
        let tool = public_name
            .strip_prefix(&self.settings.tool_prefix)
            .unwrap_or(public_name);
        let mut call = CallContext::detached();
        call.gate = Gate::new(self.policy.clone(), tool, None, call.cancel.clone(), false);
        if let Err(e) = call.gate.check_served().await {
            return Ok(CallOutcome::Failed {
                kind: e.kind(),
                message: e.message().to_string(),
            });
        }
        Ok(self
            .runtime
            .call(&entry.component, &entry.name, arguments, call)
            .await)
    }
}

/// Reloads the tools folder when its components or grant files change, and tells the
/// client (`notifications/tools/list_changed`). A broken component is reported and
/// skipped; the others, and the built-ins, keep working.
struct FolderReloader {
    dir: std::path::PathBuf,
    server: McpSsh,
    peer: rmcp::service::Peer<rmcp::RoleServer>,
    runtime: Arc<Runtime>,
    builtins: Registry,
    prefix: String,
    /// The folder as last loaded.
    seen: FolderSnapshot,
}

impl FolderReloader {
    async fn run(self, stop: CancellationToken) {
        let mut seen = self.seen.clone();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            let now = FolderSnapshot::take(&self.dir);
            if now == seen {
                continue;
            }
            // Let a copy in progress finish: reload only once the folder is stable.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if FolderSnapshot::take(&self.dir) != now {
                continue;
            }
            seen = now;
            let mut registry = self.builtins.builtins_only();
            if let Err(e) = registry
                .load_folder(&self.runtime, &self.prefix, &self.dir)
                .await
            {
                tracing::warn!("cannot reload the tools folder: {e:#}");
            }
            tracing::info!(
                tools = registry.tools().len(),
                "tools folder changed; tool list reloaded"
            );
            self.server.publish(Arc::new(registry));
            if let Err(e) = self.peer.notify_tool_list_changed().await {
                tracing::debug!("could not send tools/list_changed: {e}");
            }
        }
    }
}

/// An async reader that cancels a token when it reaches end of file.
struct CancelOnEof<R> {
    inner: R,
    on_eof: CancellationToken,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CancelOnEof<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &polled
            && buf.filled().len() == before
            && buf.remaining() > 0
        {
            tracing::info!("stdin closed: cancelling running calls");
            self.on_eof.cancel();
        }
        polled
    }
}
