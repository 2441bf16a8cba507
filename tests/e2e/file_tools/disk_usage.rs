//! `scp_disk_usage`, compared with what `statfs` and `df` say; paths never interpreted by
//! a shell; the `df` fallback when the server refuses `statvfs@openssh.com`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mcpssh_testbed::Sshd;
use serde_json::{Value, json};

use super::{Files, MIB, Tmpfs, random_file, run, s, statfs, temp_files, transfer_args};

/// `df -B1 --output=size,avail PATH`: (total bytes, available bytes).
fn df(path: &Path) -> (u64, u64) {
    let text = run(Command::new("df")
        .args(["-B1", "--output=size,avail"])
        .arg(path));
    let line = text.lines().nth(1).unwrap();
    let n: Vec<u64> = line
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (n[0], n[1])
}

/// One decimal, binary units, as the contract formats sizes.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

#[track_caller]
fn check_usage_consistent(out: &Value) {
    let total = out["total_bytes"].as_u64().unwrap();
    let free = out["free_bytes"].as_u64().unwrap();
    let avail = out["available_bytes"].as_u64().unwrap();
    let used = out["used_bytes"].as_u64().unwrap();
    assert_eq!(used, total.saturating_sub(free), "{out}");
    assert!(avail <= free && free <= total, "{out}");
    let pct = if used + avail == 0 {
        0.0
    } else {
        (used as f64 / (used + avail) as f64 * 1000.0).round() / 10.0
    };
    let got = out["percent_used"].as_f64().unwrap();
    assert!(
        (got - pct).abs() < 0.051,
        "percent_used {got}, expected {pct}: {out}"
    );
    for (key, n) in [
        ("total", total),
        ("used", used),
        ("free", free),
        ("available", avail),
    ] {
        assert_eq!(out[key], human(n), "{key}: {out}");
    }
}

#[tokio::test]
async fn disk_usage_matches_statfs_and_df() {
    let f = Files::start().await;
    // A tmpfs nobody else writes to: the numbers must be exact.
    let mnt = f.remote("fs");
    let _mount = Tmpfs::mount(&mnt, "8m");
    random_file(&mnt.join("three"), 3 * MIB);
    let (bsize, blocks, bfree, bavail) = statfs(&mnt);
    for path in [mnt.clone(), mnt.join("three")] {
        let out = f.h.ok("scp_disk_usage", json!({"path": s(&path)})).await;
        assert_eq!(out["path"], s(&path));
        assert_eq!(out["total_bytes"], bsize * blocks, "{out}");
        assert_eq!(out["free_bytes"], bsize * bfree, "{out}");
        assert_eq!(out["available_bytes"], bsize * bavail, "{out}");
        let (df_total, df_avail) = df(&path);
        assert_eq!(out["total_bytes"], df_total, "df -B1: {out}");
        assert_eq!(out["available_bytes"], df_avail, "df -B1: {out}");
        check_usage_consistent(&out);
        assert_eq!(out["total"], "8.0 MiB", "{out}");
        assert_eq!(out["used"], "3.0 MiB", "{out}");
        assert_eq!(out["available"], "5.0 MiB", "{out}");
        assert_eq!(out["percent_used"], 37.5, "{out}");
    }

    // The scratch directory's file system, which other tests write to meanwhile: the
    // total is exact, free space between what statfs says before and after.
    let scratch = f.scratch();
    let (bsize, blocks, free0, avail0) = statfs(&scratch);
    let out =
        f.h.ok(
            "scp_disk_usage",
            json!({"path": format!("{}/./fs/..", s(&scratch))}),
        )
        .await;
    let (_, _, free1, avail1) = statfs(&scratch);
    assert_eq!(out["path"], s(&scratch), "canonical path");
    assert_eq!(out["total_bytes"], bsize * blocks, "{out}");
    let slack = 64 * MIB;
    let within = |v: &Value, a: u64, b: u64| {
        let v = v.as_u64().unwrap();
        v + slack >= bsize * a.min(b) && v <= bsize * a.max(b) + slack
    };
    assert!(within(&out["free_bytes"], free0, free1), "{out}");
    assert!(within(&out["available_bytes"], avail0, avail1), "{out}");
    check_usage_consistent(&out);

    let home = f.h.ok("scp_disk_usage", json!({})).await;
    assert_eq!(home["path"], "/home/mcpssh-test");
    let err =
        f.h.tool_error("scp_disk_usage", json!({"path": s(&f.remote("missing"))}))
            .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
}

/// Paths that would run `touch MARKER` if a shell interpreted them.
fn evil_names(marker: &Path) -> Vec<String> {
    let m = s(marker);
    vec![
        format!("x'; touch {m} #"),
        format!("x\"; touch {m} #"),
        format!("x$(touch {m})"),
        format!("x`touch {m}`"),
        format!("x; touch {m}"),
    ]
}

fn marker_path() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    PathBuf::from(format!("/tmp/mcpssh-pwned-{}-{nanos}", std::process::id()))
}

/// `Starting session: command ...` lines in the sshd log: exec requests (the df fallback).
fn exec_sessions(sshd: &Sshd) -> usize {
    sshd.log().matches("Starting session: command").count()
}

#[tokio::test]
async fn disk_usage_paths_are_never_interpreted_by_a_shell() {
    let f = Files::start().await;
    let marker = marker_path();
    for name in evil_names(&marker) {
        let missing = f.remote(&name);
        let err =
            f.h.tool_error("scp_disk_usage", json!({"path": s(&missing)}))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{err}");
        // The marker's slashes make it a nested path: create all of it.
        fs::create_dir_all(&missing).unwrap();
        let out = f.h.ok("scp_disk_usage", json!({"path": s(&missing)})).await;
        assert_eq!(out["path"], s(&missing));
        check_usage_consistent(&out);
    }
    assert!(
        !marker.exists(),
        "a shell ran the path: {} exists",
        marker.display()
    );
}

/// With `statvfs@openssh.com` refused by the server (`sftp-server -P statvfs`), the host
/// falls back to `df` over an exec channel: the numbers still match, and a path with
/// shell syntax in it is passed safely.
#[tokio::test]
async fn disk_usage_df_fallback_is_exact_and_safe() {
    let sshd = Sshd::builder()
        .sftp_server("/usr/lib/openssh/sftp-server -P statvfs,fstatvfs")
        .start()
        .unwrap();
    let f = Files::start_with(sshd, &[]).await;
    let mnt = f.remote("fs");
    let _mount = Tmpfs::mount(&mnt, "8m");
    random_file(&mnt.join("three"), 3 * MIB);
    let (bsize, blocks, _, bavail) = statfs(&mnt);
    // Connected first: opening the session runs the login-shell probe over exec.
    f.h.ok("ssh_connect", json!({})).await;
    let execs = exec_sessions(&f.h.sshd);
    let out = f.h.ok("scp_disk_usage", json!({"path": s(&mnt)})).await;
    assert_eq!(
        exec_sessions(&f.h.sshd),
        execs + 1,
        "the fallback runs df over one exec channel"
    );
    // `df -Pk` counts KiB.
    assert_eq!(out["total_bytes"], bsize * blocks / 1024 * 1024, "{out}");
    assert_eq!(
        out["available_bytes"],
        bsize * bavail / 1024 * 1024,
        "{out}"
    );
    assert_eq!(out["total"], "8.0 MiB", "{out}");
    assert_eq!(out["available"], "5.0 MiB", "{out}");
    check_usage_consistent(&out);

    let marker = marker_path();
    for name in evil_names(&marker) {
        let missing = mnt.join(&name);
        let err =
            f.h.tool_error("scp_disk_usage", json!({"path": s(&missing)}))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{err}");
        // The marker's slashes make it a nested path: create all of it.
        fs::create_dir_all(&missing).unwrap();
        run(Command::new("chown").args(["-R", "mcpssh-test:"]).arg(&mnt));
        let out = f.h.ok("scp_disk_usage", json!({"path": s(&missing)})).await;
        assert_eq!(out["path"], s(&missing));
        assert_eq!(out["total"], "8.0 MiB", "{out}");
        // The upload's free-space check takes the same path.
        let src = f.local("one");
        random_file(&src, 1);
        f.upload(&src, &missing.join("one"), json!({})).await;
    }
    assert!(
        !marker.exists(),
        "a shell ran the path: {} exists",
        marker.display()
    );

    // The fallback's numbers refuse an upload that does not fit, before writing.
    let big = f.local("big.bin");
    random_file(&big, 6 * MIB);
    let err =
        f.h.tool_error(
            "scp_upload",
            transfer_args(&big, &mnt.join("big.bin"), json!({})),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(!mnt.join("big.bin").exists());
    assert!(temp_files(&mnt).is_empty());
}
