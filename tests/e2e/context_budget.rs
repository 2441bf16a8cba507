//! The context budget: every tool definition a client lists is read by the model on
//! every turn, so the model-facing part of `tools/list` (name, title, description, input
//! schema; output schemas are for validation and not counted) has a budget, and a user
//! can serve only the built-ins they need (`MCP_SSH_TOOLS`).

use std::collections::BTreeMap;

use mcpssh_testbed::Sshd;
use mcpssh_testbed::rmcp::model::Tool;

use crate::common::Harness;

/// Average tokens per tool of the default tool set.
const AVERAGE_TOKENS_PER_TOOL: usize = 250;
/// Tokens of the whole default tool list.
const TOTAL_TOKENS: usize = 4000;

/// What the model reads of one tool, in bytes: the compact JSON of its name, title,
/// description and input schema.
fn model_facing_bytes(tool: &Tool) -> usize {
    let facing = serde_json::json!({
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
    });
    serde_json::to_string(&facing).unwrap().len()
}

/// Tokens, estimated as bytes / 4 (rounded up), a common rule of thumb for English and JSON.
fn tokens(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

#[tokio::test]
async fn the_default_tool_list_stays_within_its_token_budget() {
    let h = Harness::start().await;
    let sizes: BTreeMap<String, usize> = h
        .tools
        .values()
        .map(|t| (t.name.to_string(), tokens(model_facing_bytes(t))))
        .collect();
    let total: usize = sizes.values().sum();
    for (name, size) in &sizes {
        println!("{name:16} {size:5} tokens");
    }
    println!("{:16} {total:5} tokens, {} tools", "total", sizes.len());
    assert_eq!(sizes.len(), 11, "the default tool set: {sizes:?}");
    assert!(
        total <= AVERAGE_TOKENS_PER_TOOL * sizes.len(),
        "the tools average {} tokens, over the budget of {AVERAGE_TOKENS_PER_TOOL}: {sizes:?}",
        total / sizes.len()
    );
    assert!(
        total <= TOTAL_TOKENS,
        "the tool list takes {total} tokens, over the budget of {TOTAL_TOKENS}: {sizes:?}"
    );
}

#[tokio::test]
async fn mcp_ssh_tools_serves_only_the_chosen_built_ins_and_groups() {
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[("MCP_SSH_TOOLS", "ssh_execute, scp_download")],
    )
    .await;
    let mut names: Vec<_> = h.tools.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["scp_download", "ssh_execute"]);
    let exec = h.exec("echo chosen").await;
    assert_eq!(exec["stdout"], "chosen\n");
    // A tool that is not served is unknown to the client.
    let err = h
        .protocol_error("scp_remove", serde_json::json!({"remote_path": "/tmp/x"}))
        .await;
    crate::common::assert_invalid_params(&err);

    let groups = Harness::start_with(
        Sshd::start().unwrap(),
        &[
            ("MCP_SSH_TOOLS", "sessions,files"),
            ("MCP_SSH_TOOL_PREFIX", "p_"),
        ],
    )
    .await;
    let mut names: Vec<_> = groups.tools.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "p_scp_disk_usage",
            "p_scp_download",
            "p_scp_listdir",
            "p_scp_remove",
            "p_scp_upload",
            "p_ssh_connect",
            "p_ssh_disconnect",
        ]
    );
}

#[tokio::test]
async fn an_unknown_tool_name_in_mcp_ssh_tools_stops_start_up_with_one_line() {
    let sshd = Sshd::start().unwrap();
    let stderr =
        crate::common::start_up_failure(&sshd, &[("MCP_SSH_TOOLS", "ssh_execute,ssh_exec")]).await;
    assert!(
        stderr.contains("MCP_SSH_TOOLS") && stderr.contains("ssh_exec") && stderr.contains("exec"),
        "the error names the setting, the unknown entry and what is known: {stderr}"
    );
}
