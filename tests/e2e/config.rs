//! Configuration that changes behaviour: connect timeout, encrypted keys and the key
//! passphrase, key types. (The polling watchdog is in mcp_lifecycle.rs.)

use std::time::{Duration, Instant};

use mcpssh_testbed::{Sshd, generate_key_with};
use serde_json::json;

use crate::common::Harness;

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
async fn an_encrypted_key_opens_with_the_passphrase() {
    let sshd = Sshd::start().unwrap();
    let (key, public) =
        generate_key_with(sshd.dir(), "locked_ed25519", "ed25519", "correct horse").unwrap();
    sshd.authorize_key(&public).unwrap();
    let key = key.display().to_string();

    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &key),
            ("MCP_SSH_KEY_PASSPHRASE", "correct horse"),
        ],
    )
    .await;
    let out = h.exec("id -un").await;
    assert_eq!(out["stdout"], "mcpssh-test\n", "{out}");
    assert!(
        !h.server.stderr().contains("correct horse"),
        "the passphrase must never be logged"
    );
}

#[tokio::test]
async fn an_encrypted_key_without_passphrase_says_what_to_set() {
    let sshd = Sshd::start().unwrap();
    let (key, public) =
        generate_key_with(sshd.dir(), "locked_ed25519", "ed25519", "correct horse").unwrap();
    sshd.authorize_key(&public).unwrap();
    let key = key.display().to_string();
    let h = Harness::start_with(sshd, &[("MCP_SSH_KEY_FILENAME", &key)]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_KEY_PASSPHRASE"),
        "{err}"
    );

    // A wrong passphrase is an error too, and is not echoed.
    let sshd = Sshd::start().unwrap();
    let (key, public) =
        generate_key_with(sshd.dir(), "locked_ed25519", "ed25519", "correct horse").unwrap();
    sshd.authorize_key(&public).unwrap();
    let key = key.display().to_string();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &key),
            ("MCP_SSH_KEY_PASSPHRASE", "battery staple"),
        ],
    )
    .await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert!(!err.to_string().contains("battery staple"), "{err}");
    assert!(!h.server.stderr().contains("battery staple"));
}

#[tokio::test]
async fn ecdsa_and_rsa_keys_work() {
    for kind in ["ecdsa", "rsa"] {
        let sshd = Sshd::start().unwrap();
        let (key, public) =
            generate_key_with(sshd.dir(), &format!("client_{kind}"), kind, "").unwrap();
        sshd.authorize_key(&public).unwrap();
        let key = key.display().to_string();
        let h = Harness::start_with(sshd, &[("MCP_SSH_KEY_FILENAME", &key)]).await;
        let out = h.exec("echo via-key").await;
        assert_eq!(out["stdout"], "via-key\n", "{kind}: {out}");
    }
}
