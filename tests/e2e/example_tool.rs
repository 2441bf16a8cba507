//! The example custom tool `host_facts` (guest-tools/examples/host-facts) as a user runs it:
//! copied with its grant file into a tools folder (MCP_SSH_TOOLS_DIR), served next to the
//! built-ins, tried with `mcpssh call`, and refused without its grant. The test sshd runs on
//! this machine, so the facts are checked against the local system.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mcpssh_testbed::Sshd;
use serde_json::{Value, json};

use crate::common::{Harness, bin};

const WASM: &str = "host_facts.wasm";

/// The component, built by the host's build script with the whole guest-tools workspace.
fn component() -> PathBuf {
    let path = mcpssh_testbed::target_dir()
        .join("wasm-guests/wasm32-wasip2/release")
        .join(WASM);
    assert!(path.exists(), "{} is built with the host", path.display());
    path
}

/// The grant file shipped with the example.
fn grant_file() -> PathBuf {
    mcpssh_testbed::workspace_root().join("guest-tools/examples/host-facts/host_facts.toml")
}

/// A tools folder with the component and, when `granted`, its grant file.
fn tools_dir(granted: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component(), dir.path().join(WASM)).unwrap();
    if granted {
        std::fs::copy(grant_file(), dir.path().join("host_facts.toml")).unwrap();
    }
    dir
}

async fn harness(dir: &Path) -> Harness {
    let dir = dir.display().to_string();
    Harness::start_with(
        Sshd::start().unwrap(),
        &[("MCP_SSH_TOOLS_DIR", dir.as_str())],
    )
    .await
}

/// `mcpssh tools list` with the tools folder and nothing else configured.
fn tools_list(dir: &Path) -> String {
    let out = Command::new(bin())
        .args(["tools", "list"])
        .env("MCP_SSH_TOOLS_DIR", dir)
        .env("MCP_SSH_CACHE_DIR", mcpssh_testbed::shared_cache_dir())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    listing
}

/// Standard output of a local command, trimmed.
fn local(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// This machine's name (what `hostname` and `uname -n` print).
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// A `Key:  value kB` line of the local /proc/meminfo, in bytes.
fn local_meminfo(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A field of the local /etc/os-release, unquoted.
fn local_os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_owned())
}

/// Mount points in the local `df -PkT` (mount points without spaces), without tmpfs,
/// devtmpfs and overlay, with their type and size in bytes.
fn local_disks() -> Vec<(String, String, u64)> {
    let out = Command::new("df").arg("-PkT").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() != 7 || ["tmpfs", "devtmpfs", "overlay"].contains(&w[1]) {
                return None;
            }
            let size = w[2].parse::<u64>().ok()? * 1024;
            Some((w[6].to_owned(), w[1].to_owned(), size))
        })
        .collect()
}

/// The three load averages in the local /proc/loadavg.
fn local_loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap();
    let mut words = text.split_whitespace().map(|w| w.parse::<f64>().unwrap());
    [(); 3].map(|_| words.next().unwrap())
}

/// Whether the test user can reach `mount` (`df` skips a mount point it cannot).
fn test_user_reaches(sshd: &Sshd, mount: &str) -> bool {
    sshd.ssh_command(&format!("stat -f -- '{mount}' >/dev/null"))
        .status()
        .unwrap()
        .success()
}

/// Checks `facts` (a `host_facts` result) against this machine, served by `sshd`, with the
/// load averages read just before the call.
fn assert_local_facts(facts: &Value, sshd: &Sshd, load_before: [f64; 3]) {
    assert_eq!(facts["success"], true, "{facts}");
    assert_eq!(facts["unavailable"], json!([]), "{facts}");
    assert_eq!(facts["warnings"], json!([]), "{facts}");

    let kernel = &facts["kernel"];
    assert_eq!(
        format!(
            "{} {} {}",
            kernel["name"].as_str().unwrap(),
            kernel["release"].as_str().unwrap(),
            kernel["machine"].as_str().unwrap()
        ),
        local("uname", &["-srm"]),
        "{facts}"
    );
    assert_eq!(facts["hostname"], local_hostname(), "{facts}");
    assert_eq!(
        facts["cpu_count"],
        local("nproc", &[]).parse::<u64>().unwrap(),
        "{facts}"
    );
    assert_eq!(
        facts["memory"]["total_bytes"],
        local_meminfo("MemTotal"),
        "{facts}"
    );
    let available = facts["memory"]["available_bytes"].as_u64().unwrap();
    assert!(
        available > 0 && available <= local_meminfo("MemTotal"),
        "{facts}"
    );
    if let Some(id) = local_os_release("ID") {
        assert_eq!(facts["os"]["id"], id, "{facts}");
    }
    if let Some(version_id) = local_os_release("VERSION_ID") {
        assert_eq!(facts["os"]["version_id"], version_id, "{facts}");
    }

    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let remote_uptime = facts["uptime_seconds"].as_u64().unwrap() as f64;
    assert!(
        (remote_uptime - uptime).abs() < 120.0,
        "uptime {remote_uptime} vs local {uptime}"
    );
    // /proc/loadavg as read before and after the call (the kernel updates it every 5 s),
    // with some slack for a busy machine.
    let load_after = local_loadavg();
    for (i, which) in ["one", "five", "fifteen"].into_iter().enumerate() {
        let load = facts["load_average"][which].as_f64().unwrap();
        assert!(load >= 0.0, "{facts}");
        let (low, high) = (
            load_before[i].min(load_after[i]),
            load_before[i].max(load_after[i]),
        );
        let slack = 0.5 + 0.2 * high;
        assert!(
            (low - slack..=high + slack).contains(&load),
            "{which}-minute load {load}, /proc/loadavg {} before and {} after",
            load_before[i],
            load_after[i]
        );
    }

    // Disks: only real file systems, each one the local df shows too (the remote user may see
    // fewer: df skips a mount point it cannot reach), with the same type and size.
    let disks = facts["disks"].as_array().unwrap();
    let local = local_disks();
    for disk in disks {
        let fs_type = disk["fs_type"].as_str().unwrap();
        assert!(
            !["tmpfs", "devtmpfs", "overlay"].contains(&fs_type),
            "{disk}"
        );
        assert!(
            disk["used_bytes"].as_u64().unwrap() <= disk["size_bytes"].as_u64().unwrap(),
            "{disk}"
        );
        let mount = disk["mount"].as_str().unwrap();
        if mount.contains(' ') {
            continue;
        }
        let (_, local_type, local_size) = local
            .iter()
            .find(|(m, _, _)| m == mount)
            .unwrap_or_else(|| panic!("{mount} is not mounted here: {local:?}"));
        assert_eq!(fs_type, local_type, "{disk}");
        assert_eq!(disk["size_bytes"], *local_size, "{disk}");
    }
    let remote_mounts: BTreeSet<&str> =
        disks.iter().map(|d| d["mount"].as_str().unwrap()).collect();
    if local.iter().any(|(m, _, _)| m == "/") {
        assert!(remote_mounts.contains("/"), "{facts}");
    }
    // And every one the local df shows, unless the test user cannot reach it: an empty
    // list passes only where there is no real file system to report.
    let reachable: BTreeSet<&str> = local
        .iter()
        .map(|(m, _, _)| m.as_str())
        .filter(|m| remote_mounts.contains(m) || test_user_reaches(sshd, m))
        .collect();
    let reported: BTreeSet<&str> = remote_mounts
        .iter()
        .copied()
        .filter(|m| !m.contains(' '))
        .collect();
    assert_eq!(reported, reachable, "disks: {facts}");
}

#[tokio::test]
async fn host_facts_from_a_tools_folder_match_this_machine() {
    let dir = tools_dir(true);
    let h = harness(dir.path()).await;

    let tool = h.tools.get("host_facts").expect("host_facts is listed");
    // It declares itself read-only, but it imports `exec` and a command can change
    // anything: the host advertises what its imports allow.
    let annotations = tool.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.read_only_hint, Some(false));
    assert_eq!(annotations.destructive_hint, Some(true));
    assert_eq!(annotations.idempotent_hint, Some(false));
    assert_eq!(annotations.open_world_hint, Some(true));
    assert!(
        tool.output_schema.is_some(),
        "the SDK derives an output schema"
    );

    // `ok` also checks the result against the advertised output schema.
    let load_before = local_loadavg();
    let facts = h.ok("host_facts", json!({})).await;
    assert_local_facts(&facts, &h.sshd, load_before);

    // The optional `host` picks an open session, like the built-ins.
    let connect = h.ok("ssh_connect", json!({})).await;
    let session = connect["session"].as_str().unwrap();
    let facts = h.ok("host_facts", json!({ "host": session })).await;
    assert_eq!(facts["hostname"], local_hostname(), "{facts}");

    // Argument errors name the field.
    let error = h.tool_error("host_facts", json!({ "host": "a b" })).await;
    crate::common::assert_invalid_argument(&error, "host");
    let error = h.tool_error("host_facts", json!({ "verbose": true })).await;
    crate::common::assert_invalid_argument(&error, "verbose");

    // Read-only and idempotent: the same facts again; the built-ins are unaffected.
    let again = h.ok("host_facts", json!({})).await;
    assert_eq!(again["kernel"], facts["kernel"]);
    assert_eq!(
        again["memory"]["total_bytes"],
        facts["memory"]["total_bytes"]
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn without_its_grant_file_host_facts_is_not_loaded() {
    let dir = tools_dir(false);
    let listing = tools_list(dir.path());
    let refused = listing
        .lines()
        .find(|l| l.starts_with("NOT LOADED") && l.contains(WASM))
        .unwrap_or_else(|| panic!("host_facts.wasm is reported: {listing}"));
    assert!(
        refused.contains("exec") && refused.contains("not granted"),
        "the missing grant is named: {refused}"
    );
    assert!(
        !listing.lines().any(|l| l.starts_with("host_facts\t")),
        "{listing}"
    );

    // The server starts without it and the built-ins work.
    let h = harness(dir.path()).await;
    assert!(!h.tools.contains_key("host_facts"));
    assert!(h.tools.contains_key("ssh_execute"));
    h.assert_still_serving().await;

    // With the grant file beside it, it is listed with the one capability it imports.
    std::fs::copy(grant_file(), dir.path().join("host_facts.toml")).unwrap();
    let listing = tools_list(dir.path());
    let line = listing
        .lines()
        .find(|l| l.starts_with("host_facts\t"))
        .unwrap_or_else(|| panic!("host_facts is listed once granted: {listing}"));
    assert!(line.ends_with("imports: exec"), "{line}");
    assert!(!listing.contains("NOT LOADED"), "{listing}");
}

#[tokio::test]
async fn mcpssh_call_runs_host_facts_without_an_mcp_client() {
    let sshd = Sshd::start().unwrap();
    let dir = tools_dir(true);
    let load_before = local_loadavg();
    let out = Command::new(bin())
        .args(["call", "host_facts", "{}"])
        .envs(sshd.mcp_env())
        .env("MCP_SSH_TOOLS_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: Value = serde_json::from_str(&stdout).expect("the structured result, as JSON");
    assert_local_facts(&facts, &sshd, load_before);
}
