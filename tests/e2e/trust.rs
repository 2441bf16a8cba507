//! The files that decide what runs with which rights cannot be swapped behind the user's
//! back: cached compiled code is authenticated (a tampered entry is compiled again, never
//! loaded), components, grant files and the tools folder that another user could change
//! are refused, and a grant file's `sha256` pin refuses a replaced component. The same
//! holds for the files that steer connections and the record: `~/.ssh/config` and its
//! includes, the policy file, the audit log and its key.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use sha2::{Digest, Sha256};

use mcpssh_testbed::Sshd;

use crate::client_setup::{FROM_CONFIG_ONLY, NO_AGENT, empty_home, host_block, write_ssh_config};
use crate::common::{Harness, bin, start_up_failure};
use crate::custom_tools::component;

/// `mcpssh tools list` with only a tools folder and a cache directory configured: its
/// standard output (the listing) and standard error (the log).
fn tools_list(tools: &Path, cache: &Path) -> (String, String) {
    let out = Command::new(bin())
        .args(["tools", "list"])
        .env("MCP_SSH_TOOLS_DIR", tools)
        .env("MCP_SSH_CACHE_DIR", cache)
        .env("MCP_SSH_LOG", "warn")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{listing}\n{log}");
    (listing, log)
}

/// The entries of a compiled-code cache.
fn cache_entries(cache: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

/// The one entry in `after` that is not in `before`.
fn new_entry(before: &BTreeSet<PathBuf>, after: &BTreeSet<PathBuf>) -> PathBuf {
    let new: Vec<_> = after.difference(before).collect();
    assert_eq!(new.len(), 1, "one new cache entry: {new:?}");
    new[0].clone()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A tools folder (only the user may change it) with copies of `files`.
fn tools_folder(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    for file in files {
        let to = dir.path().join(file);
        std::fs::copy(component(file), &to).unwrap();
        chmod(&to, 0o644);
    }
    dir
}

/// Native code is what the cache holds: an entry replaced by the (genuine) compiled code
/// of another component must not run in its place. It is refused, the component is
/// compiled again, and it works.
#[tokio::test]
async fn a_tampered_cache_entry_is_compiled_again_not_loaded() {
    let cache = tempfile::tempdir().unwrap();
    let tools = tools_folder(&[]);
    tools_list(tools.path(), cache.path());
    let builtins = cache_entries(cache.path());

    // Find the entries of two components by adding them one at a time.
    std::fs::copy(
        component("trap_tool.wasm"),
        tools.path().join("trap_tool.wasm"),
    )
    .unwrap();
    tools_list(tools.path(), cache.path());
    let with_trap = cache_entries(cache.path());
    let trap_entry = new_entry(&builtins, &with_trap);
    std::fs::remove_file(tools.path().join("trap_tool.wasm")).unwrap();
    std::fs::copy(
        component("spin_tool.wasm"),
        tools.path().join("spin_tool.wasm"),
    )
    .unwrap();
    tools_list(tools.path(), cache.path());
    let spin_entry = new_entry(&with_trap, &cache_entries(cache.path()));
    std::fs::remove_file(tools.path().join("spin_tool.wasm")).unwrap();

    // The spinning tool's code planted as the trapping tool's.
    std::fs::copy(&spin_entry, &trap_entry).unwrap();
    std::fs::copy(
        component("trap_tool.wasm"),
        tools.path().join("trap_tool.wasm"),
    )
    .unwrap();
    let (listing, log) = tools_list(tools.path(), cache.path());
    assert!(
        !listing.contains("spin_forever"),
        "the planted code was loaded: {listing}"
    );
    assert!(listing.contains("trap_now"), "{listing}\n{log}");
    assert!(log.contains("ignoring cached code"), "{log}");
    assert_ne!(
        std::fs::read(&trap_entry).unwrap(),
        std::fs::read(&spin_entry).unwrap(),
        "the entry was written again"
    );

    // The rewritten entry is trusted again, and the tool runs as itself.
    let (_, log) = tools_list(tools.path(), cache.path());
    assert!(!log.contains("ignoring cached code"), "{log}");
    let h = Harness::start_with(
        Sshd::start().unwrap(),
        &[
            ("MCP_SSH_TOOLS_DIR", tools.path().to_str().unwrap()),
            ("MCP_SSH_CACHE_DIR", cache.path().to_str().unwrap()),
        ],
    )
    .await;
    let error = h.tool_error("trap_now", json!({})).await;
    assert_eq!(error["error_kind"], "guest-trap", "{error}");
    h.assert_still_serving().await;
}

/// Another local user who could change a component, its grant file or the tools folder
/// could give their own code the user's grants: such files are refused, with the reason.
#[tokio::test]
async fn files_another_user_could_change_are_refused() {
    let cache = mcpssh_testbed::shared_cache_dir();
    let tools = tools_folder(&["host_facts.wasm", "trap_tool.wasm"]);
    let wasm = tools.path().join("host_facts.wasm");
    let grants = tools.path().join("host_facts.toml");
    std::fs::write(&grants, "grants = [\"exec\"]\n").unwrap();
    chmod(&grants, 0o644);
    let (listing, log) = tools_list(tools.path(), &cache);
    assert!(!listing.contains("NOT LOADED"), "{listing}\n{log}");
    assert!(listing.contains("host_facts"), "{listing}");

    for (file, mode, named) in [
        (&wasm, 0o666, "the component"),
        (&wasm, 0o664, "the component"),
        (&grants, 0o646, "the grant file"),
        (&grants, 0o660, "the grant file"),
    ] {
        chmod(file, mode);
        let (listing, log) = tools_list(tools.path(), &cache);
        let refusal = listing
            .lines()
            .find(|l| l.starts_with("NOT LOADED"))
            .unwrap_or_else(|| panic!("{} at {mode:o} was loaded: {listing}", file.display()));
        assert!(
            refusal.contains(named)
                && refusal.contains(&file.display().to_string())
                && refusal.contains("chmod go-w"),
            "{refusal}"
        );
        assert!(log.contains("custom tool not loaded"), "{log}");
        assert!(
            listing.contains("trap_now"),
            "the other component still loads: {listing}"
        );
        chmod(file, 0o644);
    }

    // Owned by another user (possible to set up only as root).
    if running_as_root() {
        let (uid, gid) = mcpssh_testbed::test_user_ids().unwrap();
        std::os::unix::fs::chown(&grants, Some(uid), Some(gid)).unwrap();
        let (listing, _) = tools_list(tools.path(), &cache);
        assert!(
            listing.contains("NOT LOADED") && listing.contains(&format!("user id {uid}")),
            "{listing}"
        );
        std::os::unix::fs::chown(&grants, Some(0), Some(0)).unwrap();
    }

    // A folder others can add files to is refused as a whole.
    chmod(tools.path(), 0o1777);
    let (listing, _) = tools_list(tools.path(), &cache);
    assert!(
        !listing.contains("trap_now") && !listing.contains("host_facts\t"),
        "{listing}"
    );
    assert!(
        listing.contains("NOT LOADED") && listing.contains("the tools folder"),
        "{listing}"
    );
    assert!(
        listing.contains("ssh_execute"),
        "the built-ins are served: {listing}"
    );
    chmod(tools.path(), 0o755);
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A grant file can pin its component: another component copied over it is not loaded
/// with the grants meant for the original; the right one is.
#[tokio::test]
async fn a_pinned_grant_file_refuses_a_swapped_component() {
    let cache = mcpssh_testbed::shared_cache_dir();
    let tools = tools_folder(&["host_facts.wasm"]);
    let wasm = tools.path().join("host_facts.wasm");
    let pin = hex::encode(Sha256::digest(std::fs::read(&wasm).unwrap()));
    std::fs::write(
        tools.path().join("host_facts.toml"),
        format!("grants = [\"exec\"]\nsha256 = \"{}\"\n", pin.to_uppercase()),
    )
    .unwrap();
    let (listing, log) = tools_list(tools.path(), &cache);
    assert!(!listing.contains("NOT LOADED"), "{listing}\n{log}");
    assert!(listing.contains("host_facts"), "{listing}");

    // Another component under the same name.
    std::fs::copy(component("trap_tool.wasm"), &wasm).unwrap();
    let (listing, _) = tools_list(tools.path(), &cache);
    assert!(!listing.contains("trap_now"), "{listing}");
    let refusal = listing
        .lines()
        .find(|l| l.starts_with("NOT LOADED"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        refusal.contains(&pin) && refusal.contains("replaced"),
        "{refusal}"
    );

    // A malformed pin is refused, not ignored.
    std::fs::copy(component("host_facts.wasm"), &wasm).unwrap();
    std::fs::write(
        tools.path().join("host_facts.toml"),
        "grants = [\"exec\"]\nsha256 = \"abc\"\n",
    )
    .unwrap();
    let (listing, _) = tools_list(tools.path(), &cache);
    assert!(
        listing.contains("NOT LOADED") && listing.contains("64 hex digits"),
        "{listing}"
    );
}

/// `~/.ssh/config` (and each file it includes) that another user could change is refused,
/// as OpenSSH refuses it ("Bad owner or permissions"): such a user could point an alias at
/// their own machine and name their own known_hosts file. The refusal names the file and
/// the fix; the server keeps serving, and a fixed file is read at the next connection.
#[tokio::test]
async fn an_ssh_config_another_user_could_change_is_refused() {
    let sshd = Sshd::start().unwrap();
    let known_hosts = sshd.dir().join("alias_known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).unwrap();
    let included = sshd.dir().join("hosts.conf");
    std::fs::write(
        &included,
        host_block("testalias", &sshd, sshd.client_key_path(), &known_hosts),
    )
    .unwrap();
    let config = write_ssh_config(sshd.dir(), &format!("Include {}\n", included.display()));
    let config = PathBuf::from(config);
    let home = empty_home();
    let home_path = home.path().display().to_string();
    let config_arg = config.display().to_string();
    let mut extra = FROM_CONFIG_ONLY.to_vec();
    extra.extend([
        ("MCP_SSH_HOSTNAME", "testalias"),
        ("MCP_SSH_CONFIG", config_arg.as_str()),
        ("MCP_SSH_STRICT_HOST_KEY_CHECKING", "yes"),
        ("HOME", home_path.as_str()),
        ("SSH_AUTH_SOCK", NO_AGENT),
    ]);
    let h = Harness::start_with(sshd, &extra).await;

    for (file, mode) in [
        (&config, 0o664),
        (&config, 0o646),
        (&included, 0o620),
        (&included, 0o666),
    ] {
        chmod(file, mode);
        let refused = h
            .tool_error("ssh_connect", json!({"host": "testalias"}))
            .await;
        let message = refused["error"].as_str().unwrap();
        assert!(
            message.contains("the ssh configuration")
                && message.contains(&file.display().to_string())
                && message.contains("chmod go-w"),
            "{} at {mode:o}: {refused}",
            file.display()
        );
        chmod(file, 0o644);
    }
    if running_as_root() {
        let (uid, gid) = mcpssh_testbed::test_user_ids().unwrap();
        std::os::unix::fs::chown(&included, Some(uid), Some(gid)).unwrap();
        let refused = h
            .tool_error("ssh_connect", json!({"host": "testalias"}))
            .await;
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains(&format!("user id {uid}")),
            "{refused}"
        );
        std::os::unix::fs::chown(&included, Some(0), Some(0)).unwrap();
    }
    assert_eq!(
        h.sshd.count_sessions(),
        0,
        "nothing connected on a refused configuration"
    );

    // Fixed: the next connection reads it.
    let connect = h.ok("ssh_connect", json!({"host": "testalias"})).await;
    assert_eq!(connect["session"], "testalias", "{connect}");
    h.assert_still_serving().await;
}

/// A policy file another user could change could be loosened behind the user's back; an
/// audit key others can read lets them forge the record; an audit log others can write
/// lets them rewrite it. Each stops start-up with one line naming the file and the fix.
#[tokio::test]
async fn a_policy_or_audit_file_another_user_could_change_stops_start_up() {
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "preset = \"standard\"\n").unwrap();
    let policy_arg = policy.display().to_string();

    for mode in [0o666, 0o664] {
        chmod(&policy, mode);
        let stderr = start_up_failure(&sshd, &[("MCP_SSH_POLICY", &policy_arg)]).await;
        assert!(
            stderr.contains("the policy file")
                && stderr.contains(&policy_arg)
                && stderr.contains("chmod go-w"),
            "policy at {mode:o}: {stderr}"
        );
    }
    chmod(&policy, 0o644);
    if running_as_root() {
        let (uid, gid) = mcpssh_testbed::test_user_ids().unwrap();
        std::os::unix::fs::chown(&policy, Some(uid), Some(gid)).unwrap();
        let stderr = start_up_failure(&sshd, &[("MCP_SSH_POLICY", &policy_arg)]).await;
        assert!(stderr.contains(&format!("user id {uid}")), "{stderr}");
        std::os::unix::fs::chown(&policy, Some(0), Some(0)).unwrap();
    }

    let log = dir.path().join("audit.log");
    let log_arg = log.display().to_string();
    let key = dir.path().join("audit.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let key_arg = key.display().to_string();
    let audit = [
        ("MCP_SSH_AUDIT_LOG", log_arg.as_str()),
        ("MCP_SSH_AUDIT_KEY_FILE", key_arg.as_str()),
    ];
    chmod(&key, 0o644);
    let stderr = start_up_failure(&sshd, &audit).await;
    assert!(
        stderr.contains("the audit key file") && stderr.contains("chmod go-rwx"),
        "{stderr}"
    );
    chmod(&key, 0o600);
    let link = dir.path().join("key-link");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let link_arg = link.display().to_string();
    let stderr = start_up_failure(
        &sshd,
        &[
            ("MCP_SSH_AUDIT_LOG", log_arg.as_str()),
            ("MCP_SSH_AUDIT_KEY_FILE", link_arg.as_str()),
        ],
    )
    .await;
    assert!(stderr.contains("is a symbolic link"), "{stderr}");

    std::fs::write(&log, "").unwrap();
    chmod(&log, 0o666);
    let stderr = start_up_failure(&sshd, &audit).await;
    assert!(
        stderr.contains("the audit log") && stderr.contains("chmod go-w"),
        "{stderr}"
    );

    // A log that is a symlink (here to a file of the user's own) or a FIFO another user
    // planted: refused, without writing through it or waiting on it.
    chmod(&log, 0o600);
    let bashrc = dir.path().join("bashrc");
    std::fs::write(&bashrc, "# the user's own file\n").unwrap();
    let planted = dir.path().join("planted.log");
    std::os::unix::fs::symlink(&bashrc, &planted).unwrap();
    let planted_arg = planted.display().to_string();
    let fifo = dir.path().join("fifo.log");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo_arg = fifo.display().to_string();
    for bad in [&planted_arg, &fifo_arg] {
        let stderr = start_up_failure(
            &sshd,
            &[
                ("MCP_SSH_AUDIT_LOG", bad.as_str()),
                ("MCP_SSH_AUDIT_CHAIN", "true"),
            ],
        )
        .await;
        assert!(stderr.contains("audit log"), "{bad}: {stderr}");
    }
    assert_eq!(
        std::fs::read_to_string(&bashrc).unwrap(),
        "# the user's own file\n",
        "the log was written through the symlink"
    );

    // Each fixed, the server starts and serves with them.
    let mut extra = audit.to_vec();
    extra.push(("MCP_SSH_POLICY", policy_arg.as_str()));
    let h = Harness::start_with(sshd, &extra).await;
    h.assert_still_serving().await;
    let record = std::fs::read_to_string(&log).unwrap();
    assert!(record.contains("still-here"), "{record}");
}
