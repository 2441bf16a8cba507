//! `ssh_execute`: exit codes, streams, stdin, env, working directory, pty, signals,
//! encodings, progress, concurrency.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use mcpssh_testbed::CallToolResultExt;
use serde_json::json;

use crate::common::Harness;

#[tokio::test]
async fn exit_code_and_both_streams() {
    let h = Harness::start().await;
    let out = h.exec("echo hi; echo err >&2; exit 3").await;
    assert_eq!(out["exit_code"], 3, "{out}");
    assert_eq!(out["stdout"], "hi\n");
    assert_eq!(out["stderr"], "err\n");
    assert_eq!(out["success"], false, "exit 3 is not success");
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["exit_signal"], json!(null));
    assert_eq!(out["stdout_total_bytes"], 3);
    assert_eq!(out["stderr_total_bytes"], 4);
    assert_eq!(out["stdout_cut_bytes"], 0);
    assert_eq!(out["stderr_cut_bytes"], 0);
    assert!(out["duration_ms"].as_u64().is_some(), "{out}");

    let ok = h.exec("true").await;
    assert_eq!(ok["exit_code"], 0);
    assert_eq!(ok["success"], true);
    assert_eq!(ok["stdout"], "");
}

#[tokio::test]
async fn execute_connects_on_demand() {
    let h = Harness::start().await;
    assert_eq!(
        h.sshd.count_sessions(),
        0,
        "no connection before the first call"
    );
    let out = h.exec("id -un; echo $0").await;
    assert_eq!(out["stdout"], "mcpssh-test\nsh\n", "{out}");
    // The session opened on demand is the one disconnect closes.
    let bye = h.ok("ssh_disconnect", json!({})).await;
    assert_eq!(bye["was_connected"], true, "{bye}");
}

#[tokio::test]
async fn commands_reuse_one_connection() {
    let h = Harness::start().await;
    for i in 0..5 {
        let out = h.exec(&format!("echo {i}")).await;
        assert_eq!(out["stdout"], format!("{i}\n"));
    }
    assert_eq!(
        h.sshd.count_sessions(),
        1,
        "one SSH connection for all commands"
    );
}

#[tokio::test]
async fn stdin_is_fed_and_closed() {
    let h = Harness::start().await;
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "cat; echo end", "stdin": "line 1\nline 2\nünïcödé\n"}),
        )
        .await;
    assert_eq!(out["stdout"], "line 1\nline 2\nünïcödé\nend\n", "{out}");
    // Without stdin, a reader sees end-of-file at once rather than hanging.
    let started = Instant::now();
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "wc -c", "timeout_seconds": 10}),
        )
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "0", "{out}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn env_variables_apply() {
    let h = Harness::start().await;
    let out = h
        .ok(
            "ssh_execute",
            json!({
                "command": "printf '%s|%s|%s' \"$GREETING\" \"$_UNDER_1\" \"$QUOTED\"",
                "env": {"GREETING": "hello world", "_UNDER_1": "x", "QUOTED": "it's \"$HOME\" `id` $(id)"},
            }),
        )
        .await;
    assert_eq!(
        out["stdout"], "hello world|x|it's \"$HOME\" `id` $(id)",
        "values must arrive verbatim, unexpanded: {out}"
    );
}

#[tokio::test]
async fn working_directory_applies() {
    let h = Harness::start().await;
    let dir = h.sshd.scratch_dir().display().to_string();
    let out = h
        .ok(
            "ssh_execute",
            json!({"command": "pwd", "working_directory": dir}),
        )
        .await;
    assert_eq!(out["stdout"], format!("{dir}\n"), "{out}");

    // A directory that does not exist: the command does not run in the wrong place; it
    // ends with exit code 126 (as a shell's "cannot execute") and says why.
    let v = h
        .ok(
            "ssh_execute",
            json!({"command": "echo ran-anyway", "working_directory": "/nonexistent/mcpssh-dir"}),
        )
        .await;
    assert_eq!(v["exit_code"], 126, "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["stdout"], "", "the command must not run elsewhere: {v}");
    assert!(
        v["stderr"]
            .as_str()
            .unwrap()
            .contains("mcpssh: cannot change to the working directory"),
        "{v}"
    );
}

#[tokio::test]
async fn a_signal_is_reported() {
    let h = Harness::start().await;
    let out = h.exec("kill -TERM $$").await;
    assert_eq!(out["exit_signal"], "TERM", "{out}");
    assert_eq!(out["exit_code"], json!(null), "{out}");
    assert_eq!(out["success"], false);
}

#[tokio::test]
async fn pty_on_request() {
    let h = Harness::start().await;
    let with = h
        .ok("ssh_execute", json!({"command": "tty", "pty": true}))
        .await;
    assert!(
        with["stdout"].as_str().unwrap().starts_with("/dev/pts/"),
        "{with}"
    );
    let without = h.exec("tty").await;
    assert_ne!(without["exit_code"], 0, "no tty by default: {without}");
}

#[tokio::test]
async fn invalid_utf8_output_survives() {
    let h = Harness::start().await;
    let out = h
        .exec("printf 'a\\377b\\n'; printf '\\303\\251t\\303\\251' >&2")
        .await;
    assert_eq!(out["stdout"], "a\u{FFFD}b\n", "{out}");
    assert_eq!(
        out["stdout_total_bytes"], 4,
        "bytes are counted before replacement"
    );
    assert_eq!(out["stderr"], "été", "valid UTF-8 stays intact: {out}");
    assert_eq!(out["stderr_total_bytes"], 5);
}

#[tokio::test]
async fn binary_output_does_not_break_the_call() {
    let h = Harness::start().await;
    let out = h.exec("head -c 100000 /dev/urandom").await;
    assert_eq!(
        out["stdout_total_bytes"], 100000,
        "{}",
        out["stdout_total_bytes"]
    );
    assert_eq!(out["exit_code"], 0);
}

#[tokio::test]
async fn progress_notifications_for_a_long_command() {
    let h = Harness::start().await;
    h.exec("true").await; // connect and warm up first
    let call = h
        .server
        .start_call(
            &h.name("ssh_execute"),
            json!({"command": "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.25; done"}),
        )
        .await
        .unwrap();
    let token = call.progress_token().clone();
    let result = call.wait().await.unwrap();
    h.check_result_shape("ssh_execute", &result);
    let out = result.structured();
    assert_eq!(out["stdout"].as_str().unwrap().lines().count(), 8, "{out}");
    let progress = h.server.progress_for(&token);
    assert!(
        progress.len() >= 2,
        "expected progress notifications during a 2 s command, got {progress:?}"
    );
    for pair in progress.windows(2) {
        assert!(
            pair[1].progress > pair[0].progress,
            "progress must increase with each notification: {progress:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_commands_run_in_parallel() {
    let h = Harness::start().await;
    h.exec("true").await;
    // A barrier: each command checks in, then waits (up to 10 s) until all four have, and
    // reports how many it saw. Only commands running at the same time all see four.
    let barrier = h.sshd.scratch_dir().join("barrier");
    std::fs::create_dir(&barrier).unwrap();
    std::fs::set_permissions(&barrier, std::fs::Permissions::from_mode(0o777)).unwrap();
    let barrier = barrier.display().to_string();
    let calls = (0..4).map(|i| {
        let name = h.name("ssh_execute");
        let server = &h.server;
        let command = format!(
            "touch {barrier}/{i}; n=0; \
             while [ $(ls {barrier} | wc -l) -lt 4 ] && [ $n -lt 200 ]; do sleep 0.05; n=$((n+1)); done; \
             echo $(ls {barrier} | wc -l) {i}"
        );
        async move {
            server
                .call_tool(&name, json!({ "command": command }))
                .await
                .unwrap()
        }
    });
    let results = futures::future::join_all(calls).await;
    for (i, r) in results.iter().enumerate() {
        assert!(!r.is_error(), "{}", r.summary());
        assert_eq!(
            r.structured()["stdout"],
            format!("4 {i}\n"),
            "command {i} did not see all four running at once"
        );
    }
    h.assert_still_serving().await;
}
