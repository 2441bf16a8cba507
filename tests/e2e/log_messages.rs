//! Log messages to the client (`logging/setLevel`, `notifications/message`): nothing before
//! the client asks, then the server's own events in order, with no secret in them.

use std::time::Duration;

use serde_json::json;

use crate::common::Harness;

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
