//! Authentication: every way the server logs in, against real sshds — ssh-agent, a user
//! certificate beside the key, a password (shown nowhere), an encrypted key and its
//! passphrase, ECDSA and RSA keys — and the clear errors when it cannot: a key the server
//! does not know, a missing key file, a private key others can read (refused as OpenSSH
//! refuses it), a wrong password listing every method tried.
//! (Host keys are in host_keys.rs, `~/.ssh/config` in ssh_config.rs.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcpssh_testbed::rmcp::model::CallToolResult;
use mcpssh_testbed::{
    CallToolResultExt, McpServer, Sshd, generate_key, generate_key_with, test_user_password,
};
use serde_json::json;

use crate::client_setup::{NO_AGENT, empty_home, env_for, expect_error};
use crate::common::{Harness, bin};

/// An `ssh-agent` started by the test (foreground, own socket), killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// A fresh agent holding `keys`.
    fn start(keys: &[&Path]) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("mcpssh-agent-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting ssh-agent");
        let agent = Agent {
            child,
            sock,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            let out = Command::new("ssh-add")
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.sock)
                .stdin(Stdio::null())
                .output()
                .expect("running ssh-add");
            assert!(
                out.status.success(),
                "ssh-add {}: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        agent
    }

    fn sock(&self) -> String {
        self.sock.display().to_string()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen -s CA -I ID -n PRINCIPAL -V +1h KEY.pub`: writes `KEY-cert.pub`.
fn sign_user_key(ca: &Path, key: &Path, id: &str, principal: &str) -> PathBuf {
    let public = PathBuf::from(format!("{}.pub", key.display()));
    let out = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(ca)
        .args(["-I", id, "-n", principal, "-V", "+1h"])
        .arg(&public)
        .stdin(Stdio::null())
        .output()
        .expect("running ssh-keygen -s");
    assert!(
        out.status.success(),
        "ssh-keygen -s: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
    assert!(cert.exists(), "no {}", cert.display());
    cert
}

#[tokio::test]
async fn the_agent_authenticates_without_any_key_file() {
    let sshd = Sshd::start().unwrap();
    let agent = Agent::start(&[sshd.client_key_path()]);
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let sock = agent.sock();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", ""),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", &sock),
        ],
    )
    .await;
    let out = h.exec("id -un").await;
    assert_eq!(out["stdout"], "mcpssh-test\n", "{out}");
    assert!(
        h.sshd.log().contains("Accepted publickey for mcpssh-test"),
        "sshd did not log the key login"
    );

    // The same without the agent: nothing left to try, and the error says what to set.
    let env = env_for(
        &h.sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", ""),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", NO_AGENT),
        ],
    );
    let bare = McpServer::spawn(bin(), env).await.unwrap();
    let result = bare
        .call_tool("ssh_execute", json!({"command": "true"}))
        .await
        .unwrap();
    let err = expect_error("ssh_execute", &result);
    assert_eq!(err["error_kind"], "auth", "{err}");
    drop(agent);
}

#[tokio::test]
async fn a_user_certificate_beside_the_key_is_used() {
    let ca_dir = tempfile::Builder::new()
        .prefix("mcpssh-ca-")
        .tempdir()
        .unwrap();
    let (ca, _) = generate_key(ca_dir.path(), "user_ca").unwrap();
    let sshd = Sshd::builder()
        .config_line(format!("TrustedUserCAKeys {}.pub", ca.display()))
        .start()
        .unwrap();
    // A key that is not in authorized_keys, certified by the CA for the test user.
    let (key, _) = generate_key(sshd.dir(), "certified_ed25519").unwrap();
    sign_user_key(&ca, &key, "mcpssh-cert-test", "mcpssh-test");
    let key = key.display().to_string();
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &key),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", NO_AGENT),
        ],
    )
    .await;
    let out = h.exec("id -un").await;
    assert_eq!(out["stdout"], "mcpssh-test\n", "{out}");
    let log = h.sshd.log();
    assert!(
        log.contains("Accepted certificate ID \"mcpssh-cert-test\""),
        "sshd did not accept the certificate; its log:\n{log}"
    );

    // Without the certificate the bare key is refused, naming the key tried.
    std::fs::remove_file(format!("{key}-cert.pub")).unwrap();
    let env = env_for(
        &h.sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &key),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", NO_AGENT),
        ],
    );
    let bare = McpServer::spawn(bin(), env).await.unwrap();
    let result = bare.call_tool("ssh_connect", json!({})).await.unwrap();
    let err = expect_error("ssh_connect", &result);
    assert_eq!(err["error_kind"], "auth", "{err}");
    assert!(err["error"].as_str().unwrap().contains(&key), "{err}");
}

/// Everything a client of this server can see: results, stderr log, MCP log messages, the
/// command line.
fn assert_secret_nowhere(server: &McpServer, results: &[&CallToolResult], secret: &str) {
    for r in results {
        let json = serde_json::to_string(r).unwrap();
        assert!(
            !json.contains(secret),
            "the password is in a result: {json}"
        );
    }
    assert!(
        !server.stderr().contains(secret),
        "the password is in mcpssh's stderr"
    );
    let logs = format!("{:?}", server.log_messages());
    assert!(
        !logs.contains(secret),
        "the password is in an MCP log message"
    );
    if let Some(pid) = server.pid() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(secret),
            "the password is on mcpssh's command line"
        );
    }
}

#[tokio::test]
async fn password_auth_when_set_and_a_wrong_one_lists_what_was_tried() {
    let password = test_user_password().unwrap();
    let sshd = Sshd::builder()
        .password_authentication(true)
        .start()
        .unwrap();
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", ""),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", NO_AGENT),
            ("MCP_SSH_PASSWORD", &password),
        ],
    )
    .await;
    let connect = h.call("ssh_connect", json!({})).await;
    assert!(!connect.is_error(), "{}", connect.summary());
    let exec = h.call("ssh_execute", json!({"command": "id -un"})).await;
    assert_eq!(exec.structured()["stdout"], "mcpssh-test\n");
    assert!(
        h.sshd.log().contains("Accepted password for mcpssh-test"),
        "sshd did not log a password login"
    );
    assert_secret_nowhere(&h.server, &[&connect, &exec], &password);

    // A wrong password, with a key the server does not know and an agent holding another
    // stranger: one auth error naming every method tried, the password in none of it.
    let (stranger, _) = generate_key(h.sshd.dir(), "stranger_ed25519").unwrap();
    let (agent_stranger, _) = generate_key(h.sshd.dir(), "agent_stranger_ed25519").unwrap();
    let agent = Agent::start(&[&agent_stranger]);
    let wrong = format!("{password}-wrong");
    let stranger_path = stranger.display().to_string();
    let env = env_for(
        &h.sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &stranger_path),
            ("HOME", &home_path),
            ("SSH_AUTH_SOCK", &agent.sock()),
            ("MCP_SSH_PASSWORD", &wrong),
        ],
    );
    let refused = McpServer::spawn(bin(), env).await.unwrap();
    let connect = refused.call_tool("ssh_connect", json!({})).await.unwrap();
    let err = expect_error("ssh_connect", &connect);
    assert_eq!(err["error_kind"], "auth", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("agent"),
        "the agent is not listed: {message}"
    );
    assert!(
        message.contains(&stranger_path),
        "the key file is not listed: {message}"
    );
    assert!(
        message.contains("password"),
        "the password is not listed as tried: {message}"
    );
    let exec = refused
        .call_tool("ssh_execute", json!({"command": "true"}))
        .await
        .unwrap();
    assert_eq!(expect_error("ssh_execute", &exec)["error_kind"], "auth");
    assert_secret_nowhere(&refused, &[&connect, &exec], &wrong);
    // Nor the right one, which a careless message might print for comparison.
    assert_secret_nowhere(&refused, &[&connect, &exec], &password);
    drop(agent);
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

/// A private key that other users can read is refused, as OpenSSH refuses it
/// ("UNPROTECTED PRIVATE KEY FILE"), with the `chmod` that fixes it; once private, the
/// same file logs in.
#[tokio::test]
async fn a_private_key_others_can_read_is_refused_as_openssh_refuses_it() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    std::fs::copy(sshd.client_key_path(), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_arg = key.display().to_string();

    // OpenSSH itself will not use it.
    let openssh = sshd
        .ssh_command_with_key(&key, "true")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(
        !openssh.status.success(),
        "OpenSSH used a key others can read"
    );
    assert!(
        String::from_utf8_lossy(&openssh.stderr).contains("UNPROTECTED PRIVATE KEY FILE"),
        "{}",
        String::from_utf8_lossy(&openssh.stderr)
    );

    let h = Harness::start_with(
        sshd,
        &[
            ("MCP_SSH_KEY_FILENAME", &key_arg),
            ("SSH_AUTH_SOCK", NO_AGENT),
        ],
    )
    .await;
    let err = h.tool_error("ssh_connect", json!({})).await;
    assert_eq!(err["error_kind"], "auth", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(&key_arg) && message.contains("0644") && message.contains("chmod 600"),
        "{message}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    h.ok("ssh_connect", json!({})).await;
    h.assert_still_serving().await;
}

/// As in OpenSSH, a key file others can read is skipped, not fatal: the next identity
/// logs in (a stray 0644 `id_rsa` beside a good key does not lock the user out).
#[tokio::test]
async fn a_key_others_can_read_is_skipped_and_the_next_one_logs_in() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stray = dir.path().join("id_stray");
    std::fs::copy(sshd.client_key_path(), &stray).unwrap();
    std::fs::set_permissions(&stray, std::fs::Permissions::from_mode(0o644)).unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let config = crate::client_setup::write_ssh_config(
        dir.path(),
        &format!(
            "Host keys-alias\n    HostName {}\n    Port {}\n    User {}\n    \
             IdentityFile {}\n    IdentityFile {}\n    UserKnownHostsFile {}\n",
            sshd.host(),
            sshd.port(),
            sshd.username(),
            stray.display(),
            sshd.client_key_path().display(),
            known_hosts.display()
        ),
    );
    let home = crate::client_setup::empty_home();
    let home_path = home.path().display().to_string();
    let mut extra = crate::client_setup::FROM_CONFIG_ONLY.to_vec();
    extra.extend([
        ("MCP_SSH_HOSTNAME", "keys-alias"),
        ("MCP_SSH_CONFIG", config.as_str()),
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
    ]);
    let h = Harness::start_with(sshd, &extra).await;
    let connect = h.ok("ssh_connect", json!({})).await;
    assert_eq!(connect["session"], "keys-alias", "{connect}");
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

impl Harness {
    /// After a failed default connect, connect with the harness key and run a command.
    async fn assert_still_serving_with_key(&self) {
        let key = self.sshd.client_key_path().display().to_string();
        self.ok("ssh_connect", json!({ "key_filename": key })).await;
        self.assert_still_serving().await;
    }
}
