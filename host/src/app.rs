//! Putting the host together: settings → session pool → wasm runtime → tool registry,
//! and calling one tool directly (`mcpssh call`). Serving MCP over stdio belongs to the
//! MCP layer (`mcp::serve_stdio`); this module knows nothing of MCP.

use std::sync::Arc;

use anyhow::Result;

use crate::config::Settings;
use crate::plugin::selection::BuiltinSelection;
use crate::plugin::watch::FolderSnapshot;
use crate::plugin::{CallContext, CallOutcome, HostServices, Registry, Runtime};
use crate::policy::{AuditLog, Gate, Policy};
use crate::sessions::SessionPool;

/// A ready host: every built-in component loaded.
pub struct App {
    pub settings: Arc<Settings>,
    pub pool: Arc<SessionPool>,
    pub runtime: Arc<Runtime>,
    pub registry: Arc<Registry>,
    /// The user's policy (`MCP_SSH_POLICY`) and audit log (`MCP_SSH_AUDIT_LOG`).
    pub policy: Arc<Policy>,
    pub audit: Option<Arc<AuditLog>>,
    /// What the tools folder held when it was loaded: reloading compares against this, so
    /// a component copied in right after start-up is not missed.
    pub tools_snapshot: FolderSnapshot,
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
