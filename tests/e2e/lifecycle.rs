//! Sessions over time: disconnect, reconnect after a dropped connection, shutdown, and
//! the server surviving a string of failures.

use std::time::{Duration, Instant};

use mcpssh_testbed::CallToolResultExt;
use serde_json::json;

use crate::common::{Harness, wait_gone};

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
    let h = Harness::start().await;
    h.exec("true").await;
    let pid = h.server.pid().unwrap();
    let call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 35.3"}))
        .await
        .unwrap();
    assert!(h.wait_present("sleep 35.3", Duration::from_secs(10)).await);
    drop(call);
    let Harness { sshd, server, .. } = h;
    let started = Instant::now();
    server.shutdown().await.unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "mcpssh still runs after its stdin closed"
    );
    eprintln!("shutdown took {:?}", started.elapsed());
    assert!(
        wait_gone(&sshd, "sleep 35.3", Duration::from_secs(5)).await,
        "a command outlived the server: {:?}",
        sshd.processes_matching("sleep 35.3")
    );
}

#[tokio::test]
async fn the_server_survives_a_string_of_failures() {
    let h = Harness::start().await;
    let _ = h.protocol_error("nope", json!({})).await;
    let _ = h.tool_error("ssh_execute", json!({})).await;
    let _ = h.tool_error("ssh_connect", json!({"port": 1})).await;
    let _ = h
        .ok(
            "ssh_execute",
            json!({"command": "sleep 36.1", "timeout_seconds": 0.5}),
        )
        .await;
    let call = h
        .server
        .start_call(&h.name("ssh_execute"), json!({"command": "sleep 36.2"}))
        .await
        .unwrap();
    h.wait_present("sleep 36.2", Duration::from_secs(10)).await;
    call.cancel(None).await.unwrap();
    let _ = h.exec("exit 255").await;
    let _ = h.exec("kill -KILL $$").await;
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
