//! Reloading the tools folder while serving: when its components or grant files change
//! and the folder has settled, the registry is rebuilt from the built-ins and the folder,
//! published to the handler, and the client told (`notifications/tools/list_changed`).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::mcp::server::McpSsh;
use crate::plugin::watch::FolderSnapshot;
use crate::plugin::{Registry, Runtime};

/// Reloads the tools folder when its components or grant files change, and tells the
/// client (`notifications/tools/list_changed`). A broken component is reported and
/// skipped; the others, and the built-ins, keep working.
pub struct ToolsFolderReloader {
    dir: std::path::PathBuf,
    server: McpSsh,
    peer: rmcp::service::Peer<rmcp::RoleServer>,
    runtime: Arc<Runtime>,
    builtins: Registry,
    prefix: String,
    /// The folder as last loaded.
    seen: FolderSnapshot,
}

impl ToolsFolderReloader {
    /// Watches `dir`, the tools folder `app` loaded, for `server`, telling `peer`.
    pub fn new(
        app: &App,
        dir: std::path::PathBuf,
        server: McpSsh,
        peer: rmcp::service::Peer<rmcp::RoleServer>,
    ) -> Self {
        ToolsFolderReloader {
            dir,
            server,
            peer,
            runtime: app.runtime.clone(),
            builtins: app.registry.builtins_only(),
            seen: app.tools_snapshot.clone(),
            prefix: app.settings.tool_prefix.clone(),
        }
    }

    pub async fn run(self, stop: CancellationToken) {
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
