//! Sessions over time: disconnect, reconnect after a dropped connection, shutdown, and
//! the server surviving a string of failures.

use std::time::{Duration, Instant};

use mcpssh_testbed::CallToolResultExt;
use serde_json::json;

use crate::common::{Harness, assert_invalid_argument, assert_invalid_params};

#[tokio::test]
async fn disconnect_reports_whether_a_session_was_open() {
    let h = Harness::start().await;
    let first = h.ok("ssh_disconnect", json!({})).await;
    assert_eq!(first["success"], true);
    assert_eq!(first["was_connected"], false, "{first}");
    assert_eq!(first["session"], json!(null));

    h.ok("ssh_connect", json!({})).await;
    assert_eq!(h.sshd.count_sessions(), 1);
    let bye = h.ok("ssh_disconnect", json!({})).await;
    assert_eq!(bye["was_connected"], true, "{bye}");
    assert!(
        bye["session"].as_str().is_some_and(|s| !s.is_empty()),
        "{bye}"
    );
    assert!(bye["message"].as_str().is_some_and(|m| !m.is_empty()));

    // The connection is really closed on the server side.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sshd.count_sessions() > 0 {
        assert!(Instant::now() < deadline, "sshd still has the connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = h.ok("ssh_disconnect", json!({})).await;
    assert_eq!(again["was_connected"], false, "{again}");

    // A command after a disconnect connects again.
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_dropped_connection_is_reopened() {
    let h = Harness::start().await;
    h.exec("true").await;
    // Kill the server side of the connection (as a reboot or network drop would).
    for pid in h.sshd.descendants() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sshd.count_sessions() > 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = h.exec("echo back").await;
    assert_eq!(out["stdout"], "back\n", "{out}");
}

#[tokio::test]
async fn closing_stdin_shuts_the_server_down_and_stops_running_commands() {
    let mut h = Harness::start().await;
    h.exec("true").await;
    let _call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 35.3"}))
        .await
        .unwrap();
    assert!(
        h.wait_present("sleep 35.3", Duration::from_secs(10)).await,
        "the command never started on the server"
    );
    // Only stdin closes: no signal, no MCP message (rmcp's own shutdown would SIGTERM, then
    // SIGKILL, a server that ignored end of file).
    let (status, took) = h
        .server
        .close_stdin_and_wait(Duration::from_secs(10))
        .await
        .unwrap();
    eprintln!("mcpssh exited {took:?} after its stdin closed");
    assert!(status.success(), "exit status {status}");
    // A sanity bound, not a speed test: clients kill their server 2 to 3 s after closing its
    // stdin (the Python SDK at 2 s, rmcp at 3 s).
    assert!(
        took < Duration::from_millis(2500),
        "mcpssh exited only {took:?} after its stdin closed"
    );
    assert!(
        h.wait_gone("sleep 35.3", Duration::from_secs(5)).await,
        "a command outlived the server: {:?}",
        h.sshd.processes_matching("sleep 35.3")
    );
}

#[tokio::test]
async fn the_server_survives_a_string_of_failures() {
    let h = Harness::start().await;
    let unknown = h.protocol_error("nope", json!({})).await;
    assert_invalid_params(&unknown);
    let missing = h.tool_error("ssh_execute", json!({})).await;
    assert_invalid_argument(&missing, "command");
    let refused = h.tool_error("ssh_connect", json!({"port": 1})).await;
    assert_eq!(refused["error_kind"], "connection", "{refused}");
    let timed_out = h
        .call_seen_running(
            "ssh_execute",
            json!({"command": "sleep 36.1", "timeout_seconds": 0.5}),
            "sleep 36.1",
        )
        .await;
    assert_eq!(
        timed_out.structured()["timed_out"],
        true,
        "{}",
        timed_out.summary()
    );
    let call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 36.2"}))
        .await
        .unwrap();
    assert!(
        h.wait_present("sleep 36.2", Duration::from_secs(10)).await,
        "the command to cancel never started"
    );
    call.cancel(None).await.unwrap();
    let failed = h.exec("exit 255").await;
    assert_eq!(failed["exit_code"], 255, "{failed}");
    assert_eq!(failed["success"], false, "{failed}");
    let killed = h.exec("kill -KILL $$").await;
    assert_eq!(killed["exit_signal"], "KILL", "{killed}");
    assert_eq!(killed["exit_code"], json!(null), "{killed}");
    let big = h
        .ok(
            "ssh_execute",
            json!({"command": "head -c 3000000 /dev/zero", "max_output_bytes": 1024}),
        )
        .await;
    assert_eq!(big["stdout_total_bytes"], 3_000_000);
    h.ok("ssh_disconnect", json!({})).await;
    h.ok("ssh_disconnect", json!({})).await;
    h.assert_still_serving().await;
    assert!(h.wait_gone("sleep 36.", Duration::from_secs(5)).await);
    let r = h.call("ssh_execute", json!({"command": "echo fin"})).await;
    assert_eq!(r.structured()["stdout"], "fin\n");
}

/// SIGTERM (and SIGINT) stop the server cleanly: running commands are killed, and the
/// process is gone within 2 seconds.
#[tokio::test]
async fn sigterm_and_sigint_shut_down_promptly_and_stop_running_commands() {
    for (signal, marker) in [("-TERM", "sleep 35.7"), ("-INT", "sleep 35.9")] {
        let h = Harness::start().await;
        h.exec("true").await;
        let pid = h.server.pid().unwrap();
        let _call = h
            .server
            .start_call(&h.name("ssh_execute"), json!({ "command": marker }))
            .await
            .unwrap();
        assert!(h.wait_present(marker, Duration::from_secs(10)).await);
        let started = Instant::now();
        let status = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        while h.server.is_running() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        assert!(
            !h.server.is_running(),
            "{signal}: still running after {took:?}"
        );
        assert!(took < Duration::from_secs(2), "{signal}: took {took:?}");
        assert!(
            h.wait_gone(marker, Duration::from_secs(5)).await,
            "{signal}: a command outlived the server"
        );
    }
}

/// Bad configuration: a non-zero exit and exactly one clear line on stderr, nothing on
/// stdout (which belongs to MCP).
#[test]
fn bad_configuration_fails_with_one_clear_line() {
    for (var, value, expect) in [
        ("MCP_SSH_PORT", "notaport", "notaport"),
        ("MCP_SSH_COMMAND_TIMEOUT", "-5", "MCP_SSH_COMMAND_TIMEOUT"),
        ("MCP_SSH_TOOL_PREFIX", "bad prefix", "MCP_SSH_TOOL_PREFIX"),
    ] {
        let out = std::process::Command::new(crate::common::bin())
            .env(var, value)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(out.stdout.is_empty(), "{var}: stdout must stay clean");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{var}: {stderr}");
        assert!(
            stderr.starts_with("mcpssh: ") && stderr.contains(expect),
            "{var}: {stderr}"
        );
    }
}
