//! User-supplied tool components loaded from MCP_SSH_TOOLS_DIR: grants by imports, and
//! hostile guests (a trap, an endless loop, a memory bomb, stdout noise) that must end as
//! error results while the server and the built-ins keep working.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcpssh_testbed::Sshd;
use serde_json::json;

use crate::common::{Harness, bin};

/// A component built by the host's build script (guest-tools workspace).
pub(crate) fn component(file: &str) -> PathBuf {
    let path = mcpssh_testbed::target_dir()
        .join("wasm-guests/wasm32-wasip2/release")
        .join(file);
    assert!(path.exists(), "{} is built with the host", path.display());
    path
}

/// A tools folder holding `files`, each with an optional grant file.
pub(crate) fn tools_dir(files: &[(&str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, grants) in files {
        std::fs::copy(component(file), dir.path().join(file)).unwrap();
        if let Some(grants) = grants {
            let toml = Path::new(file).with_extension("toml");
            std::fs::write(dir.path().join(toml), grants).unwrap();
        }
    }
    dir
}

pub(crate) async fn harness_with_tools(dir: &Path, extra: &[(&str, &str)]) -> Harness {
    let dir = dir.display().to_string();
    let mut env = vec![("MCP_SSH_TOOLS_DIR", dir.as_str())];
    env.extend_from_slice(extra);
    Harness::start_with(Sshd::start().unwrap(), &env).await
}

#[tokio::test]
async fn a_guest_that_traps_is_an_error_result_not_a_crash() {
    let dir = tools_dir(&[("trap_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[]).await;
    assert!(h.tools.contains_key("trap_now"), "custom tool listed");
    let error = h.tool_error("trap_now", json!({})).await;
    assert_eq!(error["error_kind"], "guest-trap", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("trap_now"),
        "{error}"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_cpu_limit() {
    let dir = tools_dir(&[("spin_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[("MCP_SSH_TOOL_CPU_MS", "300")]).await;
    let started = Instant::now();
    let error = h.tool_error("spin_forever", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("300 ms"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn other_calls_are_served_while_a_guest_spins() {
    // The server runs on one worker thread: a spinning guest must yield it to other calls.
    let dir = tools_dir(&[("spin_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[("MCP_SSH_TOOL_CPU_MS", "8000")]).await;
    h.exec("true").await;
    let spinning = async {
        let error = h.tool_error("spin_forever", json!({})).await;
        (Instant::now(), error)
    };
    let others = async {
        // Give the spinner a head start, then run commands beside it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for i in 0..5 {
            let out = h.exec(&format!("echo beside-{i}")).await;
            assert_eq!(out["stdout"], format!("beside-{i}\n"), "{out}");
        }
        Instant::now()
    };
    let ((spinner_done, error), others_done) = tokio::join!(spinning, others);
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        others_done < spinner_done,
        "the commands beside the spinning guest waited for it to be stopped"
    );
}

/// A guest's CPU budget is its own: time it waits for the (one) worker thread while
/// other guests run is not charged to it. Three guests spinning at once on one thread,
/// each with a 1 s budget, need about 3 s of the thread between them; if each were charged
/// for the others' turns, all three would be stopped after about 1 s.
#[tokio::test]
async fn a_guest_is_not_charged_for_the_time_other_guests_hold_the_thread() {
    let dir = tools_dir(&[("spin_tool.wasm", None)]);
    let h = harness_with_tools(
        dir.path(),
        &[
            ("MCP_SSH_TOOL_CPU_MS", "1000"),
            ("TOKIO_WORKER_THREADS", "1"),
            ("MCP_SSH_TOOL_TIMEOUT", "30"),
        ],
    )
    .await;
    let started = Instant::now();
    let spin = || async {
        let error = h.tool_error("spin_forever", json!({})).await;
        assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
        // Stopped by its CPU budget, not by the 30 s wall-clock limit: none got free time.
        assert!(
            error["error"].as_str().unwrap().contains("1000 ms"),
            "{error}"
        );
        Instant::now()
    };
    let (a, b, c) = tokio::join!(spin(), spin(), spin());
    let last = a.max(b).max(c) - started;
    assert!(
        last >= Duration::from_millis(2400),
        "three 1 s budgets on one thread ended after {last:?}: each was charged for the others"
    );
}

#[tokio::test]
async fn a_memory_bomb_is_refused_growth() {
    let dir = tools_dir(&[("memory_bomb.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[("MCP_SSH_TOOL_MEMORY_MB", "32")]).await;
    let error = h.tool_error("memory_bomb", json!({})).await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("32 MiB"),
        "{error}"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn guest_stdout_never_reaches_the_mcp_stream() {
    let dir = tools_dir(&[("stdout_tool.wasm", None)]);
    let h = harness_with_tools(dir.path(), &[]).await;
    // The guest prints about 1 MiB to each stream, some of it fake JSON-RPC: the call
    // succeeds with the tool's own result, the stream stays parseable, and the noise is in
    // the server's log (its stderr) instead.
    let out = h.ok("print_stdout", json!({})).await;
    assert_eq!(out, json!({"success": true}));
    let log = h.server.stderr();
    for stream in ["stdout", "stderr"] {
        assert!(
            log.contains("guest output") && log.contains(&format!("{stream} noise line 00001")),
            "the guest's {stream} is not in the log"
        );
    }
    h.assert_still_serving().await;
    let listed = h.server.list_tools().await.unwrap();
    assert!(listed.iter().any(|t| t.name == "print_stdout"));
}

#[tokio::test]
async fn a_component_importing_an_ungranted_interface_is_not_loaded() {
    // scp_remove imports remote-write; without a grant it must be refused, with the
    // missing grant named by `mcpssh tools list`.
    let dir = tools_dir(&[("scp_remove.wasm", None), ("trap_tool.wasm", None)]);
    let out = std::process::Command::new(bin())
        .args(["tools", "list"])
        .env("MCP_SSH_TOOLS_DIR", dir.path())
        .env("MCP_SSH_CACHE_DIR", mcpssh_testbed::shared_cache_dir())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listing}");
    assert!(listing.contains("NOT LOADED"), "{listing}");
    assert!(
        listing.contains("remote-write") && listing.contains("not granted"),
        "{listing}"
    );
    assert!(
        listing.contains("trap_now"),
        "the other component still loads: {listing}"
    );

    // Granted, it is refused for its name instead: built-in names cannot be taken over.
    std::fs::write(
        dir.path().join("scp_remove.toml"),
        "grants = [\"remote-write\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["tools", "list"])
        .env("MCP_SSH_TOOLS_DIR", dir.path())
        .env("MCP_SSH_CACHE_DIR", mcpssh_testbed::shared_cache_dir())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("already taken"), "{listing}");
}

/// Waits until `check` holds, polling for up to `timeout`.
pub(crate) async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn the_tools_folder_is_reloaded_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let h = harness_with_tools(dir.path(), &[]).await;
    assert!(!h.tools.contains_key("trap_now"));
    let listed = async |name: &str| {
        h.server
            .list_tools()
            .await
            .unwrap()
            .iter()
            .any(|t| t.name == name)
    };

    // Copied in: it appears, and the client is told.
    std::fs::copy(
        component("trap_tool.wasm"),
        dir.path().join("trap_tool.wasm"),
    )
    .unwrap();
    assert!(eventually(Duration::from_secs(10), async || listed("trap_now").await).await);
    assert!(
        eventually(Duration::from_secs(5), async || h
            .server
            .tool_list_changes()
            >= 1)
        .await
    );
    let error = h.tool_error("trap_now", json!({})).await;
    assert_eq!(error["error_kind"], "guest-trap");

    // A broken component is skipped; the others keep working.
    std::fs::write(dir.path().join("broken.wasm"), b"not a component").unwrap();
    assert!(
        eventually(Duration::from_secs(10), async || h
            .server
            .tool_list_changes()
            >= 2)
        .await
    );
    assert!(listed("trap_now").await);

    // Removed: it disappears, with another notification; the built-ins are unaffected.
    let before = h.server.tool_list_changes();
    std::fs::remove_file(dir.path().join("trap_tool.wasm")).unwrap();
    assert!(eventually(Duration::from_secs(10), async || !listed("trap_now").await).await);
    assert!(
        eventually(Duration::from_secs(5), async || h
            .server
            .tool_list_changes()
            > before)
        .await
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn a_call_past_the_wall_clock_limit_is_stopped_with_its_remote_command() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_TOOL_TIMEOUT", "2")]).await;
    let started = Instant::now();
    let error = h
        .tool_error_seen_running(
            "ssh_execute",
            json!({"command": "sleep 33.9", "timeout_seconds": 60}),
            "sleep 33.9",
        )
        .await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_TOOL_TIMEOUT"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        h.wait_gone("sleep 33.9", Duration::from_secs(5)).await,
        "remote command killed"
    );
    h.assert_still_serving().await;
}

#[tokio::test]
async fn an_oversized_result_is_refused_naming_the_limit() {
    let sshd = Sshd::start().unwrap();
    let h = Harness::start_with(sshd, &[("MCP_SSH_TOOL_MAX_RESULT_BYTES", "100000")]).await;
    let error = h
        .tool_error(
            "ssh_execute",
            json!({"command": "head -c 300000 /dev/zero | tr '\\0' x"}),
        )
        .await;
    assert_eq!(error["error_kind"], "limit-exceeded", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("MCP_SSH_TOOL_MAX_RESULT_BYTES"),
        "{error}"
    );
    h.assert_still_serving().await;
}

/// Scopes in the grant file are enforced by the host on every call: a component granted
/// `exec` but scoped read-only cannot run a command, and one scoped to a session name
/// cannot use another.
#[tokio::test]
async fn grant_scopes_are_enforced_by_the_host() {
    for (scope, expect) in [
        ("[scope]\nread_only = true\n", "read-only"),
        (
            "[scope]\nhosts = [\"some-other-host\"]\n",
            "some-other-host",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            component("host_facts.wasm"),
            dir.path().join("host_facts.wasm"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("host_facts.toml"),
            format!("grants = [\"exec\"]\n{scope}"),
        )
        .unwrap();
        let h = harness_with_tools(dir.path(), &[]).await;
        let error = h.tool_error("host_facts", json!({})).await;
        assert_eq!(error["error_kind"], "denied", "{scope}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains(expect),
            "{scope}: {error}"
        );
        h.assert_still_serving().await;
    }
}
