//! Transfers that succeed: binary files round trip byte for byte (small ones and 256 MiB),
//! large files spread over extra SFTP sessions (or use one when the server allows no
//! more), and progress is reported up to the full size.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use mcpssh_testbed::{CallToolResultExt, Sshd, test_user_ids};
use serde_json::json;

use super::{Files, MIB, check_transfer, random_file, same_bytes, temp_files};

#[tokio::test]
async fn small_binary_files_round_trip_byte_for_byte() {
    let f = Files::start().await;
    let (uid, _) = test_user_ids().unwrap();
    for (i, len) in [0, 1, MIB + 1].into_iter().enumerate() {
        let src = f.local(&format!("src{i}.bin"));
        random_file(&src, len);
        let remote = f.remote(&format!("remote{i}.bin"));
        let out = f.upload(&src, &remote, json!({})).await;
        check_transfer(&out, len, &src, &remote, "none");
        assert!(same_bytes(&src, &remote), "{len} bytes: the upload differs");
        assert_eq!(
            fs::metadata(&remote).unwrap().uid(),
            uid,
            "written as the SSH user"
        );

        let back = f.local(&format!("back{i}.bin"));
        let out = f.download(&back, &remote, json!({})).await;
        check_transfer(&out, len, &back, &remote, "none");
        assert!(same_bytes(&src, &back), "{len} bytes: the download differs");
    }
    assert!(temp_files(&f.scratch()).is_empty());
    assert!(temp_files(f.local.path()).is_empty());
}

#[tokio::test]
async fn a_256_mib_file_round_trips_byte_for_byte() {
    let f = Files::start().await;
    f.round_trip("big.bin", 256 * MIB).await;
}

/// SFTP sessions the server started so far (`Starting session: subsystem 'sftp'` in its log).
fn sftp_sessions(sshd: &Sshd) -> usize {
    sshd.log()
        .matches("Starting session: subsystem 'sftp'")
        .count()
}

#[tokio::test]
async fn large_transfers_spread_over_extra_sftp_sessions_small_ones_do_not() {
    let f = Files::start().await;
    f.round_trip("small.bin", MIB).await;
    assert_eq!(
        sftp_sessions(&f.h.sshd),
        1,
        "a 1 MiB transfer used more than the shared SFTP session"
    );
    // Sessions that ended before the big transfer: the login-shell probe's exec.
    let ended_before = ended_sessions(&f.h.sshd);
    f.round_trip("big.bin", 40 * MIB).await;
    assert_eq!(
        sftp_sessions(&f.h.sshd),
        5,
        "the 40 MiB upload and download each opened two extra lanes"
    );
    // The extra lanes were closed and their sftp-server processes ended (sshd logs
    // `session_exit_message: session N channel N pid P` when it reaps one); the shared
    // session stays open.
    let deadline = Instant::now() + Duration::from_secs(10);
    while ended_sessions(&f.h.sshd) < ended_before + 4 {
        assert!(
            Instant::now() < deadline,
            "extra lanes still running: {} of 4 ended",
            ended_sessions(&f.h.sshd) - ended_before
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ended_sessions(&f.h.sshd),
        ended_before + 4,
        "the shared session ended too"
    );
}

/// Sessions whose process sshd has reaped (`session_exit_message: session` lines).
fn ended_sessions(sshd: &Sshd) -> usize {
    sshd.log().matches("session_exit_message: session").count()
}

#[tokio::test]
async fn large_transfers_work_on_one_session_when_the_server_allows_no_more() {
    // MaxSessions 1: the shared SFTP session takes the only slot, extra lanes are refused.
    let sshd = Sshd::builder()
        .config_line("MaxSessions 1")
        .start()
        .expect("starting sshd");
    let f = Files::start_with(sshd, &[]).await;
    f.round_trip("big.bin", 24 * MIB).await;
    assert_eq!(sftp_sessions(&f.h.sshd), 1);
}

#[tokio::test]
async fn transfers_report_progress_up_to_the_full_size() {
    let f = Files::start().await;
    let len = 30 * MIB;
    let src = f.local("p.bin");
    random_file(&src, len);
    let remote = f.remote("p.bin");
    let back = f.local("back-p.bin");
    for (tool, local) in [("scp_upload", &src), ("scp_download", &back)] {
        let call = f.start_transfer(tool, local, &remote).await;
        let token = call.progress_token().clone();
        let result = call.wait().await.unwrap();
        f.h.check_result_shape(tool, &result);
        check_transfer(&result.structured(), len, local, &remote, "none");
        // The server forwards progress from a task of its own: the final report may come
        // after the result.
        let progress =
            f.h.server
                .progress_until(&token, Duration::from_secs(10), |p| {
                    p.last()
                        .is_some_and(|l| l.total.is_some_and(|total| l.progress >= total))
                })
                .await
                .unwrap_or_else(|e| panic!("{tool}: no report of completion: {e:#}"));
        assert!(!progress.is_empty(), "{tool}: no progress for 30 MiB");
        assert!(
            progress.windows(2).all(|w| w[0].progress < w[1].progress),
            "{tool}: progress must increase with each notification: {progress:?}"
        );
        let last = progress.last().unwrap();
        assert_eq!(last.progress, len as f64, "{tool}: {progress:?}");
        assert_eq!(last.total, Some(len as f64), "{tool}: {progress:?}");
    }
    assert!(same_bytes(&src, &back));
}
