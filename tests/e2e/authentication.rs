//! Connections: every way people reach their hosts, against real sshds —
//! ssh-agent, user certificates, passwords, `~/.ssh/config` aliases and ProxyJump, several
//! hosts in one server, reconnecting after a restart, `MaxSessions` queueing without
//! leaks, and an unreachable host that blocks nothing else. (Encrypted keys and the connect
//! timeout alone are in config.rs, changed host keys in host_keys.rs.)

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mcpssh_testbed::{
    CallToolResultExt, McpServer, Sshd, generate_key, rmcp::model::CallToolResult,
    test_user_password,
};
use serde_json::{Value, json};

use crate::common::{Harness, bin, check_error_shape};

/// A path no agent listens on: set as `SSH_AUTH_SOCK` so that an agent of whoever runs
/// the tests cannot help (mcpssh inherits the environment).
const NO_AGENT: &str = "/nonexistent/mcpssh-test/agent.sock";

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

/// An empty directory to serve as mcpssh's `HOME` (no `~/.ssh/id_*`, no `~/.ssh/config`).
fn empty_home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mcpssh-home-")
        .tempdir()
        .unwrap()
}

/// `sshd.mcp_env()` with `extra` on top (an empty value removes the variable).
fn env_for(sshd: &Sshd, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = sshd.mcp_env().into_iter().collect();
    for (k, v) in extra {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    env
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

/// A tool error's structured content, without the shape checks of the harness (for
/// servers started outside a `Harness`).
fn expect_error(tool: &str, result: &CallToolResult) -> Value {
    assert!(
        result.is_error(),
        "{tool} should have failed: {}",
        result.summary()
    );
    check_error_shape(result)
}

/// The server port the remote shell sees (`$SSH_CONNECTION`'s fourth field): tells which
/// sshd ran a command.
const SERVER_PORT: &str = "set -- $SSH_CONNECTION; echo $4";

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

/// Writes an OpenSSH client config `text` into `dir`; returns its path.
fn write_ssh_config(dir: &Path, text: &str) -> String {
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A `Host` block for `sshd` under `alias`, logging in with `key` and trusting hosts
/// listed in `known_hosts`.
fn host_block(alias: &str, sshd: &Sshd, key: &Path, known_hosts: &Path) -> String {
    format!(
        "Host {alias}\n\
         \x20   HostName 127.0.0.1\n\
         \x20   Port {port}\n\
         \x20   User mcpssh-test\n\
         \x20   IdentityFile {key}\n\
         \x20   IdentitiesOnly yes\n\
         \x20   UserKnownHostsFile {known_hosts}\n",
        port = sshd.port(),
        key = key.display(),
        known_hosts = known_hosts.display(),
    )
}

/// Nothing from the harness's explicit target settings: everything comes from the config.
const FROM_CONFIG_ONLY: [(&str, &str); 4] = [
    ("MCP_SSH_PORT", ""),
    ("MCP_SSH_USERNAME", ""),
    ("MCP_SSH_KEY_FILENAME", ""),
    ("MCP_SSH_KNOWN_HOSTS", ""),
];

#[tokio::test]
async fn an_ssh_config_alias_gives_host_port_user_key_and_known_hosts() {
    let sshd = Sshd::start().unwrap();
    // A trusting known_hosts named only by the config, checked strictly: connecting at all
    // proves the config's UserKnownHostsFile was read.
    let known_hosts = sshd.dir().join("alias_known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let config = write_ssh_config(
        sshd.dir(),
        &format!(
            "Host *.example.invalid\n    Port 1\n\n{}",
            host_block("testalias", &sshd, sshd.client_key_path(), &known_hosts)
        ),
    );
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let mut extra = FROM_CONFIG_ONLY.to_vec();
    extra.extend([
        ("MCP_SSH_HOSTNAME", "testalias"),
        ("MCP_SSH_CONFIG", config.as_str()),
        ("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes"),
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
    ]);
    let h = Harness::start_with(sshd, &extra).await;

    // MCP_SSH_HOSTNAME names the alias: a command connects on demand.
    let out = h.exec(SERVER_PORT).await;
    assert_eq!(out["stdout"], format!("{}\n", h.sshd.port()), "{out}");

    // ssh_connect with the alias (as `host` or `hostname`) reuses that session, named
    // after the alias.
    let connect = h.ok("ssh_connect", json!({"host": "testalias"})).await;
    assert_eq!(connect["session"], "testalias", "{connect}");
    let connect = h.ok("ssh_connect", json!({"hostname": "testalias"})).await;
    assert_eq!(connect["session"], "testalias", "{connect}");
    assert_eq!(connect["host"], "127.0.0.1", "{connect}");
    assert_eq!(connect["port"], h.sshd.port(), "{connect}");
    assert_eq!(connect["username"], "mcpssh-test", "{connect}");
    assert_eq!(connect["reused"], true, "{connect}");
    assert_eq!(connect["new_host_key_recorded"], false, "{connect}");
    let who = h.exec("id -un").await;
    assert_eq!(who["stdout"], "mcpssh-test\n", "{who}");
    assert_eq!(h.sshd.count_sessions(), 1);
}

/// A harness serving `target` reached through `jump` by `~/.ssh/config` (aliases
/// `jumpalias` and `target`, the latter with `ProxyJump jumpalias`, both with the jump
/// host's client key, which the target is made to accept), trusting the host keys in
/// `known_hosts_text` (written to the target's `jump_known_hosts`), with `env` added.
/// Returns the harness, that known_hosts file and the empty home the server runs with.
async fn through_jump_host(
    jump: &Sshd,
    target: Sshd,
    known_hosts_text: &str,
    env: &[(&str, &str)],
) -> (Harness, PathBuf, tempfile::TempDir) {
    let key = jump.client_key_path().to_path_buf();
    target.authorize_key(jump.client_public_key()).unwrap();
    let known_hosts = target.dir().join("jump_known_hosts");
    std::fs::write(&known_hosts, known_hosts_text).unwrap();
    let config = write_ssh_config(
        target.dir(),
        &format!(
            "{}\n{}    ProxyJump jumpalias\n",
            host_block("jumpalias", jump, &key, &known_hosts),
            host_block("target", &target, &key, &known_hosts),
        ),
    );
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let mut extra = FROM_CONFIG_ONLY.to_vec();
    extra.extend([
        ("MCP_SSH_HOSTNAME", ""),
        ("MCP_SSH_CONFIG", config.as_str()),
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
    ]);
    extra.extend_from_slice(env);
    let h = Harness::start_with(target, &extra).await;
    (h, known_hosts, home)
}

#[tokio::test]
async fn proxy_jump_reaches_the_target_through_the_jump_host() {
    let jump = Sshd::start().unwrap();
    let target = Sshd::start().unwrap();
    let trusted = format!(
        "{}\n{}\n",
        jump.known_hosts_line(),
        target.known_hosts_line()
    );
    let (h, _, _home) = through_jump_host(
        &jump,
        target,
        &trusted,
        &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes")],
    )
    .await;
    let connect = h.ok("ssh_connect", json!({"hostname": "target"})).await;
    assert_eq!(connect["session"], "target", "{connect}");
    assert_eq!(
        connect["host_key_fingerprint"],
        h.sshd.host_key_fingerprint(),
        "{connect}"
    );
    let out = h.exec(SERVER_PORT).await;
    assert_eq!(out["stdout"], format!("{}\n", h.sshd.port()), "{out}");
    // The jump host holds the connection and forwarded it to the target.
    assert_eq!(jump.count_sessions(), 1, "no session on the jump host");
    let forwarded = format!("target 127.0.0.1 port {}", h.sshd.port());
    assert!(
        jump.log().contains("direct-tcpip") && jump.log().contains(&forwarded),
        "the jump host did not forward to the target; its log:\n{}",
        jump.log()
    );
}

#[tokio::test]
async fn proxy_jump_refuses_a_wrong_jump_host_key() {
    let jump = Sshd::start().unwrap();
    let target = Sshd::start().unwrap();
    // The jump host is known under another key; the target's key is right.
    let (_, impostor) = generate_key(jump.dir(), "impostor_host_key").unwrap();
    let impostor_key = impostor.split_whitespace().take(2).collect::<Vec<_>>();
    let impostor_fingerprint =
        mcpssh_testbed::fingerprint_of(&jump.dir().join("impostor_host_key.pub")).unwrap();
    let trusted = format!(
        "[127.0.0.1]:{} {}\n{}\n",
        jump.port(),
        impostor_key.join(" "),
        target.known_hosts_line()
    );
    // accept-new (the default): a changed key is refused even so.
    let (h, known_hosts, _home) = through_jump_host(&jump, target, &trusted, &[]).await;
    let err = h
        .tool_error("ssh_connect", json!({"hostname": "target"}))
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(jump.host_key_fingerprint()) && message.contains(&impostor_fingerprint),
        "the refusal should name both fingerprints: {message}"
    );
    assert!(
        message.contains("jump_known_hosts"),
        "the refusal should name the known_hosts file to fix: {message}"
    );
    assert_eq!(err["error_kind"], "host-key", "{err}");
    // Nothing reached the target; nothing got past the jump host's key exchange.
    assert!(
        !h.sshd.log().contains("Accepted publickey"),
        "the target was logged into despite the wrong jump host key"
    );
    assert!(
        !jump.log().contains("Accepted publickey"),
        "mcpssh authenticated to a jump host whose key it refused"
    );
    // The known_hosts file is left as it was (the changed key is not recorded).
    let kept = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(kept.contains(&impostor_key.join(" ")), "{kept}");
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

/// Session channels open now on the sshd: each one's `sshd: ...@notty` child runs a
/// session, and the log says `channel N: free` when one ends. Counted from the log:
/// `server_input_channel_open: ctype session` minus `free: server-session`.
fn open_session_channels(sshd: &Sshd) -> (usize, usize) {
    let log = sshd.log();
    let opened = log
        .matches("server_input_channel_open: ctype session")
        .count();
    let freed = log.matches("free: server-session").count();
    (opened, freed)
}

/// Session channels sshd refused because `MaxSessions` were open (its `no more sessions`
/// error).
fn refused_session_channels(sshd: &Sshd) -> usize {
    sshd.log().matches("no more sessions").count()
}

/// Channel opens mcpssh tried again after a refusal (its debug log).
fn retried_channel_opens(server: &McpServer) -> usize {
    server.stderr().matches("channel refused; retrying").count()
}

#[tokio::test]
async fn two_hundred_concurrent_commands_queue_under_max_sessions_and_leak_nothing() {
    let sshd = Sshd::builder()
        .config_line("MaxSessions 10")
        .start()
        .unwrap();
    let h = Harness::start_with(sshd, &[]).await;
    h.exec("true").await;
    let started = Instant::now();
    // Each command holds its channel for a moment (a real process to look for, too):
    // `sleep 0.1000` ... `sleep 0.1199`.
    let running = "^sleep 0\\.1[0-9]{3}$";
    let calls = (0..200).map(|i| {
        let name = h.name("ssh_execute");
        let server = &h.server;
        async move {
            server
                .call_tool(
                    &name,
                    json!({"command": format!("sleep 0.1{i:03}; echo {i}")}),
                )
                .await
                .unwrap()
        }
    });
    let (results, seen_running) = tokio::join!(
        futures::future::join_all(calls),
        h.wait_present(running, Duration::from_secs(60))
    );
    assert!(seen_running, "no command was ever seen running");
    let mut failed = Vec::new();
    for (i, r) in results.iter().enumerate() {
        if r.is_error() || r.structured()["stdout"] != format!("{i}\n") {
            failed.push(format!("{i}: {}", r.summary()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 200 calls failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    eprintln!("200 concurrent commands took {:?}", started.elapsed());
    assert_eq!(h.sshd.count_sessions(), 1, "one connection for all calls");
    // The calls waited for a free channel instead of hammering the server: a refused open
    // is tried again (for up to 10 s), which alone would make every call succeed.
    let (refused, retried) = (
        refused_session_channels(&h.sshd),
        retried_channel_opens(&h.server),
    );
    eprintln!("sshd refused {refused} channel opens; mcpssh retried {retried}");
    // Queued, an open is refused only in the moment after a channel closed and before sshd
    // freed its slot (about one call in three here); unqueued, 200 calls at once were
    // refused over 2000 times.
    assert!(
        refused < 400 && retried < 400,
        "the calls were not queued under MaxSessions: sshd refused {refused} channel opens, \
         mcpssh retried {retried}"
    );

    // No channel stays open on the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (opened, freed) = open_session_channels(&h.sshd);
        if opened == freed && opened >= 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sshd has {} session channels open after all calls ended ({opened} opened, {freed} freed)",
            opened.saturating_sub(freed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        h.wait_gone(running, Duration::from_secs(5)).await,
        "commands outlived their calls: {:?}",
        h.sshd.processes_matching(running)
    );
    // The full MaxSessions is still free: 10 commands run at the same time.
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let name = h.name("ssh_execute");
            let server = &h.server;
            async move {
                server
                    .call_tool(&name, json!({"command": format!("sleep 3.{i}7")}))
                    .await
                    .unwrap()
            }
        })
        .collect();
    let watcher = async {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let n = h.sshd.processes_matching("^sleep 3\\.[0-9]7$").len();
            if n == 10 {
                return true;
            }
            if Instant::now() > deadline {
                eprintln!("at most {n} of 10 sleeps at once");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (results, all_at_once) = tokio::join!(futures::future::join_all(calls), watcher);
    for r in &results {
        assert!(!r.is_error(), "{}", r.summary());
    }
    assert!(
        all_at_once,
        "10 channels could not be open at once afterwards"
    );
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
