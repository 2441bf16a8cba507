//! The file tools (`scp_*`, docs/tool-contract.md "File tools"): transfers byte for byte,
//! the conflict policies, size limits, no partial files, listing, removal, disk usage.
//!
//! The "remote" host is this machine, so the tests check remote files directly in the
//! sshd's scratch directory (owned by the test user).

use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use mcpssh_testbed::{CallToolResultExt, test_user_ids};
use serde_json::json;

use crate::common::{Harness, assert_invalid_argument};

/// Deterministic pseudo-random bytes (incompressible enough, reproducible).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Files in `dir` whose name looks like a temporary transfer file.
fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".part") || n.contains("mcpssh-"))
                .collect()
        })
        .unwrap_or_default()
}

struct Files {
    h: Harness,
    local: tempfile::TempDir,
}

impl Files {
    async fn start() -> Files {
        Files {
            h: Harness::start().await,
            local: tempfile::Builder::new()
                .prefix("mcpssh-e2e-local-")
                .tempdir()
                .unwrap(),
        }
    }
    fn local(&self, name: &str) -> PathBuf {
        self.local.path().join(name)
    }
    fn remote(&self, name: &str) -> PathBuf {
        self.h.sshd.scratch_dir().join(name)
    }
    /// Write a remote file as the test user would own it.
    fn put_remote(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.remote(name);
        fs::write(&path, bytes).unwrap();
        let (uid, gid) = test_user_ids().unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        path
    }
}

#[tokio::test]
async fn upload_copies_the_file_byte_for_byte() {
    let f = Files::start().await;
    let bytes = data(3 * 1024 * 1024 + 17, 1);
    let src = f.local("blob.bin");
    fs::write(&src, &bytes).unwrap();
    let dst = f.remote("blob.bin");
    let out =
        f.h.ok(
            "scp_upload",
            json!({"local_path": s(&src), "remote_path": s(&dst)}),
        )
        .await;
    assert_eq!(out["success"], true);
    assert_eq!(out["bytes"], bytes.len() as u64, "{out}");
    assert_eq!(out["remote_path"], s(&dst));
    assert_eq!(out["local_path"], s(&src));
    assert_eq!(out["conflict"], "none");
    assert!(out["rate_bytes_per_second"].as_u64().is_some());
    assert!(fs::read(&dst).unwrap() == bytes, "the remote copy differs");
    let (uid, _) = test_user_ids().unwrap();
    assert_eq!(
        fs::metadata(&dst).unwrap().uid(),
        uid,
        "written as the SSH user"
    );
    assert!(leftovers(f.h.sshd.scratch_dir()).is_empty());
}

#[tokio::test]
async fn upload_conflicts_fail_overwrite_rename() {
    let f = Files::start().await;
    let src = f.local("notes.txt");
    fs::write(&src, "new content\n").unwrap();
    let dst = f.put_remote("notes.txt", b"old content\n");
    let args = |conflict: Option<&str>| {
        let mut a = json!({"local_path": s(&src), "remote_path": s(&dst)});
        if let Some(c) = conflict {
            a["on_conflict"] = json!(c);
        }
        a
    };

    // FAIL (the default): refused, the old file intact.
    let err = f.h.tool_error("scp_upload", args(None)).await;
    assert_eq!(err["error_kind"], "already-exists", "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("OVERWRITE"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&dst).unwrap(), "old content\n");
    let err = f.h.tool_error("scp_upload", args(Some("FAIL"))).await;
    assert_eq!(err["error_kind"], "already-exists");

    // RENAME: written beside it with a timestamp, the old file intact.
    let out = f.h.ok("scp_upload", args(Some("RENAME"))).await;
    assert_eq!(out["conflict"], "renamed", "{out}");
    let renamed = PathBuf::from(out["remote_path"].as_str().unwrap());
    assert_ne!(renamed, dst);
    let name = renamed.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("notes_")
            && name.ends_with(".txt")
            && name.len() == "notes_20261125-170416.txt".len(),
        "unexpected renamed file name {name}"
    );
    assert_eq!(fs::read_to_string(&renamed).unwrap(), "new content\n");
    assert_eq!(fs::read_to_string(&dst).unwrap(), "old content\n");
    // A second RENAME in the same second still finds a free name.
    let again = f.h.ok("scp_upload", args(Some("rename"))).await;
    assert_ne!(again["remote_path"], out["remote_path"], "{again}");
    assert_eq!(fs::read_to_string(&dst).unwrap(), "old content\n");

    // OVERWRITE: replaced.
    let out = f.h.ok("scp_upload", args(Some("OVERWRITE"))).await;
    assert_eq!(out["conflict"], "overwritten", "{out}");
    assert_eq!(fs::read_to_string(&dst).unwrap(), "new content\n");
    assert!(leftovers(f.h.sshd.scratch_dir()).is_empty());
}

#[tokio::test]
async fn upload_refuses_too_large_and_missing_sources_without_writing() {
    let f = Files::start().await;
    let src = f.local("big.bin");
    fs::write(&src, data(100_000, 2)).unwrap();
    let dst = f.remote("big.bin");
    let err =
        f.h.tool_error(
            "scp_upload",
            json!({"local_path": s(&src), "remote_path": s(&dst), "max_size": 1000}),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert!(!dst.exists(), "nothing may be written");

    let err =
        f.h.tool_error(
            "scp_upload",
            json!({"local_path": s(&f.local("missing.bin")), "remote_path": s(&dst)}),
        )
        .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");

    // A relative local path is refused (the server's working directory is arbitrary).
    let err =
        f.h.tool_error(
            "scp_upload",
            json!({"local_path": "relative/file.txt", "remote_path": s(&dst)}),
        )
        .await;
    assert!(err["error"].as_str().unwrap().contains("relative"), "{err}");

    // Into a remote directory that does not exist.
    let err =
        f.h.tool_error(
            "scp_upload",
            json!({"local_path": s(&src), "remote_path": s(&f.remote("no/such/dir/big.bin"))}),
        )
        .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
    assert!(!dst.exists());
    assert!(leftovers(f.h.sshd.scratch_dir()).is_empty());
    f.h.assert_still_serving().await;
}

#[tokio::test]
async fn download_copies_and_honours_conflicts() {
    let f = Files::start().await;
    let bytes = data(2 * 1024 * 1024 + 5, 3);
    let src = f.put_remote("report.pdf", &bytes);
    let dst = f.local("report.pdf");
    let args = |conflict: &str| json!({"local_path": s(&dst), "remote_path": s(&src), "on_conflict": conflict});
    let out = f.h.ok("scp_download", args("FAIL")).await;
    assert_eq!(out["bytes"], bytes.len() as u64, "{out}");
    assert_eq!(out["conflict"], "none");
    assert!(fs::read(&dst).unwrap() == bytes, "the local copy differs");

    fs::write(&dst, "local edits").unwrap();
    let err = f.h.tool_error("scp_download", args("FAIL")).await;
    assert_eq!(err["error_kind"], "already-exists", "{err}");
    assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits");

    let out = f.h.ok("scp_download", args("RENAME")).await;
    assert_eq!(out["conflict"], "renamed", "{out}");
    let renamed = PathBuf::from(out["local_path"].as_str().unwrap());
    assert_eq!(renamed.parent(), dst.parent());
    assert!(
        renamed
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("report_")
    );
    assert!(fs::read(&renamed).unwrap() == bytes);
    assert_eq!(fs::read_to_string(&dst).unwrap(), "local edits");

    let out = f.h.ok("scp_download", args("OVERWRITE")).await;
    assert_eq!(out["conflict"], "overwritten", "{out}");
    assert!(fs::read(&dst).unwrap() == bytes);
    assert!(
        leftovers(f.local.path()).is_empty(),
        "{:?}",
        leftovers(f.local.path())
    );
}

#[tokio::test]
async fn download_errors_leave_nothing_behind() {
    let f = Files::start().await;
    let dst = f.local("nothing.txt");
    let err =
        f.h.tool_error(
            "scp_download",
            json!({"local_path": s(&dst), "remote_path": s(&f.remote("missing.txt"))}),
        )
        .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
    assert!(!dst.exists());

    let src = f.put_remote("big.bin", &data(50_000, 4));
    let err =
        f.h.tool_error(
            "scp_download",
            json!({"local_path": s(&dst), "remote_path": s(&src), "max_size": 10}),
        )
        .await;
    assert_eq!(err["error_kind"], "too-large", "{err}");
    assert!(!dst.exists());
    assert!(leftovers(f.local.path()).is_empty());
}

#[tokio::test]
async fn a_cancelled_upload_leaves_no_partial_file() {
    let f = Files::start().await;
    let src = f.local("huge.bin");
    fs::write(&src, data(200 * 1024 * 1024, 5)).unwrap();
    let dst = f.remote("huge.bin");
    f.h.exec("true").await; // connected before the clock starts
    let call =
        f.h.server
            .start_call(
                &f.h.name("scp_upload"),
                json!({"local_path": s(&src), "remote_path": s(&dst)}),
            )
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    call.cancel(Some("changed my mind".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Either the upload finished before the cancel arrived (complete file), or nothing is
    // there: never a partial file under the real name, never a temporary left over.
    if dst.exists() {
        assert_eq!(fs::metadata(&dst).unwrap().len(), 200 * 1024 * 1024);
        eprintln!("note: the upload completed before the cancellation arrived");
    }
    assert!(
        leftovers(f.h.sshd.scratch_dir()).is_empty(),
        "temporary files left: {:?}",
        leftovers(f.h.sshd.scratch_dir())
    );
    f.h.assert_still_serving().await;
}

#[tokio::test]
async fn listdir_reports_types_permissions_and_order() {
    let f = Files::start().await;
    let scratch = f.h.sshd.scratch_dir().to_path_buf();
    f.h.exec(&format!(
        "cd {} && printf abc > b.txt && mkdir adir && chmod 750 adir && ln -s b.txt clink \
         && printf x > .hidden && chmod 4755 .hidden && mkfifo zfifo",
        s(&scratch)
    ))
    .await;
    let out = f.h.ok("scp_listdir", json!({"path": s(&scratch)})).await;
    assert_eq!(out["path"], s(&scratch));
    let entries = out["entries"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [".hidden", "adir", "b.txt", "clink", "zfifo"],
        "{out}"
    );
    assert_eq!(out["count"], 5);
    assert_eq!(out["truncated"], false);
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap().clone();
    let file = by_name("b.txt");
    assert_eq!(file["type"], "file");
    assert_eq!(file["size"], 3);
    assert_eq!(file["permissions"], "0644", "{file}");
    assert_eq!(file["mode"], "-rw-r--r--");
    assert!(
        file["modified"]
            .as_str()
            .is_some_and(|m| m.len() == 20 && m.ends_with('Z')),
        "{file}"
    );
    let dir = by_name("adir");
    assert_eq!(dir["type"], "directory");
    assert_eq!(dir["permissions"], "0750");
    assert_eq!(dir["mode"], "drwxr-x---");
    assert_eq!(by_name("clink")["type"], "symlink", "lstat-style");
    assert_eq!(by_name("zfifo")["type"], "other");
    let hidden = by_name(".hidden");
    assert_eq!(hidden["permissions"], "4755");
    assert_eq!(hidden["mode"], "-rwsr-xr-x");

    // A limit truncates with a note.
    let out =
        f.h.ok("scp_listdir", json!({"path": s(&scratch), "limit": 2}))
            .await;
    assert_eq!(out["truncated"], true, "{out}");
    assert!(out["entries"].as_array().unwrap().len() <= 2);
    assert!(out["note"].as_str().is_some_and(|n| !n.is_empty()), "{out}");

    // Paths are canonicalised; the default is the home directory.
    let out =
        f.h.ok(
            "scp_listdir",
            json!({"path": format!("{}/adir/..", s(&scratch))}),
        )
        .await;
    assert_eq!(out["path"], s(&scratch));
    let home = f.h.ok("scp_listdir", json!({})).await;
    assert_eq!(home["path"], "/home/mcpssh-test", "{home}");

    let err =
        f.h.tool_error("scp_listdir", json!({"path": s(&f.remote("nope"))}))
            .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");
}

#[tokio::test]
async fn remove_deletes_files_and_links_only() {
    let f = Files::start().await;
    let file = f.put_remote("gone.txt", b"bye");
    let out = f.h.ok("scp_remove", json!({"path": s(&file)})).await;
    assert_eq!(out["path"], s(&file));
    assert!(!file.exists());

    let err =
        f.h.tool_error("scp_remove", json!({"path": s(&file)}))
            .await;
    assert_eq!(err["error_kind"], "not-found", "{err}");

    // A symlink goes, its target stays.
    let target = f.put_remote("target.txt", b"keep me");
    f.h.exec(&format!("ln -s {} {}", s(&target), s(&f.remote("link"))))
        .await;
    f.h.ok("scp_remove", json!({"path": s(&f.remote("link"))}))
        .await;
    assert!(fs::symlink_metadata(f.remote("link")).is_err());
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep me");

    // A directory is refused and stays.
    f.h.exec(&format!("mkdir {}", s(&f.remote("adir")))).await;
    let err =
        f.h.tool_error("scp_remove", json!({"path": s(&f.remote("adir"))}))
            .await;
    assert!(
        err["error"].as_str().unwrap().contains("directory"),
        "{err}"
    );
    assert!(f.remote("adir").is_dir());

    for bad in ["", ".", "..", "/tmp/x/", "/tmp/.."] {
        let err = f.h.tool_error("scp_remove", json!({"path": bad})).await;
        assert_invalid_argument(&err, "path");
    }
    let err = f.h.tool_error("scp_remove", json!({})).await;
    assert_invalid_argument(&err, "path");
}

#[tokio::test]
async fn disk_usage_matches_statvfs() {
    let f = Files::start().await;
    let scratch = f.h.sshd.scratch_dir().to_path_buf();
    let out = f.h.ok("scp_disk_usage", json!({"path": s(&scratch)})).await;
    assert_eq!(out["path"], s(&scratch));
    // What statfs says about the same file system (it is this machine).
    let stat = std::process::Command::new("stat")
        .args(["-f", "-c", "%S %b"])
        .arg(&scratch)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&stat.stdout);
    let nums: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(out["total_bytes"], nums[0] * nums[1], "{out}");
    let total = out["total_bytes"].as_u64().unwrap();
    let free = out["free_bytes"].as_u64().unwrap();
    let avail = out["available_bytes"].as_u64().unwrap();
    let used = out["used_bytes"].as_u64().unwrap();
    assert!(avail <= free && free <= total, "{out}");
    assert_eq!(used, total - free);
    let pct = out["percent_used"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&pct), "{out}");
    for key in ["total", "used", "free", "available"] {
        let v = out[key].as_str().unwrap();
        assert!(
            v.ends_with(" B") || v.ends_with("iB"),
            "{key} should be human-readable: {v}"
        );
    }
    let home = f.h.ok("scp_disk_usage", json!({})).await;
    assert_eq!(home["path"], "/home/mcpssh-test");
}

#[tokio::test]
async fn transfers_report_progress() {
    let f = Files::start().await;
    let src = f.local("p.bin");
    fs::write(&src, data(30 * 1024 * 1024, 6)).unwrap();
    let call =
        f.h.server
            .start_call(
                &f.h.name("scp_upload"),
                json!({"local_path": s(&src), "remote_path": s(&f.remote("p.bin"))}),
            )
            .await
            .unwrap();
    let token = call.progress_token().clone();
    let result = call.wait().await.unwrap();
    f.h.check_result_shape("scp_upload", &result);
    let progress = f.h.server.progress_for(&token);
    assert!(!progress.is_empty(), "no progress for a 30 MiB upload");
    let last = progress.last().unwrap();
    assert_eq!(last.progress, (30 * 1024 * 1024) as f64, "{progress:?}");
    assert_eq!(last.total, Some((30 * 1024 * 1024) as f64));
    assert_eq!(result.structured()["bytes"], 30 * 1024 * 1024);
}
