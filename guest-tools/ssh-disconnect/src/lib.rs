//! `ssh_disconnect`: close an SSH session. Imports only `mcpssh:plugin/session`.

use mcpssh_sdk::bindings::mcpssh::plugin::session::{self, SessionInfo};
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target};
use serde::{Deserialize, Serialize};

const DESCRIPTION: &str = "\
Close an SSH session (`host`, or the only open one); safe when none is open. Other tools \
reconnect on demand.";

/// Which session to close.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisconnectArgs {
    /// Session to close. Default: the only open one.
    pub host: Option<HostArg>,
}

/// What was closed.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct DisconnectOutput {
    /// Always true.
    pub success: bool,
    /// True when a session was open and has been closed.
    pub was_connected: bool,
    /// The name of the closed session, or null when none was open.
    pub session: Option<String>,
    /// The names of the sessions still open after this call.
    pub open_sessions: Vec<String>,
    /// A one-line summary.
    pub message: String,
}

/// The `ssh_disconnect` tool.
pub struct DisconnectTool;

impl Tool for DisconnectTool {
    type Args = DisconnectArgs;
    type Output = DisconnectOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_disconnect", DESCRIPTION)
            .title("Close an SSH session")
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: DisconnectArgs) -> Result<DisconnectOutput, ToolError> {
        let requested = target::session(args.host)?;
        let closed = session::disconnect(requested.as_deref())?;
        let open = session::open_sessions();
        Ok(shape(closed, requested.as_deref(), &open))
    }
}

/// Shapes the host's answer and the sessions open after it into the tool result.
/// `requested` is the session asked for, if any.
fn shape(
    closed: Option<SessionInfo>,
    requested: Option<&str>,
    open: &[SessionInfo],
) -> DisconnectOutput {
    let open_sessions: Vec<String> = open.iter().map(|s| s.name.clone()).collect();
    let still_open = if open_sessions.is_empty() {
        String::new()
    } else {
        format!(" Still open: {}.", open_sessions.join(", "))
    };
    match closed {
        Some(info) => DisconnectOutput {
            success: true,
            was_connected: true,
            message: format!(
                "Closed the SSH session `{}` to {}@{}:{}.{still_open}",
                info.name, info.username, info.host, info.port
            ),
            session: Some(info.name),
            open_sessions,
        },
        None => DisconnectOutput {
            success: true,
            was_connected: false,
            session: None,
            message: match requested {
                Some(name) => {
                    format!("No open SSH session matches `{name}`; nothing to close.{still_open}")
                }
                None => format!("No SSH session was open; nothing to close.{still_open}"),
            },
            open_sessions,
        },
    }
}

mcpssh_sdk::export_tools!(DisconnectTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::testing::session_info;
    use mcpssh_sdk::{check_tool, input_schema, output_schema, parse_args};
    use serde_json::{Value, json};

    fn error_of(args: &str) -> Value {
        mcpssh_sdk::testing::refusal::<DisconnectTool>(args)
    }

    #[test]
    fn descriptor_is_valid() {
        check_tool::<DisconnectTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<DisconnectTool>();
        assert_eq!(d.name, "ssh_disconnect");
        assert!(!d.read_only && !d.destructive && d.idempotent);
    }

    #[test]
    fn takes_an_optional_host() {
        let s = input_schema::<DisconnectArgs>();
        let props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(props, ["host"]);
        assert_eq!(s["properties"]["host"]["type"], "string");
        assert!(s.get("required").is_none());
        assert_eq!(s["additionalProperties"], false);

        let args: DisconnectArgs = parse_args("{}").unwrap();
        assert_eq!(target::session(args.host).unwrap(), None);
        let args: DisconnectArgs = parse_args(r#"{"host": "web1"}"#).unwrap();
        assert_eq!(target::session(args.host).unwrap().as_deref(), Some("web1"));

        for (args, field) in [
            (r#"{"name": "x"}"#, "name"),
            (r#"{"session": "x"}"#, "session"),
            (r#"{"host": ""}"#, "host"),
            (r#"{"host": "a b"}"#, "host"),
            (r#"{"host": false}"#, "host"),
        ] {
            let e = error_of(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], field, "{args}");
        }
    }

    #[test]
    fn output_schema_lists_open_sessions() {
        let s = output_schema::<DisconnectOutput>();
        assert_eq!(
            s["required"],
            json!([
                "success",
                "was_connected",
                "session",
                "open_sessions",
                "message"
            ])
        );
        assert_eq!(s["properties"]["open_sessions"]["items"]["type"], "string");
    }

    #[test]
    fn shapes_a_closed_session() {
        let out = shape(Some(session_info("default")), None, &[]);
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"success": true, "was_connected": true, "session": "default",
                   "open_sessions": [],
                   "message": "Closed the SSH session `default` to deploy@example.org:22."})
        );
        let out = shape(
            Some(session_info("web1")),
            Some("web1"),
            &[session_info("db1"), session_info("db2")],
        );
        assert_eq!(out.session.as_deref(), Some("web1"));
        assert_eq!(out.open_sessions, ["db1", "db2"]);
        assert_eq!(
            out.message,
            "Closed the SSH session `web1` to deploy@example.org:22. Still open: db1, db2."
        );
    }

    #[test]
    fn shapes_nothing_open() {
        assert_eq!(
            serde_json::to_value(shape(None, None, &[])).unwrap(),
            json!({"success": true, "was_connected": false, "session": null,
                   "open_sessions": [],
                   "message": "No SSH session was open; nothing to close."})
        );
        let out = shape(None, Some("web9"), &[session_info("db1")]);
        assert!(!out.was_connected);
        assert_eq!(out.open_sessions, ["db1"]);
        assert_eq!(
            out.message,
            "No open SSH session matches `web9`; nothing to close. Still open: db1."
        );
    }
}
