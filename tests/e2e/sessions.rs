//! `ssh_connect`: the result fields, reuse, explicit arguments, authentication failures.

use std::time::{Duration, Instant};

use mcpssh_testbed::{Sshd, generate_key};
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn connect_reports_the_session() {
    let h = Harness::start().await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["host"], "127.0.0.1");
    assert_eq!(out["port"], h.sshd.port());
    assert_eq!(out["username"], "mcpssh-test");
    assert!(
        out["server_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("SSH-2.0-OpenSSH")),
        "{out}"
    );
    assert_eq!(out["host_key_algorithm"], "ssh-ed25519");
    assert_eq!(
        out["host_key_fingerprint"],
        h.sshd.host_key_fingerprint(),
        "the fingerprint must be what `ssh-keygen -lf` prints for the host key"
    );
    assert!(
        out["session"].as_str().is_some_and(|s| !s.is_empty()),
        "{out}"
    );
    assert_eq!(out["reused"], false);
    // accept-new (the default) with an empty known_hosts: the key is new and recorded.
    assert_eq!(out["new_host_key_recorded"], true);
    assert!(out["message"].as_str().is_some_and(|m| !m.is_empty()));

    // Connecting again reuses the open session.
    let again = h.ok("ssh_connect", json!({})).await;
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["new_host_key_recorded"], false);
    assert_eq!(again["host_key_fingerprint"], out["host_key_fingerprint"]);
    assert_eq!(
        h.sshd.count_sessions(),
        1,
        "one connection for both connects"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn connect_with_explicit_arguments_and_no_configuration() {
    let sshd = Sshd::start().unwrap();
    // Only where to keep host keys and the cache: nothing about the target.
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_HOSTNAME", ""),
            ("MCP_SSH_PORT", ""),
            ("MCP_SSH_USERNAME", ""),
            ("MCP_SSH_KEY_FILENAME", ""),
        ],
    )
    .await;
    let out = h
        .ok(
            "ssh_connect",
            json!({
                "hostname": "127.0.0.1",
                "port": h.sshd.port(),
                "username": "mcpssh-test",
                "key_filename": h.sshd.client_key_path().display().to_string(),
            }),
        )
        .await;
    assert_eq!(out["port"], h.sshd.port());
    assert_eq!(out["username"], "mcpssh-test");
    // Later commands use that session.
    let who = h.exec("id -un").await;
    assert_eq!(who["stdout"], "mcpssh-test\n", "{who}");
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_a_clear_auth_error() {
    let sshd = Sshd::start().unwrap();
    let (stranger, _) = generate_key(sshd.dir(), "stranger_ed25519").unwrap();
    let stranger = stranger.display().to_string();
    let h = Harness::start_with(sshd, &[("MCP_SSH_KEY_FILENAME", &stranger)]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "auth", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("mcpssh-test") || message.contains(&stranger),
        "the message should say who/what was refused: {message}"
    );
    // ssh_execute reports the same, as an error, not a hang.
    let err = h
        .tool_error("ssh_execute", json!({"command": "true"}))
        .await;
    assert_eq!(err["error_kind"], "auth", "{err}");
    // With the right key given explicitly it works.
    let key = h.sshd.client_key_path().display().to_string();
    h.ok("ssh_connect", json!({ "key_filename": key })).await;
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_missing_key_file_is_an_error_naming_it() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_KEY_FILENAME", "/nonexistent/mcpssh/key")]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/mcpssh/key"),
        "{err}"
    );
    h.assert_still_serving_with_key().await;
}

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

impl Harness {
    /// After a failed default connect, connect with the harness key and run a command.
    async fn assert_still_serving_with_key(&self) {
        let key = self.sshd.client_key_path().display().to_string();
        self.ok("ssh_connect", json!({ "key_filename": key })).await;
        self.assert_still_serving().await;
    }
}
