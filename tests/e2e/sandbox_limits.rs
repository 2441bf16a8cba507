//! Hostile components against the sandbox's hang and exhaustion limits: a `describe()` that
//! never answers, a guest sleeping in WASI through a cancellation and past its limits,
//! floods of progress reports and log messages, a burst of parallel calls, several linear
//! memories and table growth. In every case the server must keep serving.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{bin, memory_kib};
use crate::custom_tools::{component, eventually, harness_with_tools, tools_dir};
use crate::generated_components::{Attack, hostile_component};

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

/// Slow components are described at the same time, so together they cost the load-time
/// limit once, not once each: every slow `describe()` has started before the first one
/// ends (given up on). The quick component beside them loads all the same.
#[tokio::test]
async fn slow_components_are_described_at_the_same_time() {
    let dir = tools_dir(&[("trap_tool.wasm", None)]);
    let slow = ["slow_a.wasm", "slow_b.wasm", "slow_c.wasm"];
    for name in slow {
        std::fs::copy(component("slow_describe.wasm"), dir.path().join(name)).unwrap();
    }
    let h = harness_with_tools(
        dir.path(),
        &[NO_CPU_LIMIT, ("MCP_SSH_TOOL_LOAD_TIMEOUT", "2")],
    )
    .await;
    let refusals = || h.server.stderr().matches("custom tool not loaded").count();
    assert!(
        eventually(Duration::from_secs(60), async || refusals() >= slow.len()).await,
        "{} of {} slow components reported",
        refusals(),
        slow.len()
    );
    let log = h.server.stderr();
    let first_end = log
        .lines()
        .position(|l| l.contains("describe() ended") && l.contains("slow_"))
        .expect("no slow describe() ended");
    let started_before: Vec<&str> = log
        .lines()
        .take(first_end)
        .filter(|l| l.contains("describing the component") && l.contains("slow_"))
        .collect();
    assert_eq!(
        started_before.len(),
        slow.len(),
        "the slow components were described one after another:\n{log}"
    );
    assert!(
        eventually(Duration::from_secs(30), async || h
            .server
            .stderr()
            .contains("custom tool loaded"))
        .await
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

/// How much more memory than at the start the server may ever hold during a flood.
const FLOOD_GROWTH_BOUND_KIB: u64 = 256 * 1024;

#[tokio::test]
#[allow(deprecated)] // MCP logging is deprecated from 2026-07-28 on; 2025 clients use it.
async fn floods_of_progress_and_log_messages_do_not_grow_the_server() {
    use mcpssh_testbed::rmcp::model::{LoggingLevel, SetLevelRequestParams};
    let dir = tools_dir(&[("flood_tool.wasm", Some("grants = [\"host-log\"]\n"))]);
    let mut h = harness_with_tools(dir.path(), &[NO_CPU_LIMIT]).await;
    h.server.set_call_timeout(Duration::from_secs(170));
    h.server
        .peer()
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await
        .unwrap();
    let pid = h.server.pid().unwrap();
    let before = memory_kib(pid, "VmRSS");
    for (kind, calls, message_bytes) in [
        ("complete", 10_000, 65_536),
        ("progress", 10_000, 65_536),
        ("log", 100_000, 8_192),
    ] {
        let call = h
            .server
            .start_call(
                "flood",
                json!({"kind": kind, "calls": calls, "message_bytes": message_bytes}),
            )
            .await
            .unwrap();
        let token = call.progress_token().clone();
        let result = call.wait().await.unwrap();
        assert!(!result.is_error.unwrap_or(false), "{kind}: {result:?}");
        let peak = memory_kib(pid, "VmHWM");
        assert!(
            peak.saturating_sub(before) < FLOOD_GROWTH_BOUND_KIB,
            "{kind}: the server grew from {before} KiB to a peak of {peak} KiB"
        );
        let forwarded = h.server.progress_for(&token);
        assert!(
            forwarded.len() < calls / 10,
            "{kind}: {} of {calls} progress reports were forwarded",
            forwarded.len()
        );
        assert!(
            forwarded
                .iter()
                .all(|p| p.message.as_ref().is_none_or(|m| m.len() <= 2048)),
            "{kind}: progress messages are capped"
        );
    }
    let logged = h.server.log_messages().len();
    assert!(
        logged < 10_000,
        "{logged} log notifications reached the client for 100000 guest log calls"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn calls_beyond_the_cap_wait_and_beyond_the_waiting_line_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness_with_tools(
        dir.path(),
        &[
            ("MCP_SSH_MAX_CONCURRENT_CALLS", "2"),
            ("MCP_SSH_MAX_QUEUED_CALLS", "1"),
        ],
    )
    .await;
    h.exec("true").await; // connect first
    let exec = h.name("ssh_execute");
    let first = h
        .server
        .start_call(&exec, json!({"command": "sleep 41.1"}))
        .await
        .unwrap();
    let second = h
        .server
        .start_call(&exec, json!({"command": "sleep 41.2"}))
        .await
        .unwrap();
    assert!(h.wait_present("sleep 41.1", Duration::from_secs(20)).await);
    assert!(h.wait_present("sleep 41.2", Duration::from_secs(20)).await);
    // Both slots are taken: the next call waits.
    let waiting = h
        .server
        .start_call(&exec, json!({"command": "echo waited"}))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(20), async || h
            .server
            .stderr()
            .contains("waiting for a free slot"))
        .await,
        "the third call does not wait"
    );
    // The waiting line is full: the next one is refused at once, naming the settings.
    let busy = h
        .tool_error("ssh_execute", json!({"command": "echo refused"}))
        .await;
    assert_eq!(busy["error_kind"], "busy", "{busy}");
    let message = busy["error"].as_str().unwrap();
    assert!(
        message.contains("MCP_SSH_MAX_CONCURRENT_CALLS")
            && message.contains("MCP_SSH_MAX_QUEUED_CALLS"),
        "{message}"
    );
    // A slot frees up: the waiting call runs.
    first.cancel(None).await.unwrap();
    let out = waiting.wait().await.unwrap();
    assert!(!out.is_error.unwrap_or(false), "{out:?}");
    second.cancel(None).await.unwrap();
    assert!(h.wait_gone("sleep 41.", Duration::from_secs(10)).await);
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_thousand_parallel_calls_are_capped_not_all_run() {
    const CALLS: usize = 1000;
    let dir = tools_dir(&[("sleep_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[NO_CPU_LIMIT]).await;
    let pid = h.server.pid().unwrap();
    let before = memory_kib(pid, "VmRSS");
    let mut calls = Vec::new();
    for _ in 0..CALLS {
        calls.push(
            h.server
                .start_call("sleep_forever", json!({}))
                .await
                .unwrap(),
        );
    }
    // The default cap: 64 running and 256 waiting; the rest are refused as busy.
    let refused = || {
        h.server
            .stderr()
            .lines()
            .filter(|l| l.contains("tool call refused"))
            .count()
    };
    let expected = CALLS - 64 - 256;
    assert!(
        eventually(Duration::from_secs(60), async || refused() >= expected).await,
        "{} of {CALLS} parallel calls were refused as busy, expected {expected}",
        refused()
    );
    let peak = memory_kib(pid, "VmHWM");
    eprintln!("{CALLS} parallel calls: {before} KiB before, peak {peak} KiB");
    for call in calls {
        call.cancel(None).await.unwrap();
    }
    assert_eq!(refused(), expected, "no more than the excess is refused");
    h.assert_still_serving().await;
}

/// A tools folder holding one generated component, `<tool>.wasm`.
fn generated_tools_dir(tool: &str, attack: &Attack) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(format!("{tool}.wasm")),
        hostile_component(tool, attack),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn several_memories_share_one_memory_limit() {
    // Twelve memories of 60 MiB each: every one fits a 64 MiB limit, all of them do not.
    let attack = Attack::ManyMemories {
        count: 12,
        pages: 960,
    };
    let dir = generated_tools_dir("many_memories", &attack);
    let h = harness_with_tools(dir.path(), &[]).await;
    let error = h.tool_error("many_memories", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("64 MiB"),
        "{error}"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn table_growth_counts_against_the_memory_limit() {
    // 32 million table elements: 256 MiB of host memory behind a 64 MiB limit.
    let attack = Attack::TableGrowth {
        elements: 4_000_000,
        times: 8,
    };
    let dir = generated_tools_dir("table_growth", &attack);
    let h = harness_with_tools(dir.path(), &[]).await;
    let error = h.tool_error("table_growth", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_TOOL_MEMORY_MB"),
        "{error}"
    );
    h.assert_still_serving().await;
}
