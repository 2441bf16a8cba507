//! The channel kept ready: after a command, the connection holds exactly one session
//! channel open for the next one, and the next command runs on it (its exec reaches the
//! server before any new channel is opened).

use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;

use crate::common::Harness;

/// Waits until the server has exactly `open` session channels open; the counts seen last
/// when it does not within 10 s.
async fn wait_open_channels(sshd: &Sshd, open: usize) -> Result<(), (usize, usize)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (opened, freed) = sshd.session_channels();
        if opened == freed + open {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err((opened, freed));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_channel_is_kept_ready_and_the_next_command_runs_on_it() {
    let h = Harness::start().await;
    h.exec("true").await;
    wait_open_channels(&h.sshd, 1)
        .await
        .unwrap_or_else(|(o, f)| panic!("not one channel kept ready: {o} opened, {f} freed"));

    for i in 0..5 {
        let log_before = h.sshd.log().len();
        let out = h.exec(&format!("echo {i}")).await;
        assert_eq!(out["stdout"], format!("{i}\n"), "{out}");
        wait_open_channels(&h.sshd, 1)
            .await
            .unwrap_or_else(|(o, f)| {
                panic!("after command {i}, not exactly one channel kept: {o} opened, {f} freed")
            });
        // The command's exec request came before any channel was opened for it: it ran
        // on the channel opened ahead, and the next one was opened after.
        let log = h.sshd.log()[log_before..].to_string();
        let exec = log
            .find("request exec")
            .expect("the exec request is logged");
        let open = log
            .find("server_input_channel_open: ctype session")
            .expect("the next channel is opened");
        assert!(
            exec < open,
            "command {i} opened a channel of its own before its exec:\n{log}"
        );
    }
}
