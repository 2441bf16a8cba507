//! `~/.ssh/config` as OpenSSH reads it: an alias giving host, port, user, key and
//! known_hosts, and ProxyJump through a jump host whose key is checked like any other.

use std::path::PathBuf;

use mcpssh_testbed::{Sshd, generate_key};
use serde_json::json;

use crate::client_setup::{
    FROM_CONFIG_ONLY, NO_AGENT, SERVER_PORT, empty_home, host_block, write_ssh_config,
};
use crate::common::Harness;

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

/// Under `ask`, a jump host's new key is asked about before the target's, one question
/// each: with a client that cannot ask, the jump host's fingerprint is refused first; once
/// the user has added it, the target's is; nothing is ever recorded by mcpssh itself.
#[tokio::test]
async fn under_ask_each_new_key_on_the_way_is_put_to_the_user_in_turn() {
    let jump = Sshd::start().unwrap();
    let target = Sshd::start().unwrap();
    let (h, known_hosts, _home) = through_jump_host(
        &jump,
        target,
        "",
        &[("MCP_SSH_STRICT_HOST_KEY_CHECKING", "ask")],
    )
    .await;
    let err = h
        .tool_error("ssh_connect", json!({"hostname": "target"}))
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(jump.host_key_fingerprint()) && message.contains("cannot ask"),
        "the jump host's key comes first: {message}"
    );
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), "");

    std::fs::write(&known_hosts, format!("{}\n", jump.known_hosts_line())).unwrap();
    let err = h
        .tool_error("ssh_connect", json!({"hostname": "target"}))
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains(h.sshd.host_key_fingerprint()),
        "then the target's: {message}"
    );
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        format!("{}\n", jump.known_hosts_line()),
        "nothing is recorded without the user"
    );
}
