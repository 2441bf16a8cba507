//! Hostile and unusual remote hosts: a server without `posix-rename@openssh.com`
//! (renames onto the file itself or an alias of it), a temporary file swapped for a
//! symlink under an upload's extra SFTP sessions, and SFTP servers that lie about sizes,
//! list endlessly, or block on a FIFO; a local FIFO as an upload's source; NUL bytes in
//! remote paths; a forged PID marker.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcpssh_testbed::rmcp::model::ReadResourceRequestParams;
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

// ---------------------------------------------------------------------------------
// Listings.

/// `call` must answer within a minute.
async fn within_a_minute<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), call)
        .await
        .unwrap_or_else(|_| panic!("{what} never ended"))
}

#[tokio::test]
async fn an_endless_listing_of_huge_names_stays_within_its_byte_bound() {
    // A tool component asks for every entry (limit u32::MAX) and reports what it got.
    let remote = remote_dir();
    let sshd = hostile_sftp_sshd(remote.path(), "huge-names");
    let (h, _tools) = harness_with_remote_op(sshd).await;
    let out = within_a_minute(
        "the listing",
        h.ok("remote_op", json!({"op": "list", "path": "/srv"})),
    )
    .await;
    assert_eq!(out["more"], true, "{out}");
    let (entries, bytes) = (
        out["entries"].as_u64().unwrap(),
        out["name_bytes"].as_u64().unwrap(),
    );
    assert!(entries > 0, "{out}");
    assert!(
        bytes <= 8 * 1024 * 1024,
        "{entries} entries with {bytes} bytes of names"
    );
}

#[tokio::test]
async fn an_endless_listing_of_dot_entries_ends() {
    let (h, _remote) = hostile_harness("endless-dots").await;
    let out = within_a_minute(
        "the listing",
        h.ok("scp_listdir", json!({"path": "/srv", "limit": 10000})),
    )
    .await;
    assert_eq!(out["entries"], json!([]));
    assert_eq!(out["truncated"], true);
}

// ---------------------------------------------------------------------------------
// FIFOs, NUL bytes.

/// SFTP sessions the server started so far.
fn sftp_sessions(sshd: &Sshd) -> usize {
    sshd.log()
        .matches("Starting session: subsystem 'sftp'")
        .count()
}

/// Reads `sftp://_{path}` (the path percent-encoded as given); a minute at most.
async fn read_resource(
    h: &Harness,
    path: &str,
) -> Result<mcpssh_testbed::rmcp::model::ReadResourceResult, mcpssh_testbed::rmcp::ServiceError> {
    let read = h
        .server
        .peer()
        .read_resource(ReadResourceRequestParams::new(format!("sftp://_{path}")));
    within_a_minute(&format!("reading {path} as a resource"), read).await
}

#[tokio::test]
async fn a_remote_fifo_read_as_a_resource_is_refused_and_sftp_keeps_serving() {
    let h = Harness::start().await;
    let dir = h.sshd.scratch_dir().to_path_buf();
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    chown_to_test_user(&fifo);
    let link = dir.join("link-to-fifo");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    put(&dir.join("plain.txt"), b"plain\n");

    for path in [&fifo, &link] {
        let err = read_resource(&h, &s(path)).await.unwrap_err();
        assert!(
            format!("{err}").contains("not a regular file"),
            "{}: {err}",
            path.display()
        );
    }
    // The shared SFTP session still answers at once.
    let started = Instant::now();
    let read = read_resource(&h, &s(&dir.join("plain.txt"))).await.unwrap();
    assert!(format!("{read:?}").contains("plain"), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        sftp_sessions(&h.sshd),
        1,
        "one SFTP session served everything"
    );
}

#[tokio::test]
async fn a_local_fifo_as_an_upload_source_is_refused_at_once() {
    let h = Harness::start().await;
    let local = tempfile::tempdir().unwrap();
    let fifo = local.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let remote = h.sshd.scratch_dir().join("from-fifo");
    let err = within_a_minute(
        "uploading a FIFO",
        h.tool_error(
            "scp_upload",
            json!({"local_path": s(&fifo), "remote_path": s(&remote)}),
        ),
    )
    .await;
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{err}"
    );
    assert!(!remote.exists());
}

#[tokio::test]
async fn a_nul_byte_in_a_remote_path_is_refused_before_it_reaches_the_server() {
    let (h, _tools) = harness_with_remote_op(Sshd::start().unwrap()).await;
    let dir = s(h.sshd.scratch_dir());
    // Through the resource template (percent-encoded) and a tool component (raw).
    let err = read_resource(&h, &format!("{dir}/a%00b"))
        .await
        .unwrap_err();
    assert!(format!("{err}").contains("NUL"), "{err}");
    for op in ["list", "stat"] {
        let err = h
            .tool_error(
                "remote_op",
                json!({"op": op, "path": format!("{dir}/a\u{0}b")}),
            )
            .await;
        assert!(
            err["error"].as_str().unwrap().contains("NUL"),
            "{op}: {err}"
        );
    }
    let err = h
        .tool_error(
            "remote_op",
            json!({"op": "rename", "path": format!("{dir}/x"), "to": "/tmp/\u{0}", "overwrite": true}),
        )
        .await;
    assert!(err["error"].as_str().unwrap().contains("NUL"), "{err}");
    // The one SFTP session (started by the first call) was never killed.
    let out = h.ok("remote_op", json!({"op": "list", "path": dir})).await;
    assert_eq!(out["more"], false, "{out}");
    assert_eq!(sftp_sessions(&h.sshd), 1, "the SFTP session was restarted");
}

// ---------------------------------------------------------------------------------
// PID markers.

#[tokio::test]
async fn a_forged_pid_marker_never_makes_the_host_kill_process_group_one() {
    // The server runs every command through a ForceCommand that records it. Commands
    // holding HOSTILE get a forged marker `1` printed before the real one. Kill commands
    // are only recorded, never run.
    let remote = remote_dir();
    let log = remote.path().join("commands.log");
    put(&log, b"");
    let force = script(
        remote.path(),
        "force-command.sh",
        &format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$SSH_ORIGINAL_COMMAND\" >> {log}\n\
             case \"$SSH_ORIGINAL_COMMAND\" in *'kill -TERM'*) exit 0 ;; esac\n\
             case \"$SSH_ORIGINAL_COMMAND\" in *HOSTILE*) printf '\\036mcpssh-pid:1\\n' ;; esac\n\
             exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            log = s(&log)
        ),
    );
    let sshd = Sshd::builder()
        .config_line(format!("ForceCommand {}", s(&force)))
        .start()
        .unwrap();
    let h = Harness::start_with(sshd, &[]).await;
    let hostile = h
        .ok(
            "ssh_execute",
            json!({"command": "sleep 47.1 # HOSTILE", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(hostile["timed_out"], true, "{hostile}");
    // A command with an honest marker: its kill is recorded after the hostile one's
    // would have been.
    let honest = h
        .ok(
            "ssh_execute",
            json!({"command": "sleep 47.2", "timeout_seconds": 1}),
        )
        .await;
    assert_eq!(honest["timed_out"], true, "{honest}");
    let kills = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("kill -TERM"))
            .map(str::to_owned)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while kills(&fs::read_to_string(&log).unwrap()).is_empty() {
        assert!(Instant::now() < deadline, "no kill command was ever sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = kills(&fs::read_to_string(&log).unwrap());
    for line in &sent {
        let pgid: i64 = line
            .split("kill -TERM -")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable kill command: {line}"));
        assert!(pgid > 1, "the host signalled process group {pgid}: {line}");
    }
    assert_eq!(
        sent.len(),
        1,
        "only the honest command was killed: {sent:?}"
    );
}
