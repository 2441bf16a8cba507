//! Guest code run outside a call gets no host work, and nothing passes from one call to
//! the next: `describe()` at load time cannot run a command, and although each call's
//! instance is made ahead of it (after the component's previous call), every call gets
//! an instance no call used before (the `outside_call_probe` fixture counts its calls in
//! a static).

use std::time::Duration;

use serde_json::json;

use crate::custom_tools::{harness_with_tools, tools_dir};

const PROBE: &str = "outside_call_probe";

#[tokio::test]
async fn describe_gets_no_host_work() {
    let dir = tools_dir(&[("outside_call_probe.wasm", Some("grants = [\"exec\"]\n"))]);
    let h = harness_with_tools(dir.path(), &[]).await;
    let description = h.tools[PROBE]
        .description
        .as_deref()
        .unwrap_or_default()
        .to_string();
    assert!(
        description.contains("exec denied: host functions are only available during a tool call"),
        "describe() was not refused host work: {description}"
    );
    assert!(!description.contains("RAN"), "{description}");
    h.assert_still_serving().await;
}

#[tokio::test]
async fn every_call_gets_an_instance_no_call_used_before() {
    let dir = tools_dir(&[("outside_call_probe.wasm", Some("grants = [\"exec\"]\n"))]);
    let h = harness_with_tools(dir.path(), &[]).await;
    // One after another (the next instance is made ahead in the meantime) ...
    for i in 0..5 {
        let out = h.ok(PROBE, json!({})).await;
        assert_eq!(out["calls_in_this_instance"], 1, "call {i}: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and many at once.
    let calls = (0..20).map(|_| h.ok(PROBE, json!({})));
    for out in futures::future::join_all(calls).await {
        assert_eq!(out["calls_in_this_instance"], 1, "{out}");
    }
}
