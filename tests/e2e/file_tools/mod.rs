//! The five SFTP tools (`scp_upload`, `scp_download`, `scp_listdir`, `scp_remove`,
//! `scp_disk_usage`; docs/tool-contract.md "File tools"): binary
//! round trips byte for byte, progress notifications, every conflict policy twice in a
//! row, `max_size`, a full file system and missing sources or directories refused before
//! anything is written, no partial file after killing the sshd or `mcpssh` mid-transfer
//! (and no temporary file after the next run), cancellation, and listing / removal / disk
//! usage compared with what `ls`, `stat` and `df` say.
//!
//! The "remote" host is this machine and the tests run as root, so they inspect the
//! remote files directly in the sshd's scratch directory (owned by the test user).

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mcpssh_testbed::{CallToolResultExt, McpServer, PendingCall, Sshd, test_user_ids};
use serde_json::{Value, json};

use crate::common::{Harness, assert_invalid_argument, bin, check_error_shape};

const MIB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------
// Helpers.

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `head -c LEN /dev/urandom > path`.
fn random_file(path: &Path, len: u64) {
    let out = fs::File::create(path).unwrap();
    let status = Command::new("head")
        .arg("-c")
        .arg(len.to_string())
        .arg("/dev/urandom")
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success(), "head -c {len} /dev/urandom failed");
    assert_eq!(fs::metadata(path).unwrap().len(), len);
}

/// `cmp -s a b`: the two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .arg("-s")
        .arg(a)
        .arg(b)
        .status()
        .unwrap()
        .success()
}

fn chown_to_test_user(path: &Path) {
    let (uid, gid) = test_user_ids().unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// Names in `dir`, sorted. Panics when `dir` cannot be read: "nothing left behind" must
/// not pass because nothing could be seen.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Names in `dir` that look like a transfer's temporary file (`.NAME.mcpssh-TOKEN.part`),
/// or anything else with `.part` / `mcpssh-` in it.
fn temp_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".part") || n.contains(".mcpssh-"))
        .collect()
}

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

/// A command's stdout; the command must succeed.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `date -u -d @SECS +%Y-%m-%dT%H:%M:%SZ`.
fn iso_utc(secs: i64) -> String {
    run(Command::new("date")
        .arg("-u")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg("+%Y-%m-%dT%H:%M:%SZ"))
    .trim()
    .to_owned()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Checks that `name` is `<stem>_<YYYYmmdd-HHMMSS>[-N]<ext>` (the documented RENAME
/// format) with a timestamp within a minute of now (UTC). Returns the stamp and N.
fn parse_renamed(name: &str, stem: &str, ext: &str) -> (String, Option<u32>) {
    let mid = name
        .strip_prefix(&format!("{stem}_"))
        .and_then(|r| r.strip_suffix(ext))
        .unwrap_or_else(|| panic!("renamed file {name:?} is not {stem}_<stamp>{ext}"));
    assert!(mid.len() >= 15, "renamed file {name:?}: no timestamp");
    let (stamp, rest) = mid.split_at(15);
    let b = stamp.as_bytes();
    assert!(
        b.iter().enumerate().all(|(i, c)| if i == 8 {
            *c == b'-'
        } else {
            c.is_ascii_digit()
        }),
        "renamed file {name:?}: {stamp:?} is not YYYYmmdd-HHMMSS"
    );
    let n = if rest.is_empty() {
        None
    } else {
        let n: u32 = rest
            .strip_prefix('-')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("renamed file {name:?}: {rest:?} is not -N"));
        assert!(n >= 2, "renamed file {name:?}: the counter starts at 2");
        Some(n)
    };
    let when: i64 = run(Command::new("date")
        .arg("-u")
        .arg("+%s")
        .arg("-d")
        .arg(format!(
            "{}-{}-{} {}:{}:{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15]
        )))
    .trim()
    .parse()
    .unwrap();
    assert!(
        (when - unix_now()).abs() <= 60,
        "renamed file {name:?}: the stamp is not the current UTC time"
    );
    (stamp.to_owned(), n)
}

/// The contract's transfer result: consistent numbers, the paths, the conflict action.
#[track_caller]
fn check_transfer(out: &Value, bytes: u64, local: &Path, remote: &Path, conflict: &str) {
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["bytes"], bytes, "{out}");
    assert_eq!(out["local_path"], s(local), "{out}");
    assert_eq!(out["remote_path"], s(remote), "{out}");
    assert_eq!(out["conflict"], conflict, "{out}");
    let ms = out["duration_ms"].as_u64().expect("duration_ms");
    let rate = out["rate_bytes_per_second"]
        .as_u64()
        .expect("rate_bytes_per_second");
    assert_eq!(
        rate,
        bytes * 1000 / ms.max(1),
        "rate = bytes*1000/ms: {out}"
    );
    assert!(
        out["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{out}"
    );
}

/// A tmpfs mounted for one test (the caller is root); unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=1777"))
            .arg("tmpfs")
            .arg(dir));
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// `stat -f -c '%S %b %f %a' PATH`: (block size, blocks, free blocks, available blocks).
fn statfs(path: &Path) -> (u64, u64, u64, u64) {
    let text = run(Command::new("stat")
        .args(["-f", "-c", "%S %b %f %a"])
        .arg(path));
    let n: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (n[0], n[1], n[2], n[3])
}

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

/// Everything one file test needs: the harness, a local directory, and a private
/// transfer journal (`XDG_STATE_HOME`) so that tests never see each other's leftovers.
struct Files {
    h: Harness,
    local: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Files {
    async fn start() -> Files {
        Self::start_with(Sshd::start().expect("starting sshd"), &[]).await
    }

    async fn start_with(sshd: Sshd, extra: &[(&str, &str)]) -> Files {
        let local = tempfile::Builder::new()
            .prefix("mcpssh-e2e-files-")
            .tempdir()
            .unwrap();
        let state = tempfile::Builder::new()
            .prefix("mcpssh-e2e-state-")
            .tempdir()
            .unwrap();
        let state_dir = s(state.path());
        let mut env = vec![("XDG_STATE_HOME", state_dir.as_str())];
        env.extend_from_slice(extra);
        let h = Harness::start_with(sshd, &env).await;
        Files { h, local, state }
    }

    /// The environment the harness started `mcpssh` with (for a second server).
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.h.sshd.mcp_env();
        env.push(("XDG_STATE_HOME".into(), s(self.state.path())));
        env
    }

    fn local(&self, name: &str) -> PathBuf {
        self.local.path().join(name)
    }
    fn scratch(&self) -> PathBuf {
        self.h.sshd.scratch_dir().to_path_buf()
    }
    fn remote(&self, name: &str) -> PathBuf {
        self.h.sshd.scratch_dir().join(name)
    }
    /// A remote file with random content, owned by the test user.
    fn remote_random(&self, name: &str, len: u64) -> PathBuf {
        let path = self.remote(name);
        random_file(&path, len);
        chown_to_test_user(&path);
        path
    }
    fn put_remote(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.remote(name);
        fs::write(&path, bytes).unwrap();
        chown_to_test_user(&path);
        path
    }

    /// Uploads a random local file of `len` bytes as `name`, downloads it back as
    /// `back-NAME`, checks both results and both copies byte for byte, and that no
    /// temporary file is left on either side.
    async fn round_trip(&self, name: &str, len: u64) {
        let src = self.local(name);
        random_file(&src, len);
        let remote = self.remote(name);
        let out = self.upload(&src, &remote, json!({})).await;
        check_transfer(&out, len, &src, &remote, "none");
        assert!(same_bytes(&src, &remote), "the {len}-byte upload differs");
        let back = self.local(&format!("back-{name}"));
        let out = self.download(&back, &remote, json!({})).await;
        check_transfer(&out, len, &back, &remote, "none");
        assert!(same_bytes(&src, &back), "the {len}-byte download differs");
        assert!(temp_files(&self.scratch()).is_empty());
        assert!(temp_files(self.local.path()).is_empty());
    }

    async fn upload(&self, local: &Path, remote: &Path, extra: Value) -> Value {
        self.h
            .ok("scp_upload", transfer_args(local, remote, extra))
            .await
    }
    async fn download(&self, local: &Path, remote: &Path, extra: Value) -> Value {
        self.h
            .ok("scp_download", transfer_args(local, remote, extra))
            .await
    }
    async fn start_transfer(&self, tool: &str, local: &Path, remote: &Path) -> PendingCall {
        self.h
            .server
            .start_call(&self.h.name(tool), transfer_args(local, remote, json!({})))
            .await
            .unwrap()
    }
}

fn transfer_args(local: &Path, remote: &Path, extra: Value) -> Value {
    let mut args = json!({"local_path": s(local), "remote_path": s(remote)});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    args
}

/// The Python server's nested form of the same arguments.
fn nested(args: Value) -> Value {
    json!({ "params": args })
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

// ---------------------------------------------------------------------------------
// Round trips.

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

// ---------------------------------------------------------------------------------
// Conflicts.

#[tokio::test]
async fn upload_conflict_modes_twice_in_a_row() {
    let f = Files::start().await;
    let src = f.local("notes.txt");
    random_file(&src, 4096);
    let dst = f.put_remote("notes.txt", b"old remote content\n");
    let args = |extra: Value| transfer_args(&src, &dst, extra);
    let old_mtime = fs::metadata(&dst).unwrap().mtime();

    // FAIL, the default, twice (flat and nested): refused, the old file untouched.
    for a in [
        args(json!({})),
        nested(args(json!({"on_conflict": "FAIL"}))),
    ] {
        let err = f.h.tool_error("scp_upload", a).await;
        assert_eq!(err["error_kind"], "already-exists", "{err}");
        assert!(
            err["error"].as_str().unwrap().contains("OVERWRITE"),
            "{err}"
        );
        assert_eq!(fs::read(&dst).unwrap(), b"old remote content\n");
        assert_eq!(fs::metadata(&dst).unwrap().mtime(), old_mtime);
    }

    // RENAME twice back to back (flat, then nested): two new names, neither the original.
    let r1 =
        f.h.ok("scp_upload", args(json!({"on_conflict": "RENAME"})))
            .await;
    let r2 =
        f.h.ok("scp_upload", nested(args(json!({"on_conflict": "RENAME"}))))
            .await;
    let p1 = PathBuf::from(r1["remote_path"].as_str().unwrap());
    let p2 = PathBuf::from(r2["remote_path"].as_str().unwrap());
    check_transfer(&r1, 4096, &src, &p1, "renamed");
    check_transfer(&r2, 4096, &src, &p2, "renamed");
    assert_ne!(p1, p2, "the second RENAME reused the first name");
    for p in [&p1, &p2] {
        assert_ne!(p, &dst);
        assert_eq!(p.parent(), dst.parent(), "renamed beside the original");
        assert!(
            same_bytes(&src, p),
            "{} differs from the source",
            p.display()
        );
    }
    let (stamp1, n1) = parse_renamed(&p1.file_name().unwrap().to_string_lossy(), "notes", ".txt");
    let (stamp2, n2) = parse_renamed(&p2.file_name().unwrap().to_string_lossy(), "notes", ".txt");
    if stamp1 == stamp2 {
        assert!(
            n2.unwrap_or(1) > n1.unwrap_or(1),
            "same second, the second name needs a higher counter: {p1:?} {p2:?}"
        );
    }
    assert_eq!(fs::read(&dst).unwrap(), b"old remote content\n");

    // OVERWRITE twice (flat, nested), with a different source each time: replaced.
    let out =
        f.h.ok("scp_upload", args(json!({"on_conflict": "OVERWRITE"})))
            .await;
    check_transfer(&out, 4096, &src, &dst, "overwritten");
    assert!(same_bytes(&src, &dst));
    random_file(&src, 5000);
    let out =
        f.h.ok(
            "scp_upload",
            nested(args(json!({"on_conflict": "OVERWRITE"}))),
        )
        .await;
    check_transfer(&out, 5000, &src, &dst, "overwritten");
    assert!(same_bytes(&src, &dst));

    // Without a conflict, OVERWRITE and RENAME just write the file.
    for (mode, name) in [("OVERWRITE", "fresh1.txt"), ("rename", "fresh2.txt")] {
        let fresh = f.remote(name);
        let out = f.upload(&src, &fresh, json!({"on_conflict": mode})).await;
        check_transfer(&out, 5000, &src, &fresh, "none");
        assert!(same_bytes(&src, &fresh));
    }

    let mut expected = vec![
        "fresh1.txt".to_owned(),
        "fresh2.txt".to_owned(),
        "notes.txt".to_owned(),
        p1.file_name().unwrap().to_string_lossy().into_owned(),
        p2.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(
        names(&f.scratch()),
        expected,
        "exactly these files, no temporaries"
    );
}

#[tokio::test]
async fn download_conflict_modes_twice_in_a_row() {
    let f = Files::start().await;
    let remote = f.remote_random("archive.tar.gz", 70_000);
    let dst = f.local("archive.tar.gz");
    fs::write(&dst, "local edits\n").unwrap();
    let args = |extra: Value| transfer_args(&dst, &remote, extra);

    for a in [
        args(json!({"on_conflict": "FAIL"})),
        nested(args(json!({}))),
    ] {
        let err = f.h.tool_error("scp_download", a).await;
        assert_eq!(err["error_kind"], "already-exists", "{err}");
        assert!(
            err["error"].as_str().unwrap().contains("OVERWRITE"),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits\n");
    }

    // RENAME twice: the timestamp goes before the last extension.
    let r1 =
        f.h.ok(
            "scp_download",
            nested(args(json!({"on_conflict": "RENAME"}))),
        )
        .await;
    let r2 =
        f.h.ok("scp_download", args(json!({"on_conflict": "RENAME"})))
            .await;
    let p1 = PathBuf::from(r1["local_path"].as_str().unwrap());
    let p2 = PathBuf::from(r2["local_path"].as_str().unwrap());
    check_transfer(&r1, 70_000, &p1, &remote, "renamed");
    check_transfer(&r2, 70_000, &p2, &remote, "renamed");
    assert_ne!(p1, p2, "the second RENAME reused the first name");
    for p in [&p1, &p2] {
        assert_ne!(p, &dst);
        assert_eq!(p.parent(), dst.parent());
        assert!(same_bytes(&remote, p));
    }
    let (stamp1, n1) = parse_renamed(
        &p1.file_name().unwrap().to_string_lossy(),
        "archive.tar",
        ".gz",
    );
    let (stamp2, n2) = parse_renamed(
        &p2.file_name().unwrap().to_string_lossy(),
        "archive.tar",
        ".gz",
    );
    if stamp1 == stamp2 {
        assert!(n2.unwrap_or(1) > n1.unwrap_or(1), "{p1:?} {p2:?}");
    }
    assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits\n");

    // OVERWRITE twice, the remote file changing in between.
    let out =
        f.h.ok("scp_download", args(json!({"on_conflict": "overwrite"})))
            .await;
    check_transfer(&out, 70_000, &dst, &remote, "overwritten");
    assert!(same_bytes(&remote, &dst));
    random_file(&remote, 80_000);
    let out =
        f.h.ok(
            "scp_download",
            nested(args(json!({"on_conflict": "OVERWRITE"}))),
        )
        .await;
    check_transfer(&out, 80_000, &dst, &remote, "overwritten");
    assert!(same_bytes(&remote, &dst));

    let mut expected = vec![
        "archive.tar.gz".to_owned(),
        p1.file_name().unwrap().to_string_lossy().into_owned(),
        p2.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(names(f.local.path()), expected, "no temporaries left");
}

#[tokio::test]
async fn rename_of_names_without_extension() {
    let f = Files::start().await;
    let src = f.local("src");
    random_file(&src, 10);
    for (name, stem, ext) in [(".bashrc", ".bashrc", ""), ("Makefile", "Makefile", "")] {
        let dst = f.put_remote(name, b"old");
        let out = f.upload(&src, &dst, json!({"on_conflict": "RENAME"})).await;
        let renamed = PathBuf::from(out["remote_path"].as_str().unwrap());
        check_transfer(&out, 10, &src, &renamed, "renamed");
        parse_renamed(&renamed.file_name().unwrap().to_string_lossy(), stem, ext);
        assert_eq!(fs::read(&dst).unwrap(), b"old");
    }
}

// ---------------------------------------------------------------------------------
// Refused before anything is written.

#[tokio::test]
async fn max_size_is_refused_before_writing() {
    let f = Files::start().await;
    let src = f.local("data.bin");
    random_file(&src, 100_000);
    let dst = f.remote("data.bin");

    for a in [
        transfer_args(&src, &dst, json!({"max_size": 99_999})),
        nested(transfer_args(
            &src,
            &dst,
            json!({"max_size": 1, "on_conflict": "RENAME"}),
        )),
    ] {
        let err = f.h.tool_error("scp_upload", a).await;
        assert_eq!(err["error_kind"], "too-large", "{err}");
        assert!(names(&f.scratch()).is_empty(), "{:?}", names(&f.scratch()));
    }
    // Over the limit with OVERWRITE: the existing file stays as it was.
    let existing = f.put_remote("existing.bin", b"keep");
    let err =
        f.h.tool_error(
            "scp_upload",
            transfer_args(
                &src,
                &existing,
                json!({"max_size": 50_000, "on_conflict": "OVERWRITE"}),
            ),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert_eq!(fs::read(&existing).unwrap(), b"keep");
    assert_eq!(names(&f.scratch()), ["existing.bin"]);

    // Exactly the limit is allowed; so is an empty file with max_size 0.
    let out = f.upload(&src, &dst, json!({"max_size": 100_000})).await;
    check_transfer(&out, 100_000, &src, &dst, "none");
    let empty = f.local("empty");
    random_file(&empty, 0);
    let out = f
        .upload(&empty, &f.remote("empty"), json!({"max_size": 0}))
        .await;
    check_transfer(&out, 0, &empty, &f.remote("empty"), "none");

    // Downloads: the local directory stays empty.
    let down = tempfile::tempdir_in(f.local.path()).unwrap();
    let err =
        f.h.tool_error(
            "scp_download",
            transfer_args(
                &down.path().join("data.bin"),
                &dst,
                json!({"max_size": 99_999}),
            ),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert!(names(down.path()).is_empty(), "{:?}", names(down.path()));
    let out =
        f.h.ok(
            "scp_download",
            nested(transfer_args(
                &down.path().join("data.bin"),
                &dst,
                json!({"max_size": 100_000}),
            )),
        )
        .await;
    check_transfer(&out, 100_000, &down.path().join("data.bin"), &dst, "none");
}

#[tokio::test]
async fn missing_sources_and_destination_directories_are_not_found() {
    let f = Files::start().await;
    let src = f.local("data.bin");
    random_file(&src, 100_000);
    for (what, tool, local, remote) in [
        (
            "a missing local source",
            "scp_upload",
            f.local("missing.bin"),
            f.remote("data.bin"),
        ),
        (
            "a missing remote directory",
            "scp_upload",
            src.clone(),
            f.remote("no/such/dir/data.bin"),
        ),
        (
            "a missing remote source",
            "scp_download",
            f.local("down.bin"),
            f.remote("missing.bin"),
        ),
    ] {
        let err =
            f.h.tool_error(tool, transfer_args(&local, &remote, json!({})))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{what}: {err}");
    }
    assert!(names(&f.scratch()).is_empty(), "{:?}", names(&f.scratch()));
    assert_eq!(
        names(f.local.path()),
        ["data.bin"],
        "nothing written locally"
    );
    f.h.assert_still_serving().await;
}

#[tokio::test]
async fn a_full_remote_file_system_is_refused_before_writing() {
    let f = Files::start().await;
    let small = f.remote("small");
    let _mount = Tmpfs::mount(&small, "1m");
    let before = statfs(&small);
    let src = f.local("two.bin");
    random_file(&src, 2 * MIB);
    let dst = small.join("two.bin");
    let err =
        f.h.tool_error("scp_upload", transfer_args(&src, &dst, json!({})))
            .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(names(&small).is_empty(), "left behind: {:?}", names(&small));
    assert_eq!(statfs(&small), before, "the tmpfs is as it was");

    // An existing file there is not touched by a refused OVERWRITE.
    let keep = small.join("keep.txt");
    fs::write(&keep, "keep").unwrap();
    let err =
        f.h.tool_error(
            "scp_upload",
            transfer_args(&src, &keep, json!({"on_conflict": "OVERWRITE"})),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert_eq!(fs::read_to_string(&keep).unwrap(), "keep");
    assert_eq!(names(&small), ["keep.txt"]);

    // A file that fits goes through (the file system itself is writable).
    let fits = f.local("fits.bin");
    random_file(&fits, 256 * 1024);
    let out = f.upload(&fits, &small.join("fits.bin"), json!({})).await;
    check_transfer(&out, 256 * 1024, &fits, &small.join("fits.bin"), "none");
    assert!(same_bytes(&fits, &small.join("fits.bin")));
}

#[tokio::test]
async fn a_full_local_file_system_is_refused_before_writing() {
    let f = Files::start().await;
    let remote = f.remote_random("two.bin", 2 * MIB);
    let small = f.local("small");
    let _mount = Tmpfs::mount(&small, "1m");
    let before = statfs(&small);
    let err =
        f.h.tool_error(
            "scp_download",
            transfer_args(&small.join("two.bin"), &remote, json!({})),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(names(&small).is_empty(), "left behind: {:?}", names(&small));
    assert_eq!(statfs(&small), before);
}

// ---------------------------------------------------------------------------------
// Local paths.

#[tokio::test]
async fn relative_local_paths_are_refused_and_tilde_is_expanded() {
    let home = tempfile::Builder::new()
        .prefix("mcpssh-e2e-home-")
        .tempdir()
        .unwrap();
    let home_path = home.path().canonicalize().unwrap();
    let f = Files::start_with(Sshd::start().unwrap(), &[("HOME", &s(&home_path))]).await;
    let remote = f.remote_random("r.bin", 3000);
    let unique = format!("mcpssh-e2e-relative-{}", std::process::id());

    for local in [unique.as_str(), "./x.bin", "sub/x.bin", "../x.bin"] {
        for tool in ["scp_upload", "scp_download"] {
            let err =
                f.h.tool_error(
                    tool,
                    json!({"local_path": local, "remote_path": s(&f.remote("up.bin"))}),
                )
                .await;
            let msg = err["error"].as_str().unwrap();
            assert!(
                msg.contains("relative") && msg.contains("absolute"),
                "{tool} {local}: the message should say why: {err}"
            );
        }
    }
    assert!(!f.remote("up.bin").exists());
    // The server's working directory is this test's: nothing was written there.
    assert!(!Path::new(&unique).exists());

    // `~/` is the home directory of the server's user.
    let out = f
        .download(Path::new("~/down.bin"), &remote, json!({}))
        .await;
    let expanded = home_path.join("down.bin");
    check_transfer(&out, 3000, &expanded, &remote, "none");
    assert!(same_bytes(&remote, &expanded));
    let out = f
        .upload(Path::new("~/down.bin"), &f.remote("up.bin"), json!({}))
        .await;
    check_transfer(&out, 3000, &expanded, &f.remote("up.bin"), "none");
    assert!(same_bytes(&expanded, &f.remote("up.bin")));
}

#[tokio::test]
async fn local_root_confines_local_paths_symlinks_included() {
    let root = tempfile::Builder::new()
        .prefix("mcpssh-e2e-root-")
        .tempdir()
        .unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let f = Files::start_with(
        Sshd::start().unwrap(),
        &[("MCP_SSH_LOCAL_ROOT", &s(&root_path))],
    )
    .await;
    let remote = f.remote_random("r.bin", 2000);
    // `f.local` is outside the root; a symlink inside the root points to it.
    let outside = f.local("outside.bin");
    random_file(&outside, 10);
    std::os::unix::fs::symlink(f.local.path(), root_path.join("escape")).unwrap();
    std::os::unix::fs::symlink(&outside, root_path.join("file-link")).unwrap();

    for local in [
        f.local("down.bin"),
        root_path.join("escape/down.bin"),
        root_path.join("../down.bin"),
    ] {
        let err =
            f.h.tool_error("scp_download", transfer_args(&local, &remote, json!({})))
                .await;
        assert_eq!(err["error_kind"], "denied", "{}: {err}", local.display());
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .contains("MCP_SSH_LOCAL_ROOT"),
            "{err}"
        );
    }
    for local in [outside.clone(), root_path.join("file-link")] {
        let err =
            f.h.tool_error(
                "scp_upload",
                transfer_args(&local, &f.remote("up.bin"), json!({})),
            )
            .await;
        assert_eq!(err["error_kind"], "denied", "{}: {err}", local.display());
    }
    assert_eq!(
        names(f.local.path()),
        ["outside.bin"],
        "nothing written outside"
    );
    assert!(!f.remote("up.bin").exists());

    // Inside the root, both ways work.
    let inside = root_path.join("in.bin");
    let out = f.download(&inside, &remote, json!({})).await;
    check_transfer(&out, 2000, &inside, &remote, "none");
    let out = f.upload(&inside, &f.remote("up.bin"), json!({})).await;
    check_transfer(&out, 2000, &inside, &f.remote("up.bin"), "none");
    assert!(same_bytes(&remote, &f.remote("up.bin")));
}

// ---------------------------------------------------------------------------------
// Interruptions.

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

// ---------------------------------------------------------------------------------
// scp_listdir.

/// What `stat` says about one entry, in the tool's terms.
fn stat_entry(path: &Path) -> Value {
    let text = run(Command::new("stat")
        .args(["-c", "%s|%a|%A|%Y|%F"])
        .arg(path));
    let parts: Vec<&str> = text.trim_end_matches('\n').split('|').collect();
    let kind = match parts[4] {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "symlink",
        _ => "other",
    };
    let mut mode = parts[2].to_owned();
    if !matches!(&mode[..1], "-" | "d" | "l") {
        mode.replace_range(..1, "?");
    }
    let octal = u32::from_str_radix(parts[1], 8).unwrap();
    json!({
        "name": path.file_name().unwrap().to_string_lossy(),
        "type": kind,
        "size": parts[0].parse::<u64>().unwrap(),
        "permissions": format!("{octal:04o}"),
        "mode": mode,
        "modified": iso_utc(parts[3].parse().unwrap()),
    })
}

#[tokio::test]
async fn listdir_matches_ls_and_stat() {
    let f = Files::start().await;
    let dir = f.remote("tree");
    // Made by the test user, as a real remote directory would be.
    f.h.exec(&format!(
        "mkdir {d} && cd {d} && printf abc > b.txt && touch -d '2021-02-03 04:05:06 UTC' b.txt \
         && printf secret > .hidden && chmod 600 .hidden \
         && mkdir adir && chmod 750 adir && mkdir sticky && chmod 1777 sticky \
         && ln -s b.txt link && ln -s /nonexistent dangling && ln -s adir dirlink \
         && head -c 1048577 /dev/urandom > big.bin && chmod 755 big.bin \
         && printf x > suid && chmod 4755 suid \
         && : > empty && chmod 2755 empty && printf z > Zcaps && printf s > 'with space.txt' \
         && printf u > 'ünï.txt' && mkfifo fifo && touch -h -d '1999-12-31 23:59:59 UTC' link",
        d = s(&dir)
    ))
    .await;
    // `ls -A` in the C locale: every name but . and .., in byte order.
    let ls = run(Command::new("ls").env("LC_ALL", "C").arg("-A1").arg(&dir));
    let expected_names: Vec<&str> = ls.lines().collect();
    let n = expected_names.len();
    assert_eq!(n, 14, "{ls}");

    let out = f.h.ok("scp_listdir", json!({"path": s(&dir)})).await;
    assert_eq!(out["success"], true);
    assert_eq!(out["path"], s(&dir));
    assert_eq!(out["count"], n, "{out}");
    assert_eq!(out["truncated"], false);
    assert!(out.get("note").is_none_or(Value::is_null), "{out}");
    let entries = out["entries"].as_array().unwrap();
    let got_names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(got_names, expected_names, "names, hidden included, sorted");
    for entry in entries {
        let expected = stat_entry(&dir.join(entry["name"].as_str().unwrap()));
        assert_eq!(entry, &expected, "the entry differs from stat");
    }
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap();
    assert_eq!(by_name("b.txt")["modified"], "2021-02-03T04:05:06Z");
    assert_eq!(by_name("link")["modified"], "1999-12-31T23:59:59Z", "lstat");
    assert_eq!(by_name("link")["type"], "symlink");
    assert_eq!(by_name("dirlink")["type"], "symlink");
    assert_eq!(by_name("dangling")["type"], "symlink");
    assert_eq!(by_name("sticky")["mode"], "drwxrwxrwt");
    assert_eq!(by_name("sticky")["permissions"], "1777");
    assert_eq!(by_name("empty")["mode"], "-rwxr-sr-x");
    assert_eq!(by_name("suid")["mode"], "-rwsr-xr-x");
    assert_eq!(by_name("suid")["permissions"], "4755");
    assert_eq!(by_name("big.bin")["size"], 1048577);

    // `limit` equal to the count: all of it, not truncated; one less: cut, with a note.
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir), "limit": n}))
            .await;
    assert_eq!(out["count"], n);
    assert_eq!(out["truncated"], false, "{out}");
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir), "limit": 3}))
            .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert_eq!(out["count"], 3, "{out}");
    let cut = out["entries"].as_array().unwrap();
    assert_eq!(cut.len(), 3);
    let cut_names: Vec<&str> = cut.iter().map(|e| e["name"].as_str().unwrap()).collect();
    let mut sorted = cut_names.clone();
    sorted.sort();
    assert_eq!(cut_names, sorted, "a cut listing is sorted too");
    for entry in cut {
        assert_eq!(
            entry,
            &stat_entry(&dir.join(entry["name"].as_str().unwrap()))
        );
    }
    assert!(
        out["note"].as_str().is_some_and(|n| n.len() > 10),
        "a cut listing says so: {out}"
    );
    for bad in [0, 10_001] {
        let err =
            f.h.tool_error("scp_listdir", json!({"path": s(&dir), "limit": bad}))
                .await;
        assert_invalid_argument(&err, "limit");
    }

    // Paths are canonicalised; the default is the home directory.
    let out =
        f.h.ok(
            "scp_listdir",
            json!({"path": format!("{}/adir/..", s(&dir))}),
        )
        .await;
    assert_eq!(out["path"], s(&dir), "canonical path");
    assert_eq!(out["count"], n, "{out}");
    let home = f.h.ok("scp_listdir", json!({})).await;
    assert_eq!(home["path"], "/home/mcpssh-test", "{home}");

    // An empty directory, a file, a missing path.
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&dir.join("adir"))}))
            .await;
    assert_eq!(out["entries"], json!([]));
    assert_eq!(out["count"], 0);
    let err =
        f.h.tool_error("scp_listdir", json!({"path": s(&dir.join("b.txt"))}))
            .await;
    assert!(
        err["error"].as_str().unwrap().contains("not a directory"),
        "{err}"
    );
    let err =
        f.h.tool_error("scp_listdir", json!({"path": s(&dir.join("missing"))}))
            .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
}

// ---------------------------------------------------------------------------------
// scp_remove.

#[tokio::test]
async fn remove_takes_files_and_links_never_directories() {
    let f = Files::start().await;
    let file = f.put_remote("gone.txt", b"bye");
    let out = f.h.ok("scp_remove", json!({"path": s(&file)})).await;
    assert_eq!(out["success"], true);
    assert_eq!(out["path"], s(&file));
    assert!(out["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(fs::symlink_metadata(&file).is_err());

    // A symlink goes, its target stays: to a file, to a directory, dangling.
    let target = f.put_remote("target.txt", b"keep me");
    let dir = f.remote("dir");
    f.h.exec(&format!(
        "cd {} && ln -s target.txt flink && mkdir dir && echo inside > dir/inner && ln -s dir dlink \
         && ln -s /nowhere broken && mkdir emptydir",
        s(&f.scratch())
    ))
    .await;
    for link in ["flink", "dlink", "broken"] {
        f.h.ok("scp_remove", json!({"path": s(&f.remote(link))}))
            .await;
        assert!(
            fs::symlink_metadata(f.remote(link)).is_err(),
            "{link} is still there"
        );
    }
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(fs::read_to_string(dir.join("inner")).unwrap(), "inside\n");

    // Directories, full or empty, are refused and stay.
    for d in ["dir", "emptydir"] {
        let err =
            f.h.tool_error("scp_remove", json!({"path": s(&f.remote(d))}))
                .await;
        assert!(
            err["error"].as_str().unwrap().contains("directory"),
            "{err}"
        );
        assert!(f.remote(d).is_dir(), "{d} was removed");
    }
    assert_eq!(fs::read_to_string(dir.join("inner")).unwrap(), "inside\n");

    // Missing: not-found, twice.
    for _ in 0..2 {
        let err =
            f.h.tool_error("scp_remove", json!({"path": s(&file)}))
                .await;
        assert_eq!(err["error_kind"], "not-found", "{err}");
    }

    // Not the test user's to remove.
    let locked = f.remote("locked");
    fs::create_dir(&locked).unwrap(); // root's, 0755
    fs::write(locked.join("f"), "root's").unwrap();
    let err =
        f.h.tool_error("scp_remove", json!({"path": s(&locked.join("f"))}))
            .await;
    assert_eq!(err["error_kind"], "permission-denied", "{err}");
    assert_eq!(fs::read_to_string(locked.join("f")).unwrap(), "root's");

    // Paths that name no single entry, or none at all, are invalid arguments.
    for bad in ["", ".", "..", "/tmp/x/", "/tmp/.."] {
        let err = f.h.tool_error("scp_remove", json!({"path": bad})).await;
        assert_invalid_argument(&err, "path");
    }
    let err = f.h.tool_error("scp_remove", json!({})).await;
    assert_invalid_argument(&err, "path");

    assert_eq!(
        names(&f.scratch()),
        ["dir", "emptydir", "locked", "target.txt"]
    );
}

// ---------------------------------------------------------------------------------
// scp_disk_usage.

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
