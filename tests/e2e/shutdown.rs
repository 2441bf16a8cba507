//! Shutdown: closing stdin, SIGTERM and SIGINT stop the server promptly and the commands
//! it was running; the Python server's polling shutdown (MCP_SSH_POLL_INTERVAL ×
//! MCP_SSH_MISSED_POLLS_THRESHOLD of silence after a first poll) leaves a client that
//! stopped polling and never kills one that does not poll.

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use serde_json::json;

use crate::common::Harness;

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
