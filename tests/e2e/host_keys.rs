//! Host key checking: accept-new records, strict refuses the unknown, `ask` puts a new key
//! to the user first, a changed key is refused with both fingerprints, `no` accepts
//! anything. known_hosts as OpenSSH reads
//! it: the system-wide file, case-insensitive (and hashed) names, `HashKnownHosts`,
//! `@cert-authority`, and host names that would be patterns refused.

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

/// Runs `ssh-keygen` with `args`; panics unless it succeeds.
fn ssh_keygen(args: &[&str]) {
    let out = Command::new("ssh-keygen").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The user known_hosts file's content.
fn user_known_hosts(sshd: &Sshd) -> String {
    std::fs::read_to_string(sshd.known_hosts_path()).unwrap()
}

/// Records another key than the daemon's for it in the user known_hosts file (as if the
/// host had been reinstalled, or were an impostor); returns that key's fingerprint.
fn record_another_key(sshd: &Sshd) -> String {
    let (_, other_public) = generate_key(sshd.dir(), "other_host_key").unwrap();
    let mut fields = other_public.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port(),
        fields.next().unwrap(),
        fields.next().unwrap()
    );
    std::fs::write(sshd.known_hosts_path(), &line).unwrap();
    fingerprint_of(&sshd.dir().join("other_host_key.pub")).unwrap()
}

/// Writes an OpenSSH client configuration beside the daemon; returns its path.
fn ssh_config(sshd: &Sshd, text: &str) -> String {
    let path = sshd.dir().join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
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

/// `ask` (OpenSSH's own default) with a client that cannot ask the user (no
/// elicitation): a new host is refused before any login, nothing is recorded, and the
/// message shows the fingerprint and the fix; a host whose key is recorded connects
/// without asking. Accepting and declining through a client that asks:
/// [`ask_mode_puts_a_new_key_to_the_user_through_the_python_sdk`].
#[tokio::test]
async fn ask_mode_refuses_a_new_host_when_the_client_cannot_ask() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "ask")]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(h.sshd.host_key_fingerprint())
            && message.contains("MCP_SSH_STRICT_HOST_KEY_CHECKING=ask")
            && message.contains("cannot ask")
            && message.contains("ssh-keyscan"),
        "{message}"
    );
    assert_eq!(user_known_hosts(&h.sshd), "", "nothing may be recorded");
    assert!(
        !h.sshd.log().contains("userauth-request"),
        "no login may be attempted before the key is trusted"
    );

    // The user adds the key themselves: the next connection asks nothing.
    std::fs::write(
        h.sshd.known_hosts_path(),
        format!("{}\n", h.sshd.known_hosts_line()),
    )
    .unwrap();
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    // (The check above can fail: sshd logs every authentication request.)
    assert!(h.sshd.log().contains("userauth-request"));
}

/// A harness whose `~/.ssh/config` names the daemon `alias` with `StrictHostKeyChecking
/// strictness`, and `extra` settings on top.
async fn with_strictness_alias(alias: &str, strictness: &str, extra: &[(&str, &str)]) -> Harness {
    let sshd = Sshd::start().unwrap();
    let config = ssh_config(
        &sshd,
        &format!(
            "Host {alias}\n    HostName {}\n    StrictHostKeyChecking {strictness}\n",
            sshd.host()
        ),
    );
    let mut env = vec![("MCP_SSH_CONFIG", config.as_str())];
    env.extend_from_slice(extra);
    Harness::start_with(sshd, &env).await
}

/// `StrictHostKeyChecking` in `~/.ssh/config` decides per host when
/// `MCP_SSH_STRICT_HOST_KEY_CHECKING` is unset (as `-o` on OpenSSH's command line overrides
/// the file, the variable overrides it when set).
#[tokio::test]
async fn strict_host_key_checking_from_ssh_config_decides_per_host_unless_the_setting_does() {
    let h = with_strictness_alias("strict-alias", "yes", &[]).await;
    let err = h
        .tool_error("ssh_connect", json!({"host": "strict-alias"}))
        .await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("strict host key checking is on"),
        "{err}"
    );
    assert_eq!(
        user_known_hosts(&h.sshd),
        "",
        "nothing recorded for the strict alias"
    );
    // Another name for the same server, without the keyword: accept-new, recorded.
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], true, "{out}");

    // The setting, when given, wins over the file.
    let h = with_strictness_alias(
        "strict-alias",
        "yes",
        &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "accept-new")],
    )
    .await;
    let out = h.ok("ssh_connect", json!({"host": "strict-alias"})).await;
    assert_eq!(out["new_host_key_recorded"], true, "{out}");
}

/// `StrictHostKeyChecking ask` in `~/.ssh/config` puts that host's new key to the user; a
/// client that cannot ask is refused, nothing recorded.
#[tokio::test]
async fn strict_host_key_checking_ask_in_ssh_config_asks_for_that_host() {
    let h = with_strictness_alias("asking-alias", "ask", &[]).await;
    let err = h
        .tool_error("ssh_connect", json!({"host": "asking-alias"}))
        .await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("cannot ask"),
        "{err}"
    );
    assert_eq!(user_known_hosts(&h.sshd), "");
}

/// `StrictHostKeyChecking no` in `~/.ssh/config` (a common leftover of `Host *` development
/// set-ups) does not turn checking off: a changed key is still refused. Only
/// `MCP_SSH_STRICT_HOST_KEY_CHECKING=no`, set by the user for mcpssh, does that.
#[tokio::test]
async fn strict_host_key_checking_no_in_ssh_config_still_refuses_a_changed_key() {
    let sshd = Sshd::start().unwrap();
    record_another_key(&sshd);
    let config = ssh_config(&sshd, "Host *\n    StrictHostKeyChecking no\n");
    let h = Harness::start_with(sshd, &[("MCP_SSH_CONFIG", config.as_str())]).await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("HOST KEY CHANGED"),
        "{err}"
    );
    assert!(
        h.sshd.log().contains("debug1: kex: algorithm"),
        "{}",
        h.sshd.log()
    );
    assert!(
        !h.sshd.log().contains("userauth-request"),
        "a login was attempted on a changed key"
    );
}

#[test]
fn ask_mode_puts_a_new_key_to_the_user_through_the_python_sdk() {
    let sshd = Sshd::start().unwrap();
    let fingerprint = sshd.host_key_fingerprint().to_string();
    let output = crate::python_sdk::run_python(
        &sshd,
        "host_key_ask.py",
        &[],
        &[("MCPSSH_HOST_FINGERPRINT", fingerprint.as_str())],
    );
    eprintln!("{output}");
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
    let other_fp = record_another_key(&sshd);
    let recorded = user_known_hosts(&sshd);
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
        user_known_hosts(&h.sshd),
        recorded,
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
    record_another_key(&sshd);
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "no")]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["host_key_fingerprint"], h.sshd.host_key_fingerprint());
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_host_name_with_pattern_characters_is_refused_before_connecting() {
    let h = Harness::start().await;
    let log_before = h.sshd.log().matches("Connection from").count();
    for hostname in ["127.0.0.1,*", "*", "127.0.0.?", "!x,127.0.0.1"] {
        let err = h
            .tool_error(
                "ssh_connect",
                json!({"hostname": hostname, "port": h.sshd.port()}),
            )
            .await;
        assert_eq!(err["error_kind"], "invalid", "{hostname}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(
            message.contains(&format!("{hostname:?}")) && message.contains("plain host name"),
            "the error should name the host and why: {message}"
        );
    }
    assert_eq!(user_known_hosts(&h.sshd), "", "nothing may be recorded");
    assert_eq!(
        h.sshd.log().matches("Connection from").count(),
        log_before,
        "refused before any connection"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_key_listed_only_in_the_system_wide_file_is_trusted_without_recording() {
    let sshd = Sshd::start().unwrap();
    let global = sshd.dir().join("ssh_known_hosts");
    std::fs::write(&global, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let global = global.display().to_string();
    let h = Harness::start_with(sshd, &[("MCP_SSH_GLOBAL_KNOWN_HOSTS", &global)]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    assert_eq!(user_known_hosts(&h.sshd), "", "the user file was written");
}

#[tokio::test]
async fn a_different_key_in_the_system_wide_file_is_refused_and_not_overridden() {
    let sshd = Sshd::start().unwrap();
    let (_, other_public) = generate_key(sshd.dir(), "other_host_key").unwrap();
    let global = sshd.dir().join("ssh_known_hosts");
    std::fs::write(
        &global,
        format!("# pinned\n[127.0.0.1]:{} {other_public}\n", sshd.port()),
    )
    .unwrap();
    let global = global.display().to_string();
    let h = Harness::start_with(sshd, &[("MCP_SSH_GLOBAL_KNOWN_HOSTS", &global)]).await; // accept-new
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("{global}:2")),
        "the refusal should name the system-wide file and line: {message}"
    );
    assert_eq!(
        user_known_hosts(&h.sshd),
        "",
        "the offered key must not be recorded in the user file"
    );
}

#[tokio::test]
async fn global_known_hosts_file_from_ssh_config_is_read_under_strict_checking() {
    let sshd = Sshd::start().unwrap();
    let global = sshd.dir().join("ssh_known_hosts");
    std::fs::write(&global, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let config = ssh_config(
        &sshd,
        &format!("Host *\n  GlobalKnownHostsFile {}\n", global.display()),
    );
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_CONFIG", &config),
            ("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes"),
            // The setting would take precedence over the config file: none here.
            ("MCP_SSH_GLOBAL_KNOWN_HOSTS", ""),
        ],
    )
    .await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    assert_eq!(user_known_hosts(&h.sshd), "");
}

#[tokio::test]
async fn an_uppercase_host_name_matches_a_hashed_lowercase_entry() {
    let sshd = Sshd::start().unwrap();
    // OpenSSH's own hashed entry for the lowercase name.
    let line = format!("[localhost]:{} {}\n", sshd.port(), sshd.host_public_key());
    std::fs::write(sshd.known_hosts_path(), line).unwrap();
    let file = sshd.known_hosts_path().display().to_string();
    ssh_keygen(&["-H", "-f", &file]);
    let hashed = user_known_hosts(&sshd);
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes")]).await;
    let out = h
        .ok(
            "ssh_connect",
            json!({"hostname": "LocalHost", "port": h.sshd.port()}),
        )
        .await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    assert_eq!(user_known_hosts(&h.sshd), hashed);
}

#[tokio::test]
async fn hash_known_hosts_records_a_hashed_entry_that_is_accepted_next_time() {
    let sshd = Sshd::start().unwrap();
    let config = ssh_config(&sshd, "Host *\n  HashKnownHosts yes\n");
    let h = Harness::start_with(sshd, &[("MCP_SSH_CONFIG", &config)]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], true, "{out}");
    let known = user_known_hosts(&h.sshd);
    assert!(
        known.starts_with("|1|") && !known.contains("127.0.0.1"),
        "the entry should be hashed: {known}"
    );
    assert!(openssh_finds(&h.sshd), "OpenSSH cannot find: {known}");

    let mut env: std::collections::HashMap<String, String> = h.sshd.mcp_env().into_iter().collect();
    env.insert("MCP_SSH_CONFIG".into(), config.clone());
    env.insert("MCP_SSH_STRICT_HOST_KEY_CHECKING".into(), "yes".into());
    let second = mcpssh_testbed::McpServer::spawn(crate::common::bin(), env)
        .await
        .unwrap();
    let r = second.call_tool("ssh_connect", json!({})).await.unwrap();
    let v = mcpssh_testbed::CallToolResultExt::structured(&r);
    assert_eq!(v["new_host_key_recorded"], false, "{v}");
    assert_eq!(user_known_hosts(&h.sshd), known, "recorded again");
}

/// A certificate authority trusted for the daemon in its known_hosts file (and nothing
/// else): `@cert-authority [127.0.0.1]:PORT <ca key>`. Returns the CA's private key path.
fn trust_only_an_authority(sshd: &Sshd) -> std::path::PathBuf {
    let (ca, ca_public) = generate_key(sshd.dir(), "host_ca").unwrap();
    std::fs::write(
        sshd.known_hosts_path(),
        format!("@cert-authority [127.0.0.1]:{} {ca_public}\n", sshd.port()),
    )
    .unwrap();
    ca
}

#[tokio::test]
async fn a_host_covered_only_by_a_cert_authority_is_not_accepted_as_new() {
    let sshd = Sshd::start().unwrap();
    trust_only_an_authority(&sshd);
    let before = user_known_hosts(&sshd);
    let h = Harness::start_with(sshd, &[]).await; // accept-new
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "host-key", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("@cert-authority") && message.contains("HostCertificate"),
        "the error should say what to do: {message}"
    );
    assert_eq!(user_known_hosts(&h.sshd), before, "the key was recorded");
}

#[tokio::test]
async fn a_host_certificate_signed_by_a_trusted_authority_is_accepted() {
    let mut sshd = Sshd::start().unwrap();
    let ca = trust_only_an_authority(&sshd);
    let host_key = format!("{}.pub", sshd.host_key_path().display());
    ssh_keygen(&[
        "-q",
        "-s",
        &ca.display().to_string(),
        "-I",
        "testbed host",
        "-h",
        "-n",
        "127.0.0.1",
        &host_key,
    ]);
    let certificate = sshd.dir().join("ssh_host_ed25519_key-cert.pub");
    let mut config = std::fs::read_to_string(sshd.config_path()).unwrap();
    config.push_str(&format!("HostCertificate {}\n", certificate.display()));
    std::fs::write(sshd.config_path(), config).unwrap();
    sshd.restart().unwrap();
    let before = user_known_hosts(&sshd);
    let h = Harness::start_with(sshd, &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes")]).await;
    let out = h.ok("ssh_connect", json!({})).await;
    assert_eq!(out["new_host_key_recorded"], false, "{out}");
    assert_eq!(out["host_key_fingerprint"], h.sshd.host_key_fingerprint());
    assert_eq!(user_known_hosts(&h.sshd), before);
    h.assert_still_serving().await;
}
