//! Host key checking: accept-new records, strict refuses the unknown, a changed key is
//! refused with both fingerprints, `no` accepts anything.

use std::process::Command;

use mcpssh_testbed::{Sshd, fingerprint_of, generate_key};
use serde_json::json;

use crate::common::Harness;

/// Does `known_hosts` (hashed or not) hold a key for the daemon, per OpenSSH?
fn openssh_finds(sshd: &Sshd) -> bool {
    let out = Command::new("ssh-keygen")
        .arg("-F")
        .arg(format!("[127.0.0.1]:{}", sshd.port()))
        .arg("-f")
        .arg(sshd.known_hosts_path())
        .output()
        .unwrap();
    out.status.success() && !out.stdout.is_empty()
}

#[tokio::test]
async fn accept_new_records_the_key_for_openssh_too() {
    let h = Harness::start().await;
    assert!(!openssh_finds(&h.sshd));
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], true, "{out}");
    let known = std::fs::read_to_string(h.sshd.known_hosts_path()).unwrap();
    assert!(!known.trim().is_empty(), "known_hosts is still empty");
    assert!(
        openssh_finds(&h.sshd),
        "OpenSSH cannot find the recorded key in:\n{known}"
    );
    let key = h.sshd.host_public_key().split_whitespace().nth(1).unwrap();
    assert!(
        known.contains(key),
        "the recorded key is not the daemon's:\n{known}"
    );

    // The recorded file satisfies OpenSSH's own strict checking.
    let status = Command::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            h.sshd.known_hosts_path().display()
        ))
        .arg("-i")
        .arg(h.sshd.client_key_path())
        .args([
            "-p",
            &h.sshd.port().to_string(),
            "mcpssh-test@127.0.0.1",
            "true",
        ])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ssh refused the known_hosts that mcpssh wrote"
    );

    // A second server (new process) trusts the recorded key without recording it again.
    let env = h.sshd.mcp_env();
    let second = mcpssh_testbed::McpServer::spawn(crate::common::bin(), env)
        .await
        .unwrap();
    let r = second.call_tool("ssh_connect", json!({})).await.unwrap();
    let v = mcpssh_testbed::CallToolResultExt::structured(&r);
    assert_eq!(v["new_host_key_recorded"], false, "{v}");
    let after = std::fs::read_to_string(h.sshd.known_hosts_path()).unwrap();
    assert_eq!(after, known, "known_hosts changed on a known host");
}

#[tokio::test]
async fn strict_mode_refuses_an_unknown_host() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes")]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains(h.sshd.host_key_fingerprint()),
        "the message should show the offered key's fingerprint: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(h.sshd.known_hosts_path()).unwrap(),
        "",
        "strict mode must not record anything"
    );
    let err = h
        .tool_error("ssh_execute", json!({"command": "true"}))
        .await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
}

#[tokio::test]
async fn strict_mode_accepts_a_known_host() {
    let sshd = Sshd::start().unwrap();
    std::fs::write(
        sshd.known_hosts_path(),
        format!("{}\n", sshd.known_hosts_line()),
    )
    .unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes")]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_changed_host_key_is_refused_naming_both_fingerprints() {
    let sshd = Sshd::start().unwrap();
    let (_, other_public) = generate_key(sshd.dir(), "other_host_key").unwrap();
    let other_fp = fingerprint_of(&sshd.dir().join("other_host_key.pub")).unwrap();
    let mut fields = other_public.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port(),
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    std::fs::write(sshd.known_hosts_path(), &line).unwrap();
    let h = Harness::start_with(sshd, &[]).await; // accept-new: still refuses a change
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(&other_fp),
        "the known key's fingerprint ({other_fp}) is missing: {message}"
    );
    assert!(
        message.contains(h.sshd.host_key_fingerprint()),
        "the offered key's fingerprint ({}) is missing: {message}",
        h.sshd.host_key_fingerprint()
    );
    assert_eq!(
        std::fs::read_to_string(h.sshd.known_hosts_path()).unwrap(),
        line,
        "a refused key must not be recorded"
    );
    let err = h
        .tool_error("ssh_execute", json!({"command": "true"}))
        .await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    assert!(h.server.is_running());
}

#[tokio::test]
async fn checking_off_accepts_a_changed_key() {
    let sshd = Sshd::start().unwrap();
    let (_, other_public) = generate_key(sshd.dir(), "other_host_key").unwrap();
    let mut fields = other_public.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port(),
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    std::fs::write(sshd.known_hosts_path(), &line).unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "no")]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["host_key_fingerprint"], h.sshd.host_key_fingerprint());
    h.assert_still_serving().await;
}
