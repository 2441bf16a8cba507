//! `initialize` and `tools/list`: names, prefix, schemas, annotations.

use mcpssh_testbed::{McpServer, Sshd};
use serde_json::{Value, json};

use crate::common::{Harness, assert_invalid_params, bin};

const BUILT_IN: [&str; 3] = ["ssh_connect", "ssh_execute", "ssh_disconnect"];

#[tokio::test]
async fn lists_the_ssh_tools_with_schemas_and_annotations() {
    let h = Harness::start().await;
    for name in BUILT_IN {
        let tool = h
            .tools
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {:?}", h.tools.keys()));
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 10),
            "{name} needs a description"
        );
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{name}"
        );
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no outputSchema"));
        assert_eq!(output.get("type"), Some(&json!("object")), "{name}");
        let annotations = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no annotations"));
        assert_eq!(
            annotations.open_world_hint,
            Some(true),
            "{name} reaches a remote host"
        );
        assert!(annotations.read_only_hint.is_some(), "{name}: readOnlyHint");
        assert!(
            annotations.destructive_hint.is_some(),
            "{name}: destructiveHint"
        );
        assert!(
            annotations.idempotent_hint.is_some(),
            "{name}: idempotentHint"
        );
    }

    let execute = &h.tools["ssh_execute"];
    let required = execute
        .input_schema
        .get("required")
        .cloned()
        .unwrap_or(Value::Null);
    assert!(
        required
            .as_array()
            .is_some_and(|r| r.contains(&json!("command"))),
        "ssh_execute must require `command`: {required}"
    );
    let props = execute.input_schema.get("properties").expect("properties");
    for arg in [
        "command",
        "timeout_seconds",
        "stdin",
        "env",
        "working_directory",
        "max_output_bytes",
        "pty",
    ] {
        assert!(props.get(arg).is_some(), "ssh_execute lacks argument {arg}");
    }
    let annotations = execute.annotations.as_ref().unwrap();
    assert_eq!(
        annotations.read_only_hint,
        Some(false),
        "a command can change anything"
    );
    assert_eq!(annotations.destructive_hint, Some(true));

    let connect_props = h.tools["ssh_connect"]
        .input_schema
        .get("properties")
        .cloned();
    for arg in ["hostname", "port", "username", "key_filename"] {
        assert!(
            connect_props.as_ref().and_then(|p| p.get(arg)).is_some(),
            "ssh_connect lacks argument {arg}"
        );
    }
}

#[tokio::test]
async fn every_tool_declares_schemas_and_honest_annotations() {
    let h = Harness::start().await;
    for (name, tool) in &h.tools {
        assert_eq!(
            tool.input_schema.get("type"),
            Some(&json!("object")),
            "{name}"
        );
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no outputSchema"));
        assert_eq!(output.get("type"), Some(&json!("object")), "{name}");
        assert!(tool.annotations.is_some(), "{name} has no annotations");
    }
    let hints = |name: &str| {
        let annotations = h
            .tools
            .get(name)
            .unwrap_or_else(|| panic!("the built-in {name} is not listed"))
            .annotations
            .clone()
            .unwrap_or_else(|| panic!("{name} has no annotations"));
        (annotations.read_only_hint, annotations.destructive_hint)
    };
    // The file tools (all built in): reading is read-only, removing and writing are not.
    for name in ["scp_listdir", "scp_disk_usage"] {
        let (read_only, _) = hints(name);
        assert_eq!(read_only, Some(true), "{name} only reads");
    }
    for name in ["scp_remove", "scp_upload", "scp_download"] {
        let (read_only, destructive) = hints(name);
        assert_eq!(read_only, Some(false), "{name} writes");
        assert_eq!(destructive, Some(true), "{name} can delete or replace data");
    }
}

#[tokio::test]
async fn the_default_server_name_is_ssh_server() {
    let h = Harness::start().await;
    assert_eq!(h.server.server_name().as_deref(), Some("SSH Server"));
    let info = h.server.server_info().expect("initialize result");
    assert!(info.capabilities.tools.is_some(), "tools capability");
}

#[tokio::test]
async fn server_name_and_tool_prefix_from_the_environment() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_TOOL_PREFIX", "srv1_"),
            ("MCP_SSH_SERVER_NAME", "Production Box"),
        ],
    )
    .await;
    assert_eq!(h.server.server_name().as_deref(), Some("Production Box"));
    for name in BUILT_IN {
        assert!(
            h.tools.contains_key(&format!("srv1_{name}")),
            "srv1_{name} missing from {:?}",
            h.tools.keys()
        );
    }
    assert!(
        h.tools.keys().all(|k| k.starts_with("srv1_")),
        "every tool is prefixed: {:?}",
        h.tools.keys()
    );
    // The prefixed tool works; the bare name is unknown.
    let out = h.exec("echo prefixed").await;
    assert_eq!(out["stdout"], "prefixed\n");
    let err = h
        .protocol_error("ssh_execute", json!({"command": "true"}))
        .await;
    assert_invalid_params(&err);
}

#[tokio::test]
async fn server_name_and_tool_prefix_from_flags() {
    let sshd = Sshd::start().unwrap();
    let server = McpServer::spawn_with_args(
        bin(),
        ["--server-name", "Flag Box", "--tool-prefix", "dev_"],
        sshd.mcp_env(),
    )
    .await
    .unwrap();
    assert_eq!(server.server_name().as_deref(), Some("Flag Box"));
    let names: Vec<String> = server
        .list_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    for name in BUILT_IN {
        assert!(names.contains(&format!("dev_{name}")), "{names:?}");
    }
}
