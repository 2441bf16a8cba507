//! `mcpssh doctor` against a working configuration and against each way it breaks: a key
//! the server does not accept, a changed host key, a port nothing listens on, a server
//! without the sftp subsystem. The checklist names the failing step, the exit status
//! says whether the host works, nothing is recorded and no secret is printed.

use std::process::Output;

use mcpssh_testbed::{Sshd, generate_key};

use crate::common::bin;

/// Runs `mcpssh doctor` with the testbed's environment for `sshd`, changed by `extra`.
fn doctor(sshd: &Sshd, extra: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("doctor");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("MCP_SSH_") {
            cmd.env_remove(key);
        }
    }
    // The developer's agent and ~/.ssh/config must not decide the outcome.
    cmd.env_remove("SSH_AUTH_SOCK");
    cmd.env("MCP_SSH_CONFIG", sshd.dir().join("no-ssh-config"));
    cmd.envs(sshd.mcp_env());
    cmd.envs(extra.iter().copied());
    let out = cmd.output().expect("running mcpssh doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

/// The checklist line about `subject`, e.g. `[FAIL] login: ...`.
fn line<'a>(text: &'a str, subject: &str) -> &'a str {
    text.lines()
        .find(|l| {
            l.split_once("] ")
                .is_some_and(|(_, rest)| rest.starts_with(&format!("{subject}:")))
        })
        .unwrap_or_else(|| panic!("no {subject} line in:\n{text}"))
}

#[test]
fn a_working_configuration_passes_records_nothing_and_prints_no_secret() {
    let sshd = Sshd::start().unwrap();
    let secret = "doctor-must-not-print-this";
    let (out, text) = doctor(&sshd, &[("MCP_SSH_PASSWORD", secret)]);
    assert!(out.status.success(), "{text}");
    assert!(line(&text, "login").starts_with("[  ok]"), "{text}");
    assert!(line(&text, "sftp").starts_with("[  ok]"), "{text}");
    assert!(line(&text, "reach").starts_with("[  ok]"), "{text}");
    let host_key = line(&text, "host key");
    assert!(
        host_key.contains(sshd.host_key_fingerprint()) && host_key.contains("is new"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts_path()).unwrap(),
        "",
        "doctor recorded the host key"
    );
    assert!(
        text.contains(&sshd.client_key_path().display().to_string()),
        "lists the key file: {text}"
    );
    assert!(text.contains("MCP_SSH_PASSWORD is set"), "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains(secret) && !stderr.contains(secret),
        "the password was printed:\n{text}\n{stderr}"
    );
    assert!(
        line(&text, "built-in tools").starts_with("[  ok]"),
        "{text}"
    );
    assert!(line(&text, "login shell").starts_with("[skip]"), "{text}");

    // Once recorded, the key is reported as known.
    std::fs::write(sshd.known_hosts_path(), sshd.known_hosts_line() + "\n").unwrap();
    let (out, text) = doctor(&sshd, &[]);
    assert!(out.status.success(), "{text}");
    assert!(line(&text, "host key").contains("is known"), "{text}");
}

#[test]
fn a_key_the_server_refuses_fails_the_login() {
    let sshd = Sshd::start().unwrap();
    let (stranger, _) = generate_key(sshd.scratch_dir(), "not_authorized").unwrap();
    let key = stranger.display().to_string();
    let (out, text) = doctor(&sshd, &[("MCP_SSH_KEY_FILENAME", &key)]);
    assert!(!out.status.success(), "{text}");
    let login = line(&text, "login");
    assert!(
        login.starts_with("[FAIL]") && login.contains("refused authentication"),
        "{text}"
    );
    assert!(line(&text, "sftp").starts_with("[skip]"), "{text}");
}

#[test]
fn a_changed_host_key_fails_with_both_fingerprints() {
    let sshd = Sshd::start().unwrap();
    let (_, other) = generate_key(sshd.scratch_dir(), "other_host_key").unwrap();
    std::fs::write(
        sshd.known_hosts_path(),
        format!("[{}]:{} {other}\n", sshd.host(), sshd.port()),
    )
    .unwrap();
    let (out, text) = doctor(&sshd, &[]);
    assert!(!out.status.success(), "{text}");
    let host_key = line(&text, "host key");
    assert!(
        host_key.starts_with("[FAIL]")
            && host_key.contains("HOST KEY CHANGED")
            && host_key.contains(sshd.host_key_fingerprint()),
        "{text}"
    );
    assert!(line(&text, "login").starts_with("[skip]"), "{text}");
}

#[test]
fn a_port_nothing_listens_on_fails_reachability() {
    let sshd = Sshd::start().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let (out, text) = doctor(&sshd, &[("MCP_SSH_PORT", &closed)]);
    assert!(!out.status.success(), "{text}");
    assert!(line(&text, "resolve").starts_with("[  ok]"), "{text}");
    let reach = line(&text, "reach");
    assert!(
        reach.starts_with("[FAIL]") && reach.contains(&closed),
        "{text}"
    );
    assert!(line(&text, "login").starts_with("[skip]"), "{text}");
}

#[test]
fn a_server_without_the_sftp_subsystem_fails_sftp_only() {
    let sshd = Sshd::builder().sftp_server("/bin/false").start().unwrap();
    let (out, text) = doctor(&sshd, &[]);
    assert!(!out.status.success(), "{text}");
    assert!(line(&text, "login").starts_with("[  ok]"), "{text}");
    let sftp = line(&text, "sftp");
    assert!(
        sftp.starts_with("[FAIL]") && sftp.contains("Subsystem sftp"),
        "{text}"
    );
}

#[test]
fn a_custom_tool_the_server_would_refuse_is_listed_with_the_reason() {
    let sshd = Sshd::start().unwrap();
    let tools = tempfile::tempdir().unwrap();
    std::fs::write(tools.path().join("broken.wasm"), b"not a component").unwrap();
    let dir = tools.path().display().to_string();
    let (out, text) = doctor(&sshd, &[("MCP_SSH_TOOLS_DIR", &dir)]);
    assert!(
        out.status.success(),
        "a refused custom tool is a warning: {text}"
    );
    let refused = line(&text, "custom tool not loaded");
    assert!(
        refused.starts_with("[WARN]") && refused.contains("broken.wasm"),
        "{text}"
    );
}

/// The files that steer the server are checked as start-up checks them: a policy file or
/// an audit key another user could change or read fails, naming the file and the fix; the
/// audit log is not created by the doctor.
#[test]
fn a_policy_or_audit_key_others_could_change_fails_the_checklist() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "preset = \"standard\"\n").unwrap();
    let policy_arg = policy.display().to_string();
    let (out, text) = doctor(&sshd, &[("MCP_SSH_POLICY", &policy_arg)]);
    assert!(out.status.success(), "{text}");
    assert!(line(&text, "policy").starts_with("[  ok]"), "{text}");

    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (out, text) = doctor(&sshd, &[("MCP_SSH_POLICY", &policy_arg)]);
    assert!(!out.status.success(), "{text}");
    let refused = line(&text, "policy");
    assert!(
        refused.starts_with("[FAIL]") && refused.contains("chmod go-w"),
        "{text}"
    );

    let key = dir.path().join("audit.key");
    std::fs::write(&key, [1u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("audit.log");
    let (log_arg, key_arg) = (log.display().to_string(), key.display().to_string());
    let audit = [
        ("MCP_SSH_AUDIT_LOG", log_arg.as_str()),
        ("MCP_SSH_AUDIT_KEY_FILE", key_arg.as_str()),
    ];
    let (out, text) = doctor(&sshd, &audit);
    assert!(!out.status.success(), "{text}");
    assert!(
        line(&text, "audit log").starts_with("[FAIL]")
            && line(&text, "audit log").contains("chmod go-rwx"),
        "{text}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (out, text) = doctor(&sshd, &audit);
    assert!(out.status.success(), "{text}");
    assert!(line(&text, "audit log").starts_with("[  ok]"), "{text}");
    assert!(!log.exists(), "the doctor created the audit log");
}

/// Under `ask`, the doctor does not log in on a key nobody confirmed (a password would go
/// to whoever holds that key): it shows the new key and skips the login.
#[test]
fn under_ask_a_new_host_key_is_shown_and_no_login_is_tried() {
    let sshd = Sshd::start().unwrap();
    let (out, text) = doctor(
        &sshd,
        &[
            ("MCP_SSH_STRICT_HOST_KEY_CHECKING", "ask"),
            ("MCP_SSH_PASSWORD", "doctor-ask-secret"),
        ],
    );
    assert!(out.status.success(), "{text}");
    let host_key = line(&text, "host key");
    assert!(
        host_key.contains(sshd.host_key_fingerprint()) && host_key.contains("will ask you"),
        "{text}"
    );
    assert!(line(&text, "login").contains("not tried"), "{text}");
    // sshd logs at DEBUG1 (every authentication request would show) and saw the key
    // exchange begin, yet no request.
    assert!(
        sshd.log().contains("debug1: kex: algorithm"),
        "{}",
        sshd.log()
    );
    assert!(
        !sshd.log().contains("userauth-request"),
        "the doctor tried to log in on an unconfirmed key"
    );
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts_path()).unwrap(),
        ""
    );
}
