//! Hosts that cannot be reached: nothing listening (a quick connection error), a server
//! that never answers (the connect timeout, named in the error), and an unreachable host
//! that blocks neither start-up nor calls on other sessions.

use std::time::{Duration, Instant};

use mcpssh_testbed::{CallToolResultExt, McpServer, Sshd};
use serde_json::json;

use crate::client_setup::{env_for, expect_error};
use crate::common::{Harness, bin};

#[tokio::test]
async fn nothing_listening_is_a_connection_error_quickly() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[]).await;
    // A port with nothing behind it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = h.tool_error("ssh_connect", json!({ "port": port })).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err["error_kind"], "connection", "{err}");
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_connect_timeout() {
    let sshd = Sshd::start().unwrap();
    // Accepts TCP connections and then says nothing (no SSH banner).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let h = Harness::start_with(sshd, &[("MCP_SSH_CONNECT_TIMEOUT", "2")]).await;
    let started = Instant::now();
    let err = h.tool_error("ssh_connect", json!({ "port": port })).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "a 2 s connect timeout took {took:?}"
    );
    // docs/tool-contract.md: `timed-out` is the kind for a time limit such as connecting.
    assert_eq!(err["error_kind"], "timed-out", "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_CONNECT_TIMEOUT"),
        "the error names the setting: {err}"
    );
    drop(silent);
    h.assert_still_serving().await;
}

#[tokio::test]
async fn an_unreachable_host_blocks_neither_start_up_nor_other_calls() {
    // Accepts TCP connections and then never says a word (no SSH banner).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let sshd = Sshd::start().unwrap();

    // Start-up with the silent host configured is immediate; the first call times out.
    let env = env_for(
        &sshd,
        &[
            ("MCP_SSH_PORT", &silent_port.to_string()),
            ("MCP_SSH_CONNECT_TIMEOUT", "5"),
        ],
    );
    let started = Instant::now();
    let stuck = McpServer::spawn(bin(), env).await.unwrap();
    stuck.list_tools().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "start-up waited for the unreachable host: {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let result = stuck
        .call_tool("ssh_execute", json!({"command": "true"}))
        .await
        .unwrap();
    let took = started.elapsed();
    let err = expect_error("ssh_execute", &result);
    assert_eq!(err["error_kind"], "timed-out", "{err}");
    assert!(
        took >= Duration::from_millis(4500) && took < Duration::from_secs(10),
        "a 5 s connect timeout took {took:?}"
    );

    // While a connect to the silent host hangs, calls on an open session go on.
    let h = Harness::start_with(sshd, &[("MCP_SSH_CONNECT_TIMEOUT", "6")]).await;
    h.exec("true").await;
    let started = Instant::now();
    let pending = h
        .server
        .start_call(&h.name("ssh_connect"), json!({"port": silent_port}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meanwhile = Instant::now();
    let host = format!("127.0.0.1:{}", h.sshd.port());
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        h.call(
            "ssh_execute",
            json!({"command": "echo meanwhile", "host": host}),
        ),
    )
    .await
    .expect("a call hung");
    let waited = meanwhile.elapsed();
    assert!(!out.is_error(), "{}", out.summary());
    assert_eq!(out.structured()["stdout"], "meanwhile\n");
    assert!(
        waited < Duration::from_secs(3),
        "a command on an open session waited {waited:?} for a connect to another host"
    );
    let result = pending.wait().await.unwrap();
    let err = expect_error("ssh_connect", &result);
    assert_eq!(err["error_kind"], "timed-out", "{err}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(12),
        "a 6 s connect timeout took {took:?}"
    );
    drop(silent);
    h.assert_still_serving().await;
}
