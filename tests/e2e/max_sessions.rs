//! The server's `MaxSessions`: two hundred concurrent commands on one connection queue for
//! a free channel instead of hammering the server, and leave no channel (but the one kept
//! ready) or process behind.

use std::time::{Duration, Instant};

use mcpssh_testbed::{CallToolResultExt, McpServer, Sshd};
use serde_json::json;

use crate::common::Harness;

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

    // No channel stays open on the server but, at most, the one kept ready for the next
    // command (opened only while the connection has slots to spare).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (opened, freed) = h.sshd.session_channels();
        if opened <= freed + 1 && opened >= 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sshd has {} session channels open after all calls ended, at most one kept ready expected ({opened} opened, {freed} freed)",
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
