//! MCP citizenship: resources (the open sessions), prompts, and the Python server's polling
//! shutdown (MCP_SSH_POLL_INTERVAL × MCP_SSH_MISSED_POLLS_THRESHOLD of silence after a
//! first poll), which must never kill a client that does not poll.

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use mcpssh_testbed::rmcp::model::{
    GetPromptRequestParams, ReadResourceRequestParams, ResourceContents,
};
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn resources_list_the_open_sessions() {
    let h = Harness::start().await;
    let none = h.server.peer().list_all_resources().await.unwrap();
    assert!(none.is_empty(), "no session yet: {none:?}");
    let connected = h.ok("ssh_connect", json!({})).await;
    let resources = h.server.peer().list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1, "{resources:?}");
    let uri = resources[0].uri.clone();
    let read = h
        .server
        .peer()
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents expected: {read:?}");
    };
    let session: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        session["host_key_fingerprint"],
        connected["host_key_fingerprint"]
    );
    assert_eq!(session["state"], "open");
    assert!(!text.contains("BEGIN OPENSSH PRIVATE KEY"));
}

#[tokio::test]
async fn prompts_are_listed_and_rendered() {
    let h = Harness::start().await;
    let prompts = h.server.peer().list_all_prompts().await.unwrap();
    let names: Vec<_> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"diagnose_host") && names.contains(&"investigate_service"),
        "{names:?}"
    );
    let mut args = serde_json::Map::new();
    args.insert("service".into(), json!("nginx"));
    let rendered = h
        .server
        .peer()
        .get_prompt(GetPromptRequestParams::new("investigate_service").with_arguments(args))
        .await
        .unwrap();
    let text = serde_json::to_string(&rendered.messages).unwrap();
    assert!(
        text.contains("nginx") && text.contains("ssh_execute"),
        "{text}"
    );
    let missing = h
        .server
        .peer()
        .get_prompt(GetPromptRequestParams::new("investigate_service"))
        .await;
    assert!(missing.is_err(), "a missing argument is an error");
}

#[tokio::test]
async fn a_client_that_stops_polling_is_left_and_the_server_exits() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_POLL_INTERVAL", "1"),
            ("MCP_SSH_MISSED_POLLS_THRESHOLD", "2"),
        ],
    )
    .await;
    h.server.peer().list_all_resources().await.unwrap();
    let polled = Instant::now();
    let deadline = polled + Duration::from_secs(10);
    while h.server.is_running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!h.server.is_running(), "the server should have shut down");
    let after = polled.elapsed();
    assert!(
        after >= Duration::from_secs(2),
        "not before 2 intervals: {after:?}"
    );
}

#[tokio::test]
async fn a_client_that_never_polls_is_not_shut_down() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_POLL_INTERVAL", "1"),
            ("MCP_SSH_MISSED_POLLS_THRESHOLD", "1"),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(h.server.is_running());
    h.assert_still_serving().await;
}

#[tokio::test]
#[allow(deprecated)] // MCP logging is deprecated from 2026-07-28 on; 2025 clients use it.
async fn log_messages_reach_a_client_that_asks_for_them() {
    use mcpssh_testbed::rmcp::model::{
        LoggingLevel, LoggingMessageNotificationParam, SetLevelRequestParams,
    };
    let h = Harness::start().await;
    // Connecting logs "SSH session open"; the client has not asked for log messages yet.
    h.ok("ssh_execute", json!({"command": "true"})).await;
    assert!(
        h.server.log_messages().is_empty(),
        "nothing before logging/setLevel"
    );
    h.server
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await
        .unwrap();
    h.ok("ssh_disconnect", json!({})).await;
    h.ok("ssh_execute", json!({"command": "true"})).await;
    let session_opened = |m: &LoggingMessageNotificationParam| {
        serde_json::to_string(m)
            .unwrap()
            .contains("SSH session open")
    };
    let logs = h
        .server
        .log_messages_until(Duration::from_secs(5), |logs| {
            logs.iter().any(session_opened)
        })
        .await
        .unwrap();
    let text = serde_json::to_string(&logs).unwrap();
    assert!(text.contains("SSH session open"), "{text}");
    assert!(!text.contains("BEGIN OPENSSH"), "no secrets");
    // The server sends its log in order and the harness records it in wire order: had the
    // first connect been sent, it would be here, before the second.
    assert_eq!(
        logs.iter().filter(|m| session_opened(m)).count(),
        1,
        "only the connect after logging/setLevel is sent: {text}"
    );
}

#[tokio::test]
async fn remote_files_are_readable_as_resources() {
    let h = Harness::start().await;
    let templates = h.server.peer().list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template.starts_with("sftp://")),
        "{templates:?}"
    );
    let dir = h.sshd.scratch_dir();
    std::fs::write(dir.join("hello.txt"), "hello resource\n").unwrap();
    std::fs::write(dir.join("bin.dat"), [0u8, 159, 146, 150, 255]).unwrap();
    let read = |path: String| {
        let peer = h.server.peer().clone();
        async move {
            peer.read_resource(ReadResourceRequestParams::new(format!("sftp://_{path}")))
                .await
        }
    };
    let text = read(dir.join("hello.txt").display().to_string())
        .await
        .unwrap();
    match &text.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => assert_eq!(text, "hello resource\n"),
        other => panic!("text expected: {other:?}"),
    }
    let blob = read(dir.join("bin.dat").display().to_string())
        .await
        .unwrap();
    match &blob.contents[0] {
        ResourceContents::BlobResourceContents { blob, .. } => assert_eq!(blob, "AJ+Slv8="),
        other => panic!("blob expected: {other:?}"),
    }
    assert!(
        read(dir.join("missing").display().to_string())
            .await
            .is_err()
    );
    h.assert_still_serving().await;
}
