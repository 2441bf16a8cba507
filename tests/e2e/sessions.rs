//! Sessions: `ssh_connect`'s result and reuse, connecting with explicit arguments and no
//! configuration, `ssh_disconnect`, and two hosts used alternately by session name.

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use serde_json::{Value, json};

use crate::client_setup::SERVER_PORT;
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
async fn two_hosts_used_alternately_by_session_name() {
    let a = Sshd::start().unwrap();
    let b = Sshd::start().unwrap();
    b.authorize_key(a.client_public_key()).unwrap();
    let key = a.client_key_path().display().to_string();
    let (pa, pb) = (a.port(), b.port());
    // No configured host: the sessions are all there is.
    let h = Harness::start_with(
        a,
        &[
            ("MCP_SSH_HOSTNAME", ""),
            ("MCP_SSH_PORT", ""),
            ("MCP_SSH_USERNAME", "mcpssh-test"),
        ],
    )
    .await;
    let has_host_argument = h.tools[&h.name("ssh_execute")]
        .input_schema
        .get("properties")
        .and_then(|p| p.get("host"))
        .is_some();
    assert!(
        has_host_argument,
        "ssh_execute has no `host` argument to pick a session"
    );
    let sa = h
        .ok(
            "ssh_connect",
            json!({"hostname": "127.0.0.1", "port": pa, "key_filename": key}),
        )
        .await;
    let sb = h
        .ok(
            "ssh_connect",
            json!({"hostname": "127.0.0.1", "port": pb, "key_filename": key}),
        )
        .await;
    let open = sb["open_sessions"].clone();
    let (sa, sb) = (
        sa["session"].as_str().unwrap().to_owned(),
        sb["session"].as_str().unwrap().to_owned(),
    );
    let mut listed: Vec<&str> = open
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    listed.sort_unstable();
    let mut expected = vec![sa.as_str(), sb.as_str()];
    expected.sort_unstable();
    assert_eq!(listed, expected, "open_sessions: {open}");
    assert_ne!(sa, sb, "two hosts, one session name");
    for round in 0..3 {
        for (session, port) in [(&sa, pa), (&sb, pb)] {
            let out = h
                .ok(
                    "ssh_execute",
                    json!({"command": SERVER_PORT, "host": session}),
                )
                .await;
            assert_eq!(
                out["stdout"],
                format!("{port}\n"),
                "round {round}: host {session} ran on the wrong sshd: {out}"
            );
        }
    }
    assert_eq!(h.sshd.count_sessions(), 1, "session A was not reused");
    assert_eq!(b.count_sessions(), 1, "session B was not reused");

    // Without `host` the choice is ambiguous: a clear error listing both sessions.
    let err = h
        .tool_error("ssh_execute", json!({"command": "true"}))
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(&sa) && message.contains(&sb),
        "the ambiguity error should list the open sessions: {err}"
    );
    // An unknown session name is an error listing them too.
    let err = h
        .tool_error("ssh_execute", json!({"command": "true", "host": "nosuch"}))
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("nosuch") && message.contains(&sa) && message.contains(&sb),
        "{err}"
    );
    // Closing one leaves the other as the only, hence default, session.
    h.ok("ssh_disconnect", json!({"host": sa})).await;
    let out = h.exec(SERVER_PORT).await;
    assert_eq!(out["stdout"], format!("{pb}\n"), "{out}");
}
