//! Reconnecting: a connection the server dropped is reopened; after an sshd restart the
//! next call reconnects and its result says so, once, for commands and transfers alike; a
//! frozen connection is noticed by keepalives and the next call reconnects instead of
//! hanging.

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use serde_json::json;

use crate::client_setup::{FROM_CONFIG_ONLY, NO_AGENT, empty_home, host_block, write_ssh_config};
use crate::common::Harness;

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
async fn a_restarted_sshd_is_reconnected_on_the_next_call() {
    let mut h = Harness::start().await;
    let first = h.exec("echo before").await;
    assert_eq!(first["stdout"], "before\n", "{first}");
    assert_eq!(first["reconnected"], false, "{first}");
    let port = h.sshd.port();
    h.sshd.restart().unwrap();
    assert_eq!(h.sshd.port(), port);
    let second = h.exec("echo after").await;
    assert_eq!(second["stdout"], "after\n", "{second}");
    assert_eq!(
        second["reconnected"], true,
        "the result says it reconnected: {second}"
    );
    let third = h.exec("true").await;
    assert_eq!(third["reconnected"], false, "said once: {third}");
    assert_eq!(h.sshd.count_sessions(), 1);

    // Down between two calls: the call fails as a connection error, and once the daemon is
    // back the next one works again.
    h.sshd.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = h
        .tool_error("ssh_execute", json!({"command": "true"}))
        .await;
    assert_eq!(err["error_kind"], "connection", "{err}");
    h.sshd.restart().unwrap();
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_transfer_after_a_restart_says_it_reconnected() {
    let mut h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("note.txt");
    std::fs::write(&local, b"hello\n").unwrap();
    let remote = h.sshd.scratch_dir().join("note.txt");
    let upload = json!({"local_path": local, "remote_path": remote, "on_conflict": "OVERWRITE"});
    let first = h.ok("scp_upload", upload.clone()).await;
    assert_eq!(first["reconnected"], false, "{first}");
    h.sshd.restart().unwrap();
    let second = h.ok("scp_upload", upload.clone()).await;
    assert_eq!(second["reconnected"], true, "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("re-established"),
        "{second}"
    );
    let third = h.ok("scp_upload", upload).await;
    assert_eq!(third["reconnected"], false, "said once: {third}");
    // The transfer took the news: the next command does not claim it too.
    let out = h.exec("true").await;
    assert_eq!(out["reconnected"], false, "{out}");
}

#[tokio::test]
async fn keepalives_notice_a_frozen_connection_and_the_next_call_reconnects() {
    let sshd = Sshd::start().unwrap();
    let config = write_ssh_config(
        sshd.dir(),
        &format!(
            "{}    ServerAliveInterval 1\n",
            host_block(
                "frozen",
                &sshd,
                sshd.client_key_path(),
                sshd.known_hosts_path()
            )
        ),
    );
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let mut extra = FROM_CONFIG_ONLY.to_vec();
    extra.extend([
        ("MCP_SSH_HOSTNAME", "frozen"),
        ("MCP_SSH_CONFIG", config.as_str()),
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
    ]);
    let h = Harness::start_with(sshd, &extra).await;
    h.exec("true").await;
    // Freeze the connection's sshd processes: the TCP connection stays up, but nothing
    // answers any more (a hung host or a dead NAT mapping).
    let frozen = h.sshd.descendants();
    assert!(!frozen.is_empty());
    for pid in &frozen {
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGSTOP);
        }
    }
    // Three missed keepalives at 1 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(30), h.exec("echo thawed"))
        .await
        .expect("the call hung on the frozen connection");
    assert_eq!(out["stdout"], "thawed\n", "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reconnecting took {:?}",
        started.elapsed()
    );
    for pid in &frozen {
        unsafe {
            libc::kill(*pid as libc::pid_t, libc::SIGKILL);
        }
    }
    // The frozen connection is gone; the new one is the only session left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.sshd.count_sessions() != 1 {
        assert!(
            Instant::now() < deadline,
            "{} sessions open after the frozen one was killed",
            h.sshd.count_sessions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
