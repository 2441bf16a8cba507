//! Hostile components against the sandbox's hang and exhaustion limits: a `describe()` that
//! never answers, and a guest sleeping in WASI through a cancellation and past its
//! limits. In every case the server must keep serving.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::bin;
use crate::custom_tools::{component, eventually, harness_with_tools, tools_dir};

/// `mcpssh tools list` with the tools folder `dir` and `env`; the listing, or a failure
/// when it does not finish within a generous bound.
fn tools_list(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(bin())
        .args(["tools", "list"])
        .env("MCP_SSH_TOOLS_DIR", dir)
        .env("MCP_SSH_CACHE_DIR", mcpssh_testbed::shared_cache_dir())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`mcpssh tools list` hung on a slow component:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A CPU budget so large that only the wall-clock limit under test can stop a guest.
const NO_CPU_LIMIT: (&str, &str) = ("MCP_SSH_TOOL_CPU_MS", "3600000");

#[test]
fn a_slow_describe_is_skipped_at_the_load_time_limit_and_named_by_tools_list() {
    let dir = tools_dir(&[("slow_describe.wasm", None), ("trap_tool.wasm", None)]);
    let listing = tools_list(
        dir.path(),
        &[NO_CPU_LIMIT, ("MCP_SSH_TOOL_LOAD_TIMEOUT", "2")],
    );
    let refused = listing
        .lines()
        .find(|l| l.starts_with("NOT LOADED") && l.contains("slow_describe.wasm"))
        .unwrap_or_else(|| panic!("the slow component is not reported: {listing}"));
    assert!(
        refused.contains("2 s") && refused.contains("MCP_SSH_TOOL_LOAD_TIMEOUT"),
        "the reason names the limit: {refused}"
    );
    assert!(
        listing.contains("trap_now"),
        "the other component loads: {listing}"
    );
    assert!(listing.contains("ssh_execute"), "{listing}");
}

#[tokio::test]
async fn start_up_answers_initialize_despite_a_slow_describe() {
    // Default limits: the sleeping describe() must not hold up `initialize`.
    let dir = tools_dir(&[("slow_describe.wasm", None), ("trap_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[]).await;
    assert!(!h.tools.contains_key("slow_describe"));
    assert!(
        h.tools.contains_key("trap_now"),
        "the other component serves"
    );
    assert!(
        h.server.stderr().contains("slow_describe.wasm"),
        "the log names the skipped component"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn the_reloader_skips_a_slow_describe_and_keeps_reloading() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness_with_tools(
        dir.path(),
        &[NO_CPU_LIMIT, ("MCP_SSH_TOOL_LOAD_TIMEOUT", "2")],
    )
    .await;
    std::fs::copy(
        component("slow_describe.wasm"),
        dir.path().join("slow_describe.wasm"),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(60), async || h
            .server
            .stderr()
            .contains("MCP_SSH_TOOL_LOAD_TIMEOUT"))
        .await,
        "the reload never reported the slow component"
    );
    // The reloader is not stuck: a component added afterwards is served.
    std::fs::copy(
        component("trap_tool.wasm"),
        dir.path().join("trap_tool.wasm"),
    )
    .unwrap();
    let listed = async || {
        h.server
            .list_tools()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == "trap_now")
    };
    assert!(
        eventually(Duration::from_secs(60), listed).await,
        "the reloader hangs"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_guest_sleeping_in_wasi_is_stopped_at_the_cpu_limit() {
    let dir = tools_dir(&[("sleep_tool.wasm", None)]);
    let mut h = harness_with_tools(dir.path(), &[("MCP_SSH_TOOL_CPU_MS", "500")]).await;
    h.server.set_call_timeout(Duration::from_secs(60));
    let error = h.tool_error("sleep_forever", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("500 ms"),
        "{error}"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_guest_sleeping_in_wasi_is_stopped_at_the_wall_clock_limit() {
    let dir = tools_dir(&[("sleep_tool.wasm", None)]);
    let mut h =
        harness_with_tools(dir.path(), &[NO_CPU_LIMIT, ("MCP_SSH_TOOL_TIMEOUT", "2")]).await;
    h.server.set_call_timeout(Duration::from_secs(60));
    let error = h.tool_error("sleep_forever", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_TOOL_TIMEOUT"),
        "{error}"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn cancelling_a_guest_sleeping_in_wasi_stops_it() {
    let dir = tools_dir(&[("sleep_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[NO_CPU_LIMIT]).await;
    let call = h
        .server
        .start_call("sleep_forever", json!({}))
        .await
        .unwrap();
    // Let the guest reach its sleep before cancelling.
    tokio::time::sleep(Duration::from_secs(1)).await;
    call.cancel(Some("the test cancels".into())).await.unwrap();
    let finished = async || {
        h.server
            .stderr()
            .lines()
            .any(|l| l.contains("tool call finished") && l.contains("sleep_forever"))
    };
    assert!(
        eventually(Duration::from_secs(30), finished).await,
        "the sleeping guest outlived its cancellation"
    );
    assert!(
        h.server
            .stderr()
            .lines()
            .any(|l| l.contains("tool call finished")
                && l.contains("sleep_forever")
                && l.contains("cancelled")),
        "the call ended as cancelled"
    );
    h.assert_still_serving().await;
}
