//! The five file tools (`scp_upload`, `scp_download`, `scp_listdir`, `scp_remove`,
//! `scp_disk_usage`; docs/tool-contract.md "File tools"), one behaviour per file, and the
//! helpers they share.
//!
//! The "remote" host is this machine and the tests run as root, so they inspect the
//! remote files directly in the sshd's scratch directory (owned by the test user).

mod conflicts;
mod disk_usage;
mod interruptions;
mod listdir;
mod local_paths;
mod refused_before_writing;
mod remove;
mod round_trips;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mcpssh_testbed::{PendingCall, Sshd, test_user_ids};
use serde_json::{Value, json};

use crate::common::Harness;

const MIB: u64 = 1024 * 1024;

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
