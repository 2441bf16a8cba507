//! `ssh_disconnect`: close the SSH session. Imports only `mcpssh:plugin/session`.

use mcpssh_sdk::bindings::mcpssh::plugin::session::{self, SessionInfo};
use mcpssh_sdk::{JsonSchema, NoArgs, Tool, ToolError, ToolInfo};
use serde::Serialize;

const DESCRIPTION: &str = "\
Close the open SSH session, if any. Takes no arguments. Safe to call when nothing is open \
(`was_connected` is then false). Later calls to ssh_execute and the other SSH tools open the \
configured session again on demand, so disconnecting is only needed to drop a connection (for \
example before connecting elsewhere with ssh_connect, or after changing keys or the remote \
host's configuration).";

/// What was closed.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DisconnectOutput {
    /// Always true.
    pub success: bool,
    /// True when a session was open and has been closed.
    pub was_connected: bool,
    /// The name of the closed session, or null when none was open.
    pub session: Option<String>,
    /// A one-line summary.
    pub message: String,
}

/// The `ssh_disconnect` tool.
pub struct DisconnectTool;

impl Tool for DisconnectTool {
    type Args = NoArgs;
    type Output = DisconnectOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_disconnect", DESCRIPTION)
            .title("Close the SSH session")
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(true)
    }

    fn run(_: NoArgs) -> Result<DisconnectOutput, ToolError> {
        Ok(shape(session::disconnect(None)?))
    }
}

/// Shapes the host's answer into the tool result.
fn shape(closed: Option<SessionInfo>) -> DisconnectOutput {
    match closed {
        Some(info) => DisconnectOutput {
            success: true,
            was_connected: true,
            message: format!(
                "Closed the SSH session `{}` to {}@{}:{}.",
                info.name, info.username, info.host, info.port
            ),
            session: Some(info.name),
        },
        None => DisconnectOutput {
            success: true,
            was_connected: false,
            session: None,
            message: "No SSH session was open; nothing to close.".to_owned(),
        },
    }
}

mcpssh_sdk::export_tools!(DisconnectTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::{call_tool, check_tool, input_schema};
    use serde_json::{Value, json};

    #[test]
    fn descriptor_is_valid() {
        check_tool::<DisconnectTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<DisconnectTool>();
        assert_eq!(d.name, "ssh_disconnect");
        assert!(!d.read_only && !d.destructive && d.idempotent);
    }

    #[test]
    fn takes_no_arguments() {
        assert_eq!(
            input_schema::<NoArgs>(),
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        );
        let e: Value =
            serde_json::from_str(&call_tool::<DisconnectTool>(r#"{"name": "x"}"#).unwrap_err())
                .unwrap();
        assert_eq!(e["error_kind"], "invalid-argument");
        assert_eq!(e["field"], "name");
    }

    #[test]
    fn shapes_a_closed_session() {
        let out = shape(Some(SessionInfo {
            name: "default".into(),
            host: "example.org".into(),
            port: 22,
            username: "deploy".into(),
            server_version: "SSH-2.0-OpenSSH_9.2p1".into(),
            host_key_algorithm: "ssh-ed25519".into(),
            host_key_fingerprint: "SHA256:abc".into(),
            connected_at: 0,
        }));
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"success": true, "was_connected": true, "session": "default",
                   "message": "Closed the SSH session `default` to deploy@example.org:22."})
        );
    }

    #[test]
    fn shapes_nothing_open() {
        assert_eq!(
            serde_json::to_value(shape(None)).unwrap(),
            json!({"success": true, "was_connected": false, "session": null,
                   "message": "No SSH session was open; nothing to close."})
        );
    }
}
