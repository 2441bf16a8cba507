//! ssh_execute with accounts whose login shell is bash, dash, zsh, fish or tcsh: the
//! command runs with the semantics of that shell, exactly as `ssh host 'command'` runs it
//! (same output, same exit code), and `env`, `working_directory` and timeouts work in
//! every family. A login shell that never runs mcpssh's set-up is an error, never a
//! silent success.

use std::time::Duration;

use mcpssh_testbed::rmcp::model::ReadResourceRequestParams;
use mcpssh_testbed::{Sshd, ensure_shell_user, processes_of_user_matching};
use serde_json::{Value, json};

use crate::common::Harness;

/// A daemon that lets `user` in, and mcpssh logged in as that user.
async fn harness_as(user: &str) -> Harness {
    let sshd = Sshd::builder().allow_user(user).start().unwrap();
    Harness::start_with(sshd, &[("MCP_SSH_USERNAME", user)]).await
}

/// Waits until `user` has (`present`) or has no process matching `pattern`.
async fn wait_for_process(user: &str, pattern: &str, present: bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if processes_of_user_matching(user, pattern).is_empty() != present {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// What plain OpenSSH prints and exits with for `command` as `user`.
fn openssh(h: &Harness, user: &str, command: &str) -> (String, Option<i32>) {
    let out = h.sshd.ssh_command_as(user, command).output().unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.code())
}

/// Checks one login shell: family, a command in its own syntax identical to OpenSSH,
/// env, working directory, and a timeout that kills the remote command.
async fn check_shell(name: &str, path: &str, family: &str, own_syntax: &str, sleep: &str) {
    let user = ensure_shell_user(name, path).unwrap();
    let h = harness_as(&user).await;

    let connect = h.ok("ssh_connect", json!({})).await;
    assert_eq!(connect["shell"]["family"], family, "{connect}");
    assert_eq!(connect["shell"]["path"], path, "{connect}");
    let uri = format!("mcpssh://sessions/{}", connect["session"].as_str().unwrap());
    let resource = h
        .server
        .peer()
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap();
    let contents = serde_json::to_value(&resource).unwrap()["contents"][0]["text"].clone();
    let session: Value = serde_json::from_str(contents.as_str().unwrap()).unwrap();
    assert_eq!(session["shell"]["family"], family, "{session}");

    // The user's command, in the shell's own syntax: the same as OpenSSH's.
    let (expected_out, expected_code) = openssh(&h, &user, own_syntax);
    let out = h.exec(own_syntax).await;
    assert_eq!(out["stdout"], expected_out, "{name}: {out}");
    assert_eq!(
        out["exit_code"].as_i64(),
        expected_code.map(i64::from),
        "{name}: {out}"
    );
    assert_eq!(
        expected_code,
        Some(3),
        "{name}: the command ends with exit 3"
    );

    let env = h
        .ok(
            "ssh_execute",
            json!({"command": "echo \"$GREETING\"", "env": {"GREETING": "hello there, it's me"}}),
        )
        .await;
    assert_eq!(env["stdout"], "hello there, it's me\n", "{name}: {env}");

    let dir = h
        .ok(
            "ssh_execute",
            json!({"command": "pwd", "working_directory": "/usr/share"}),
        )
        .await;
    assert_eq!(dir["stdout"], "/usr/share\n", "{name}: {dir}");
    let missing = h
        .ok(
            "ssh_execute",
            json!({"command": "pwd", "working_directory": "/nonexistent/mcpssh"}),
        )
        .await;
    assert_eq!(missing["exit_code"], 126, "{name}: {missing}");
    assert_eq!(missing["stdout"], "", "{name}: {missing}");

    let call = h
        .server
        .start_call(
            &h.name("ssh_execute"),
            json!({"command": sleep, "timeout_seconds": 2}),
        )
        .await
        .unwrap();
    assert!(
        wait_for_process(&user, sleep, true).await,
        "{name}: `{sleep}` never ran"
    );
    let timed_out: Value = serde_json::to_value(call.wait().await.unwrap())
        .map(|v| v["structuredContent"].clone())
        .unwrap();
    assert_eq!(timed_out["timed_out"], true, "{name}: {timed_out}");
    assert!(
        wait_for_process(&user, sleep, false).await,
        "{name}: `{sleep}` outlived its timeout"
    );
}

#[tokio::test]
async fn bash_runs_commands_as_openssh_does() {
    check_shell(
        "bash",
        "/bin/bash",
        "posix",
        "echo \"$0\"; x=5; echo \"x is $x\"; [[ $x == 5 ]] && echo double-brackets; exit 3",
        "sleep 38.1",
    )
    .await;
}

#[tokio::test]
async fn dash_runs_commands_as_openssh_does() {
    check_shell(
        "dash",
        "/bin/dash",
        "posix",
        "echo \"$0\"; x=5; echo \"x is $x\"; exit 3",
        "sleep 38.2",
    )
    .await;
}

#[tokio::test]
async fn zsh_runs_commands_as_openssh_does() {
    check_shell(
        "zsh",
        "/usr/bin/zsh",
        "posix",
        "echo \"$0\"; x=(a b c); echo \"x has ${#x} words, the second is $x[2]\"; exit 3",
        "sleep 38.3",
    )
    .await;
}

#[tokio::test]
async fn fish_runs_commands_as_openssh_does() {
    check_shell(
        "fish",
        "/usr/bin/fish",
        "fish",
        "set x 5; echo \"x is $x\"; echo (math $x + 1); and echo status $status; exit 3",
        "sleep 38.4",
    )
    .await;
}

#[tokio::test]
async fn tcsh_runs_commands_as_openssh_does() {
    check_shell(
        "tcsh",
        "/usr/bin/tcsh",
        "csh",
        "set x = 5; echo \"x is $x\"; if ($x == 5) echo csh-if; exit 3",
        "sleep 38.5",
    )
    .await;
}

#[tokio::test]
async fn a_login_shell_that_ignores_the_command_is_an_error_not_a_success() {
    // A "shell" that exits 0 without running anything: what fish did with the old
    // wrapper (`$$ is not the pid`, exit 0, the command never run).
    let dir = tempfile::Builder::new()
        .prefix("mcpssh-fake-shell-")
        .tempdir()
        .unwrap();
    let fake = dir.path().join("fake-shell");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'fake shell: not running that' >&2\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = ensure_shell_user("fakeshell", fake.to_str().unwrap()).unwrap();
    let h = harness_as(&user).await;
    let err = h
        .tool_error(
            "ssh_execute",
            json!({"command": "echo ran > /tmp/mcpssh-fake-ran"}),
        )
        .await;
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("did not run mcpssh's command set-up") && message.contains("fake shell"),
        "the error names the cause: {err}"
    );
    assert!(!std::path::Path::new("/tmp/mcpssh-fake-ran").exists());
}

#[tokio::test]
async fn a_long_command_reaches_fish_and_tcsh_intact() {
    // The wrapper for these shells is octal-escaped: a long command must survive it.
    let long = format!("echo {}", "abc".repeat(10_000));
    for (name, path) in [("fish", "/usr/bin/fish"), ("tcsh", "/usr/bin/tcsh")] {
        let user = ensure_shell_user(name, path).unwrap();
        let h = harness_as(&user).await;
        let out = h.exec(&long).await;
        assert_eq!(
            out["stdout"].as_str().map(str::len),
            Some(30_001),
            "{name}: {}",
            out["stderr"]
        );
    }
}
