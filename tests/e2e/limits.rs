//! Time and size limits: command timeout, client cancellation, output caps. In each case
//! the remote process must be gone afterwards and the server must keep serving.

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use serde_json::{Value, json};

use crate::common::Harness;

#[tokio::test]
async fn a_timeout_stops_the_remote_command() {
    let h = Harness::start().await;
    h.exec("true").await; // connect first: time only the command
    let started = Instant::now();
    let out = h
        .ok_seen_running(
            "ssh_execute",
            json!({"command": "sleep 31.7", "timeout_seconds": 1}),
            "sleep 31.7",
        )
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "a 1 s timeout took {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "returned before the timeout: {took:?}"
    );
    assert_eq!(out["timed_out"], true, "{out}");
    assert_eq!(out["success"], false);
    assert!(
        h.wait_gone("sleep 31.7", Duration::from_secs(3)).await,
        "the remote command outlived its timeout: {:?}",
        h.sshd.processes_matching("sleep 31.7")
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_timeout_keeps_the_output_so_far() {
    let h = Harness::start().await;
    let out = h
        .ok_seen_running(
            "ssh_execute",
            json!({"command": "echo before; sleep 32.3; echo after", "timeout_seconds": 1.5}),
            "sleep 32.3",
        )
        .await;
    assert_eq!(out["timed_out"], true, "{out}");
    assert_eq!(out["stdout"], "before\n", "{out}");
    assert!(h.wait_gone("sleep 32.3", Duration::from_secs(3)).await);
}

#[tokio::test]
async fn the_configured_default_timeout_applies() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_COMMAND_TIMEOUT", "1")]).await;
    let started = Instant::now();
    let out = h
        .ok_seen_running(
            "ssh_execute",
            json!({"command": "sleep 33.3"}),
            "sleep 33.3",
        )
        .await;
    assert_eq!(out["timed_out"], true, "{out}");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(h.wait_gone("sleep 33.3", Duration::from_secs(3)).await);
}

#[tokio::test]
async fn cancelling_a_call_stops_the_remote_command() {
    let h = Harness::start().await;
    h.exec("true").await;
    let call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 34.9"}))
        .await
        .unwrap();
    assert!(
        h.wait_present("sleep 34.9", Duration::from_secs(10)).await,
        "the command never started on the server"
    );
    call.cancel(Some("the test cancels".into())).await.unwrap();
    assert!(
        h.wait_gone("sleep 34.9", Duration::from_secs(5)).await,
        "the remote command survived the cancellation: {:?}",
        h.sshd.processes_matching("sleep 34.9")
    );
    h.assert_still_serving().await;
    // And the session is still healthy for more than one call.
    h.assert_still_serving().await;
}

/// What `seq 1 N` prints.
fn seq(n: u32) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// Checks `stream` of an `ssh_execute` result cut under a `cap` of bytes per stream,
/// measured on the text itself: the beginning and the end of `full` (what the command
/// printed) joined by the cut marker, kept + cut = all of it, the kept part within the cap
/// (and at least half of it). Returns the bytes kept.
#[track_caller]
fn assert_capped(out: &Value, stream: &str, full: &str, cap: usize) -> usize {
    let text = out[stream].as_str().unwrap();
    assert_eq!(
        out[format!("{stream}_total_bytes")],
        full.len() as u64,
        "{stream}: every byte is counted"
    );
    let cut = out[format!("{stream}_cut_bytes")].as_u64().unwrap();
    let marker = format!("\n[... {cut} bytes cut ...]\n");
    let (head, tail) = text
        .split_once(&marker)
        .unwrap_or_else(|| panic!("{stream}: no cut marker {marker:?}"));
    assert!(
        full.starts_with(head),
        "{stream}: the kept beginning is not how the output begins: {:?}",
        crate::common::shorten(head)
    );
    assert!(
        full.ends_with(tail),
        "{stream}: the kept end is not how the output ends: {:?}",
        crate::common::shorten(tail)
    );
    let kept = head.len() + tail.len();
    assert_eq!(
        kept as u64 + cut,
        full.len() as u64,
        "{stream}: kept + cut must be the total"
    );
    assert!(
        (cap / 2..=cap).contains(&kept),
        "{stream}: kept {kept} bytes with a {cap}-byte cap"
    );
    kept
}

#[tokio::test]
async fn huge_output_is_capped_with_head_and_tail() {
    let h = Harness::start().await;
    let started = Instant::now();
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "head -c 50000000 /dev/zero | tr '\\0' a; echo; echo THE-END", "timeout_seconds": 120}),
        )
        .await;
    eprintln!("50 MB of output took {:?}", started.elapsed());
    let total = 50_000_000u64 + 1 + 8;
    assert_eq!(out["stdout_total_bytes"], total, "every byte is counted");
    let full = format!("{}\nTHE-END\n", "a".repeat(50_000_000));
    // The default cap is 1 MiB per stream.
    let kept = assert_capped(&out, "stdout", &full, 1024 * 1024);
    assert!(kept > 1000, "kept almost nothing");
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("aaaa"));
    assert!(stdout.ends_with("aaa\nTHE-END\n"), "the tail is kept");
    assert_eq!(out["exit_code"], 0);
    h.assert_still_serving().await;
}

#[tokio::test]
async fn max_output_bytes_caps_each_stream() {
    let h = Harness::start().await;
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "seq 1 100000; seq 1 50000 >&2", "max_output_bytes": 2048}),
        )
        .await;
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("1\n2\n3\n"), "{stdout:.50}");
    assert!(stdout.ends_with("99999\n100000\n"), "the tail is kept");
    assert_eq!(out["stdout_total_bytes"], 588_895);
    assert_capped(&out, "stdout", &seq(100_000), 2048);

    let stderr = out["stderr"].as_str().unwrap();
    assert_eq!(out["stderr_total_bytes"], 288_894);
    assert!(stderr.starts_with("1\n2\n3\n"), "{stderr:.50}");
    assert!(stderr.ends_with("49999\n50000\n"));
    assert_capped(&out, "stderr", &seq(50_000), 2048);
}

#[tokio::test]
async fn the_configured_output_cap_applies() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_MAX_OUTPUT_BYTES", "4096")]).await;
    let out = h.exec("seq 1 100000").await;
    assert_capped(&out, "stdout", &seq(100_000), 4096);
    // Both streams: the cap applies to stderr too.
    let out = h.exec("seq 1 100000 >&2").await;
    assert_capped(&out, "stderr", &seq(100_000), 4096);
    let small = h.exec("echo small").await;
    assert_eq!(small["stdout"], "small\n");
}
