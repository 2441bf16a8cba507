//! Open SSH sessions as resources: `mcpssh://sessions/{name}` lists each open session and
//! reads as its JSON description (state, host, user, host key fingerprint; no secret).

use rmcp::model::{Resource, ResourceContents};
use serde_json::json;

use crate::sessions::SessionPool;
use crate::ssh::SessionInfo;

/// The URI of a session's resource.
fn session_uri(name: &str) -> String {
    format!("mcpssh://sessions/{name}")
}

/// A session as JSON: state, host, user, fingerprint. No secret.
fn session_json(info: &SessionInfo) -> serde_json::Value {
    json!({
        "session": info.name,
        "state": "open",
        "host": info.host,
        "port": info.port,
        "username": info.username,
        "server_version": info.server_version,
        "host_key_algorithm": info.host_key_algorithm,
        "host_key_fingerprint": info.host_key_fingerprint,
        "connected_at": info.connected_at,
        "shell": {"family": info.shell.family.name(), "path": info.shell.path},
    })
}

/// One resource per open session.
pub async fn list(pool: &SessionPool) -> Vec<Resource> {
    pool.list()
        .await
        .iter()
        .map(|info| {
            Resource::new(
                session_uri(&info.name),
                format!("SSH session {}", info.name),
            )
            .with_description(format!(
                "Open SSH session to {}@{}:{} ({} {})",
                info.username,
                info.host,
                info.port,
                info.host_key_algorithm,
                info.host_key_fingerprint
            ))
            .with_mime_type("application/json")
        })
        .collect()
}

/// The JSON of the open session at `uri`, or none when no open session has that URI.
pub async fn read(pool: &SessionPool, uri: &str) -> Option<ResourceContents> {
    let sessions = pool.list().await;
    let info = sessions
        .iter()
        .find(|info| session_uri(&info.name) == uri)?;
    let text = serde_json::to_string_pretty(&session_json(info)).unwrap_or_default();
    let mut contents = ResourceContents::text(text, uri);
    if let ResourceContents::TextResourceContents { mime_type, .. } = &mut contents {
        *mime_type = Some("application/json".into());
    }
    Some(contents)
}
