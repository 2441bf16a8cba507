//! The harness checked against the plain OpenSSH client, independent of mcpssh.

use std::{
    net::TcpStream,
    process::Stdio,
    time::{Duration, Instant},
};

use mcpssh_testbed::{Sshd, TEST_USER, fingerprint_of, generate_key, sshd::SSHD};

#[test]
fn plain_ssh_logs_in_as_the_test_user_with_sh() {
    let sshd = Sshd::start().unwrap();
    assert_eq!(sshd.username(), TEST_USER);
    let out = sshd.ssh_run("id -un; echo $0; pwd").unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], TEST_USER, "{out}");
    assert_eq!(lines[1], "sh", "the login shell must be /bin/sh: {out}");
    assert_eq!(lines[2], format!("/home/{TEST_USER}"), "{out}");
}

/// A sanity bound (a hung login, not a slow one): exec latency is measured by
/// `cargo xtask bench` (the OpenSSH row).
#[test]
fn an_exec_round_trip_completes() {
    let sshd = Sshd::start().unwrap();
    sshd.ssh_run("true").unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        sshd.ssh_run("true").unwrap();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "an ssh exec took {took:?}");
    }
}

#[test]
fn host_key_facts_are_consistent() {
    let sshd = Sshd::start().unwrap();
    let fp = sshd.host_key_fingerprint();
    assert!(fp.starts_with("SHA256:"), "{fp}");
    assert_eq!(fingerprint_of(sshd.host_key_path()).unwrap(), fp);
    assert!(sshd.host_public_key().starts_with("ssh-ed25519 "));
    assert_eq!(
        sshd.known_hosts_line(),
        format!(
            "[127.0.0.1]:{} ssh-ed25519 {}",
            sshd.port(),
            sshd.host_public_key().split_whitespace().nth(1).unwrap()
        )
    );
    // The client's known_hosts starts out empty.
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts_path()).unwrap(),
        ""
    );
    // The fingerprint is what OpenSSH's client sees.
    let out = std::process::Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p", &sshd.port().to_string(), "127.0.0.1"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let scanned = String::from_utf8_lossy(&out.stdout);
    let key = sshd.host_public_key().split_whitespace().nth(1).unwrap();
    assert!(scanned.contains(key), "{scanned}");
}

/// The plain OpenSSH client, with nothing but the arguments (no config file), trusting a
/// new host key on first use: runs `command` as `user` at `host`:`port` with `key`,
/// recording host keys in `known_hosts`. Fails unless it exits 0; returns stdout.
fn ssh_accept_new(
    known_hosts: &str,
    key: &str,
    port: &str,
    user: &str,
    host: &str,
    command: &str,
) -> String {
    stdout_of(
        std::process::Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=accept-new",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={known_hosts}"))
            .args(["-i", key, "-p", port])
            .arg(format!("{user}@{host}"))
            .args(["--", command])
            .stdin(Stdio::null()),
    )
}

/// Runs `cmd`; fails unless it exits 0. Returns its stdout.
fn stdout_of(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn accept_new_records_the_key_in_the_given_known_hosts() {
    let sshd = Sshd::start().unwrap();
    ssh_accept_new(
        &sshd.known_hosts_path().display().to_string(),
        &sshd.client_key_path().display().to_string(),
        &sshd.port().to_string(),
        TEST_USER,
        "127.0.0.1",
        "true",
    );
    let known = std::fs::read_to_string(sshd.known_hosts_path()).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", sshd.port())),
        "{known}"
    );
}

#[test]
fn an_unknown_client_key_is_refused() {
    let sshd = Sshd::start().unwrap();
    let (other, _) = generate_key(sshd.dir(), "stranger").unwrap();
    let mut cmd = sshd.ssh_command("true");
    // A second -i: ssh tries both; use only the stranger by overriding with a fresh command.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut stranger = std::process::Command::new("ssh");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-i" {
            it.next();
            stranger.arg("-i").arg(&other);
        } else {
            stranger.arg(a);
        }
    }
    let out = stranger.stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The right key still works.
    assert!(cmd.output().unwrap().status.success());
}

#[test]
fn the_scratch_dir_belongs_to_the_test_user() {
    let sshd = Sshd::start().unwrap();
    let dir = sshd.scratch_dir().display().to_string();
    let out = sshd
        .ssh_run(&format!("cd {dir} && echo data > f && stat -c %U f"))
        .unwrap();
    assert_eq!(out.trim(), TEST_USER);
    assert_eq!(
        std::fs::read_to_string(sshd.scratch_dir().join("f")).unwrap(),
        "data\n"
    );
}

/// `remote_command` through the plain ssh client with `extra` options first.
fn ssh_with(sshd: &Sshd, extra: &[&str], remote_command: &str) -> std::process::Command {
    let plain = sshd.ssh_command(remote_command);
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(extra).args(plain.get_args()).stdin(Stdio::null());
    cmd
}

#[test]
fn extra_config_lines_apply() {
    let sshd = Sshd::builder()
        .config_line("MaxSessions 3")
        .config_line("AcceptEnv MCPSSH_*")
        .start()
        .unwrap();
    // sshd's own reading of its configuration (not the text the builder wrote).
    let effective = stdout_of(
        std::process::Command::new(SSHD)
            .arg("-T")
            .arg("-f")
            .arg(sshd.config_path()),
    );
    assert!(
        effective.lines().any(|l| l == "maxsessions 3"),
        "{effective}"
    );
    // AcceptEnv in effect on the running daemon: a variable it names arrives, another not.
    let received = stdout_of(
        ssh_with(
            &sshd,
            &["-o", "SendEnv=MCPSSH_PROBE OTHER_PROBE"],
            "printf '%s|%s' \"$MCPSSH_PROBE\" \"$OTHER_PROBE\"",
        )
        .env("MCPSSH_PROBE", "sent")
        .env("OTHER_PROBE", "sent"),
    );
    assert_eq!(received, "sent|");
}

#[test]
fn drop_stops_the_daemon_and_every_connection() {
    let sshd = Sshd::start().unwrap();
    let port = sshd.port();
    let pid = sshd.pid().unwrap();
    // A long command keeps a connection (and its per-connection sshd) alive.
    let mut client = sshd
        .ssh_command("sleep 41.37")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sshd.processes_matching("sleep 41.37").is_empty() {
        assert!(Instant::now() < deadline, "the remote sleep never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sshd.count_sessions() >= 1);
    assert!(!sshd.descendants().is_empty());
    drop(sshd);

    assert!(
        mcpssh_testbed::sshd::processes_matching("sleep 41.37").is_empty(),
        "the remote command survived the daemon"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists() || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z")
        }
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    let _ = client.wait();
}

#[test]
fn daemons_start_in_parallel() {
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| Sshd::start().unwrap()))
        .collect();
    let daemons: Vec<Sshd> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = daemons.iter().map(|d| d.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4);
    for d in &daemons {
        d.ssh_run("true").unwrap();
    }
}

/// The environment works: the plain OpenSSH client, given only what `mcp_env` says (host,
/// port, user, key, known_hosts), logs in to this daemon and records its key in that file.
#[test]
fn mcp_env_points_at_the_daemon() {
    let sshd = Sshd::start().unwrap();
    let env: std::collections::HashMap<_, _> = sshd.mcp_env().into_iter().collect();
    let who = ssh_accept_new(
        &env["MCP_SSH_KNOWN_HOSTS"],
        &env["MCP_SSH_KEY_FILENAME"],
        &env["MCP_SSH_PORT"],
        &env["MCP_SSH_USERNAME"],
        &env["MCP_SSH_HOSTNAME"],
        "id -un",
    );
    assert_eq!(who, format!("{TEST_USER}\n"));
    assert!(
        sshd.log()
            .contains(&format!("Accepted publickey for {TEST_USER}")),
        "this daemon did not see the login"
    );
    let key = sshd.host_public_key().split_whitespace().nth(1).unwrap();
    let known = std::fs::read_to_string(&env["MCP_SSH_KNOWN_HOSTS"]).unwrap();
    assert!(
        known.contains(key),
        "this daemon's key is not recorded: {known}"
    );
    assert!(std::path::Path::new(&env["MCP_SSH_CACHE_DIR"]).is_dir());
}
