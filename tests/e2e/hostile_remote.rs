//! Hostile and unusual remote hosts: a server without `posix-rename@openssh.com`
//! (renames onto the file itself or an alias of it), a temporary file swapped for a
//! symlink under an upload's extra SFTP sessions, and an SFTP server that lies about
//! sizes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mcpssh_testbed::{CallToolResultExt, Sshd, test_user_ids};
use serde_json::{Value, json};

use crate::common::Harness;

const OPENSSH_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// The hostile SFTP server (see the script's own description), run with `python3`.
const HOSTILE_SFTP_SERVER: &str = include_str!("hostile_sftp_server.py");

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn chown_to_test_user(path: &Path) {
    let (uid, gid) = test_user_ids().unwrap();
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// A directory owned by the test user that sshd's children can reach, made before the
/// daemon starts (for scripts its configuration names).
fn remote_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mcpssh-e2e-hostile-")
        .tempdir()
        .unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    chown_to_test_user(dir.path());
    dir
}

/// Writes an executable script `name` into `dir`.
fn script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A file owned by the test user.
fn put(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    chown_to_test_user(path);
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// An sshd whose `sftp` subsystem is the hostile server in `mode`.
fn hostile_sftp_sshd(dir: &Path, mode: &str) -> Sshd {
    let server = script(dir, "hostile_sftp_server.py", HOSTILE_SFTP_SERVER);
    Sshd::builder()
        .sftp_server(format!("/usr/bin/python3 {} {mode}", s(&server)))
        .start()
        .unwrap()
}

/// A harness against a hostile SFTP server in `mode`.
async fn hostile_harness(mode: &str) -> (Harness, tempfile::TempDir) {
    let remote = remote_dir();
    let sshd = hostile_sftp_sshd(remote.path(), mode);
    (Harness::start_with(sshd, &[]).await, remote)
}

/// A harness whose tools folder holds the `remote_op` fixture, granted remote reads
/// and writes.
async fn harness_with_remote_op(sshd: Sshd) -> (Harness, tempfile::TempDir) {
    let tools = tempfile::tempdir().unwrap();
    let wasm =
        mcpssh_testbed::target_dir().join("wasm-guests/wasm32-wasip2/release/remote_ops_tool.wasm");
    assert!(wasm.exists(), "{} is built with the host", wasm.display());
    fs::copy(&wasm, tools.path().join("remote_ops_tool.wasm")).unwrap();
    fs::write(
        tools.path().join("remote_ops_tool.toml"),
        "grants = [\"remote-read\", \"remote-write\"]\n",
    )
    .unwrap();
    let dir = s(tools.path());
    let h = Harness::start_with(sshd, &[("MCP_SSH_TOOLS_DIR", dir.as_str())]).await;
    assert!(h.tools.contains_key("remote_op"), "the fixture is listed");
    (h, tools)
}

async fn rename(h: &Harness, from: &Path, to: &Path) -> Value {
    h.ok(
        "remote_op",
        json!({"op": "rename", "path": s(from), "to": s(to), "overwrite": true}),
    )
    .await
}

// ---------------------------------------------------------------------------------
// No posix-rename.

#[tokio::test]
async fn without_posix_rename_a_file_renamed_onto_itself_or_an_alias_survives() {
    let sshd = Sshd::builder()
        .sftp_server(format!("{OPENSSH_SFTP_SERVER} -P posix-rename"))
        .start()
        .unwrap();
    let (h, _tools) = harness_with_remote_op(sshd).await;
    let dir = h.sshd.scratch_dir().to_path_buf();
    let file = dir.join("precious.txt");
    put(&file, b"precious");
    let alias_dir = dir.join("alias");
    std::os::unix::fs::symlink(&dir, &alias_dir).unwrap();
    chown_to_test_user(&alias_dir);

    // Onto itself, and onto itself through a symlinked directory.
    rename(&h, &file, &file).await;
    assert_eq!(fs::read(&file).unwrap(), b"precious", "renamed onto itself");
    rename(&h, &file, &alias_dir.join("precious.txt")).await;
    assert_eq!(
        fs::read(&file).unwrap(),
        b"precious",
        "renamed onto an alias"
    );

    // Onto a hard link of itself: the content stays under the destination's name.
    let link = dir.join("hardlink.txt");
    fs::hard_link(&file, &link).unwrap();
    rename(&h, &file, &link).await;
    assert_eq!(
        fs::read(&link).unwrap(),
        b"precious",
        "renamed onto a hard link"
    );

    // A real replacement still replaces, and leaves nothing behind.
    let new = dir.join("new.txt");
    put(&new, b"new");
    rename(&h, &new, &link).await;
    assert_eq!(fs::read(&link).unwrap(), b"new");
    assert!(!new.exists());
    assert!(
        !names(&dir).iter().any(|n| n.contains(".mcpssh-")),
        "left behind: {:?}",
        names(&dir)
    );
}

// ---------------------------------------------------------------------------------
// Extra upload lanes.

#[tokio::test]
async fn an_upload_lane_never_writes_through_a_temporary_file_swapped_for_a_symlink() {
    // Every SFTP session after the first starts by replacing the upload's temporary file
    // (created by the first session) with a symlink to `victim`: the extra lanes of a large
    // upload then open the victim when they open the temporary file by name.
    let remote = remote_dir();
    let d = s(remote.path());
    let wrapper = script(
        remote.path(),
        "sftp-wrapper.sh",
        &format!(
            "#!/bin/sh\n\
             for f in {d}/.big.bin.mcpssh-*.part; do\n\
             \x20 if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then mv \"$f\" {d}/moved-away.part; ln -s {d}/victim \"$f\"; fi\n\
             done\n\
             exec {OPENSSH_SFTP_SERVER}\n"
        ),
    );
    let victim = remote.path().join("victim");
    let victim_bytes = b"the victim's own content\n".repeat(1000);
    put(&victim, &victim_bytes);
    let sshd = Sshd::builder().sftp_server(s(&wrapper)).start().unwrap();
    let h = Harness::start_with(sshd, &[]).await;
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    fs::write(&src, vec![0x5a; 20 * 1024 * 1024]).unwrap();

    let result = h
        .call(
            "scp_upload",
            json!({"local_path": s(&src), "remote_path": format!("{d}/big.bin")}),
        )
        .await;
    assert!(
        remote.path().join("moved-away.part").exists(),
        "the swap happened: {:?}",
        names(remote.path())
    );
    assert!(
        fs::read(&victim).unwrap() == victim_bytes,
        "the upload wrote through the symlink into the victim"
    );
    assert!(result.is_error(), "{}", result.summary());
    let err = crate::common::check_error_shape(&result);
    assert!(err["error"].as_str().unwrap().contains("replaced"), "{err}");
    assert!(!remote.path().join("big.bin").exists());
    h.assert_still_serving().await;
}

// ---------------------------------------------------------------------------------
// Sizes.

#[tokio::test]
async fn a_download_checks_free_space_against_the_size_of_the_file_it_opened() {
    // By name the file has 1 KiB; opened, it claims a petabyte.
    let (h, _remote) = hostile_harness("growing-file").await;
    let local = tempfile::tempdir().unwrap();
    let err = h
        .tool_error(
            "scp_download",
            json!({
                "local_path": s(&local.path().join("got.bin")),
                "remote_path": "/srv/grows.bin",
                "max_size": i64::MAX,
            }),
        )
        .await;
    assert_eq!(err["error_kind"], "no-space", "{err}");
    assert!(names(local.path()).is_empty(), "{:?}", names(local.path()));
}
