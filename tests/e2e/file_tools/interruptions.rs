//! Interrupted transfers leave nothing half-written: the sshd or `mcpssh` killed
//! mid-upload or mid-download (and no temporary file left after the next run), and
//! cancelled transfers.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use mcpssh_testbed::{CallToolResultExt, McpServer, PendingCall};
use serde_json::{Value, json};

use super::{Files, MIB, check_transfer, names, random_file, same_bytes, temp_files};
use crate::common::{bin, check_error_shape};

/// Waits until a temporary file in `dir` has at least `min_bytes`; returns its size.
async fn wait_for_temp(dir: &Path, min_bytes: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        for name in temp_files(dir) {
            if let Ok(m) = fs::metadata(dir.join(&name))
                && m.len() >= min_bytes
            {
                return m.len();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no temporary file of {min_bytes}+ bytes appeared in {} within {timeout:?}: {:?}",
            dir.display(),
            names(dir)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `dir` holds no temporary file; false on timeout.
async fn temps_gone(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if temp_files(dir).is_empty() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pending call's outcome within `timeout`: it must end as a tool error.
async fn expect_tool_error(call: PendingCall, timeout: Duration) -> Value {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, call.wait_raw())
        .await
        .unwrap_or_else(|_| panic!("the call did not return within {timeout:?}"))
        .expect("the call got no answer");
    let result = result.unwrap_or_else(|e| panic!("a JSON-RPC error instead of a tool error: {e}"));
    assert!(
        result.is_error(),
        "the interrupted transfer succeeded after {:?}: {}",
        started.elapsed(),
        result.summary()
    );
    check_error_shape(&result)
}

/// How soon a transfer must fail once its connection is gone.
const PROMPTLY: Duration = Duration::from_secs(5);

/// Where a kill test interrupts a 256 MiB transfer: well into it.
const KILL_AT: u64 = 8 * MIB;

#[tokio::test]
async fn killing_the_sshd_mid_upload_leaves_no_partial_file() {
    let mut f = Files::start().await;
    let src = f.local("big.bin");
    random_file(&src, 256 * MIB);
    let dst = f.remote("big.bin");
    f.h.exec("true").await; // connected before the transfer starts
    let call = f.start_transfer("scp_upload", &src, &dst).await;
    let seen = wait_for_temp(&f.scratch(), KILL_AT, Duration::from_secs(60)).await;
    let killed = Instant::now();
    f.h.sshd.stop();
    let err = expect_tool_error(call, Duration::from_secs(60)).await;
    let took = killed.elapsed();
    eprintln!(
        "killed sshd at a temporary file of {seen} bytes; error after {took:?}: {err}; left: {:?}",
        names(&f.scratch())
    );
    assert!(!dst.exists(), "the destination exists after the kill");

    // The next run (the same mcpssh, the sshd back) removes what the kill left.
    f.h.sshd.restart().unwrap();
    let small = f.local("small.bin");
    random_file(&small, 1000);
    let out = f.upload(&small, &f.remote("next.bin"), json!({})).await;
    check_transfer(&out, 1000, &small, &f.remote("next.bin"), "none");
    assert_eq!(
        names(&f.scratch()),
        ["next.bin"],
        "no temporary file after the next run"
    );
    assert!(!dst.exists());
    assert!(
        took < PROMPTLY,
        "the upload's error came {took:?} after the sshd died: {err}"
    );
}

#[tokio::test]
async fn killing_mcpssh_mid_upload_leaves_no_partial_file() {
    let mut f = Files::start().await;
    let src = f.local("big.bin");
    random_file(&src, 256 * MIB);
    let dst = f.remote("big.bin");
    let call = f.start_transfer("scp_upload", &src, &dst).await;
    let seen = wait_for_temp(&f.scratch(), KILL_AT, Duration::from_secs(60)).await;
    let pid = f.h.server.pid().expect("the server's pid");
    // SAFETY: kill(2) of the mcpssh process this test spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.h.server.is_running() {
        assert!(Instant::now() < deadline, "mcpssh survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(call);
    eprintln!(
        "killed mcpssh at a temporary file of {seen} bytes; left: {:?}",
        names(&f.scratch())
    );
    assert!(!dst.exists(), "the destination exists after the kill");

    // A fresh server: its first transfer to this host removes the leftover.
    f.h.server = McpServer::spawn(bin(), f.env()).await.unwrap();
    let small = f.local("small.bin");
    random_file(&small, 1000);
    let out = f.upload(&small, &f.remote("next.bin"), json!({})).await;
    check_transfer(&out, 1000, &small, &f.remote("next.bin"), "none");
    assert_eq!(
        names(&f.scratch()),
        ["next.bin"],
        "no temporary file after the next run"
    );
    // And the interrupted upload, done again, completes.
    let out = f.upload(&src, &dst, json!({})).await;
    check_transfer(&out, 256 * MIB, &src, &dst, "none");
    assert!(same_bytes(&src, &dst));
    assert_eq!(names(&f.scratch()), ["big.bin", "next.bin"]);
}

#[tokio::test]
async fn killing_the_sshd_mid_download_leaves_no_local_partial_file() {
    let mut f = Files::start().await;
    let remote = f.remote_random("big.bin", 256 * MIB);
    let dst = f.local("big.bin");
    f.h.exec("true").await;
    let call = f.start_transfer("scp_download", &dst, &remote).await;
    wait_for_temp(f.local.path(), KILL_AT, Duration::from_secs(60)).await;
    let killed = Instant::now();
    f.h.sshd.stop();
    let err = expect_tool_error(call, Duration::from_secs(60)).await;
    let took = killed.elapsed();
    assert!(
        took < PROMPTLY,
        "the download's error came {took:?} after the sshd died: {err}"
    );
    // The local side is reachable: the host removes its temporary file itself.
    assert!(
        names(f.local.path()).is_empty(),
        "left behind: {:?}",
        names(f.local.path())
    );
}

#[tokio::test]
async fn killing_mcpssh_mid_download_leaves_nothing_after_the_next_run() {
    let mut f = Files::start().await;
    let remote = f.remote_random("big.bin", 256 * MIB);
    let dst = f.local("big.bin");
    let call = f.start_transfer("scp_download", &dst, &remote).await;
    let seen = wait_for_temp(f.local.path(), KILL_AT, Duration::from_secs(60)).await;
    let pid = f.h.server.pid().expect("the server's pid");
    // SAFETY: kill(2) of the mcpssh process this test spawned.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.h.server.is_running() {
        assert!(Instant::now() < deadline, "mcpssh survived SIGKILL");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(call);
    eprintln!(
        "killed mcpssh at a local temporary file of {seen} bytes; left: {:?}",
        names(f.local.path())
    );
    assert!(!dst.exists(), "the destination exists after the kill");

    f.h.server = McpServer::spawn(bin(), f.env()).await.unwrap();
    let small = f.remote_random("small.bin", 1000);
    let out = f.download(&f.local("small.bin"), &small, json!({})).await;
    check_transfer(&out, 1000, &f.local("small.bin"), &small, "none");
    assert_eq!(
        names(f.local.path()),
        ["small.bin"],
        "no temporary file after the next run"
    );
}

#[tokio::test]
async fn cancelled_transfers_leave_no_partial_file() {
    let f = Files::start().await;
    let src = f.local("big.bin");
    random_file(&src, 256 * MIB);
    let dst = f.remote("big.bin");

    let call = f.start_transfer("scp_upload", &src, &dst).await;
    wait_for_temp(&f.scratch(), 1, Duration::from_secs(60)).await;
    call.cancel(Some("changed my mind".into())).await.unwrap();
    assert!(
        temps_gone(&f.scratch(), Duration::from_secs(10)).await,
        "temporary files left after a cancelled upload: {:?}",
        names(&f.scratch())
    );
    assert!(!dst.exists(), "a cancelled upload published its file");

    let back = f.local("back.bin");
    let call = f
        .start_transfer("scp_download", &back, &f.remote_random("r.bin", 256 * MIB))
        .await;
    wait_for_temp(f.local.path(), 1, Duration::from_secs(60)).await;
    call.cancel(None).await.unwrap();
    assert!(
        temps_gone(f.local.path(), Duration::from_secs(10)).await,
        "temporary files left after a cancelled download: {:?}",
        names(f.local.path())
    );
    assert!(!back.exists(), "a cancelled download published its file");

    // The server carries on; the same upload completes when not cancelled.
    f.h.assert_still_serving().await;
    let out = f.upload(&src, &dst, json!({})).await;
    check_transfer(&out, 256 * MIB, &src, &dst, "none");
    assert_eq!(names(&f.scratch()), ["big.bin", "r.bin"]);
}
