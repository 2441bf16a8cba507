//! A grant file's `[scope]` holds against a component that tries to step around it (the
//! `scope_probe` fixture makes whatever host request it is told to): symlinks on the
//! remote host do not carry a path into or out of `remote_paths`, `hosts` lets a tool use
//! a session but not redefine it, `read_only` covers sessions too, roots that would widen
//! the scope are refused, and the hints the host advertises follow the imports.

use std::path::Path;
use std::process::Command;

use mcpssh_testbed::{CallToolResultExt, Sshd, TEST_USER};
use serde_json::{Value, json};

use crate::common::{Harness, bin};
use crate::custom_tools::component;

/// Every interface `scope_probe` imports.
const PROBE_GRANTS: &str =
    "grants = [\"session\", \"exec\", \"remote-read\", \"remote-write\", \"transfer\"]\n";

/// A tools folder with `scope_probe` and its grant file, the given `[scope]` lines added.
fn probe_folder(scope: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        component("scope_probe.wasm"),
        dir.path().join("scope_probe.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("scope_probe.toml"),
        format!("{PROBE_GRANTS}[scope]\n{scope}\n"),
    )
    .unwrap();
    dir
}

/// mcpssh against `sshd`, serving `scope_probe` from `tools`.
async fn probe_harness(sshd: Sshd, tools: &Path, extra: &[(&str, &str)]) -> Harness {
    let tools = tools.display().to_string();
    let mut env = vec![("MCP_SSH_TOOLS_DIR", tools.as_str())];
    env.extend_from_slice(extra);
    let h = Harness::start_with(sshd, &env).await;
    assert!(h.tools.contains_key("scope_probe"), "{:?}", h.tools.keys());
    h
}

/// A `scope_probe` request that must be refused as outside the scope; returns the error.
async fn refused(h: &Harness, args: Value) -> Value {
    let error = h.tool_error("scope_probe", args.clone()).await;
    assert!(
        matches!(error["error_kind"].as_str(), Some("denied" | "invalid")),
        "{args}: {error}"
    );
    error
}

/// A `scope_probe` request that must succeed; returns its result.
async fn allowed(h: &Harness, args: Value) -> Value {
    let result = h.call("scope_probe", args.clone()).await;
    let value = result.structured_content.clone().unwrap_or(Value::Null);
    assert!(
        value["success"] == true,
        "{args} was refused: {}",
        result.text()
    );
    value["result"].clone()
}

/// True when `path` on the (local) test host is a symlink.
fn is_link(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// A probe tool scoped to `remote_paths = [app]` on a fresh sshd whose scratch directory
/// holds `app/` and `etc/`, laid out by the shell command `layout(app, etc)`; local
/// paths are confined to `local`.
struct AppScope {
    h: Harness,
    app: String,
    etc: String,
    local: tempfile::TempDir,
    _tools: tempfile::TempDir,
}

async fn app_scope(layout: impl Fn(&str, &str) -> String) -> AppScope {
    let sshd = Sshd::start().unwrap();
    let root = std::fs::canonicalize(sshd.scratch_dir())
        .unwrap()
        .display()
        .to_string();
    let (app, etc) = (format!("{root}/app"), format!("{root}/etc"));
    sshd.ssh_run(&layout(&app, &etc)).unwrap();
    let local = tempfile::tempdir().unwrap();
    let tools = probe_folder(&format!("remote_paths = [\"{app}\"]"));
    let local_root = local.path().display().to_string();
    let h = probe_harness(
        sshd,
        tools.path(),
        &[("MCP_SSH_LOCAL_ROOT", local_root.as_str())],
    )
    .await;
    AppScope {
        h,
        app,
        etc,
        local,
        _tools: tools,
    }
}

/// The remote layout: `app/` (the scope) holding `real.conf`, and `etc/app.conf`
/// outside it, a symlink to `app/real.conf`, as a web server's enabled sites are.
#[tokio::test]
async fn a_symlink_into_the_scope_does_not_bring_its_own_place_into_it() {
    let AppScope {
        h,
        app,
        etc,
        local,
        _tools,
    } = app_scope(|app, etc| {
        format!(
            "mkdir -p {app}/sub {etc} && echo real > {app}/real.conf && echo mine > {app}/mine && ln -s {app}/real.conf {etc}/app.conf"
        )
    })
    .await;
    let link = format!("{etc}/app.conf");
    let upload_source = local.path().join("new.conf");
    std::fs::write(&upload_source, "new\n").unwrap();

    // The link is outside the scope, whatever it points to: it cannot be removed,
    // renamed, replaced or looked at.
    let error = refused(&h, json!({"op": "remove", "path": link})).await;
    assert!(error["error"].as_str().unwrap().contains(&link), "{error}");
    refused(
        &h,
        json!({"op": "rename", "path": link, "to": format!("{app}/moved")}),
    )
    .await;
    refused(
        &h,
        json!({"op": "rename", "path": format!("{app}/mine"), "to": link, "overwrite": true}),
    )
    .await;
    refused(&h, json!({"op": "stat", "path": link, "follow": false})).await;
    refused(&h, json!({"op": "mkdir", "path": format!("{etc}/new")})).await;
    assert!(is_link(&link), "the link outside the scope is untouched");
    assert!(std::path::Path::new(&format!("{app}/mine")).exists());

    // What it points to is inside: reading through it, or writing through it (as cp
    // does), touches only the scope.
    let info = allowed(&h, json!({"op": "stat", "path": link, "follow": true})).await;
    assert_eq!(info["size"], 5, "{info}");
    let report = allowed(
        &h,
        json!({"op": "upload", "path": link, "local_path": upload_source, "overwrite": true}),
    )
    .await;
    assert_eq!(
        report["remote_path"],
        format!("{app}/real.conf"),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{app}/real.conf")).unwrap(),
        "new\n"
    );
    assert!(is_link(&link));

    // `.` and `..` would name another directory than the one checked.
    for path in [format!("{app}/sub/.."), format!("{app}/sub/.")] {
        let error = refused(&h, json!({"op": "remove", "path": path})).await;
        assert!(
            error["error"].as_str().unwrap().contains("file name"),
            "{path}: {error}"
        );
    }
    refused(
        &h,
        json!({"op": "rename", "path": format!("{app}/mine"), "to": format!("{app}/sub/..")}),
    )
    .await;

    // Inside the scope, everything still works, links included.
    allowed(
        &h,
        json!({"op": "rename", "path": format!("{app}/mine"), "to": format!("{app}/sub/mine")}),
    )
    .await;
    allowed(
        &h,
        json!({"op": "remove", "path": format!("{app}/sub/mine")}),
    )
    .await;
    h.assert_still_serving().await;
}

/// A symlink inside the scope that points out of it gives no way out either.
#[tokio::test]
async fn a_symlink_out_of_the_scope_leads_nowhere() {
    let AppScope {
        h,
        app,
        etc,
        local,
        _tools,
    } = app_scope(|app, etc| {
        format!(
            "mkdir -p {app} {etc} && echo secret > {etc}/passwd && ln -s {etc}/passwd {app}/passwd && ln -s {etc} {app}/etc"
        )
    })
    .await;
    let source = local.path().join("x");
    std::fs::write(&source, "x\n").unwrap();

    refused(
        &h,
        json!({"op": "stat", "path": format!("{app}/passwd"), "follow": true}),
    )
    .await;
    refused(&h, json!({"op": "list", "path": format!("{app}/etc")})).await;
    refused(
        &h,
        json!({"op": "download", "path": format!("{app}/passwd"), "local_path": local.path().join("got")}),
    )
    .await;
    refused(
        &h,
        json!({"op": "upload", "path": format!("{app}/passwd"), "local_path": source, "overwrite": true}),
    )
    .await;
    refused(
        &h,
        json!({"op": "upload", "path": format!("{app}/etc/new"), "local_path": source}),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(format!("{etc}/passwd")).unwrap(),
        "secret\n"
    );
    assert!(!Path::new(&format!("{etc}/new")).exists());
    // The links themselves are inside: they may be looked at and removed.
    allowed(
        &h,
        json!({"op": "stat", "path": format!("{app}/passwd"), "follow": false}),
    )
    .await;
    allowed(&h, json!({"op": "remove", "path": format!("{app}/passwd")})).await;
    assert!(Path::new(&format!("{etc}/passwd")).exists());
}

/// `hosts` names sessions a tool may use; it may not redefine one (another port, user or
/// key would replace the user's session and kill its work), nor see the others.
#[tokio::test]
async fn a_tool_limited_to_a_session_may_use_it_but_not_redefine_it() {
    let sshd = Sshd::start().unwrap();
    let session = format!("{}:{}", sshd.host(), sshd.port());
    let tools = probe_folder(&format!("hosts = [\"{session}\"]"));
    let h = probe_harness(sshd, tools.path(), &[]).await;
    h.exec("true").await;

    for redefine in [
        json!({"port": h.sshd.port()}),
        json!({"username": TEST_USER}),
        json!({"username": "root"}),
        json!({"key_filename": h.sshd.client_key_path()}),
    ] {
        let mut args = json!({"op": "connect", "session": session});
        args.as_object_mut()
            .unwrap()
            .extend(redefine.as_object().unwrap().clone());
        let error = refused(&h, args.clone()).await;
        assert!(
            error["error"].as_str().unwrap().contains("not define"),
            "{args}: {error}"
        );
    }
    let used = allowed(&h, json!({"op": "connect", "session": session})).await;
    assert_eq!(used["reused"], true, "{used}");
    assert_eq!(used["session"]["name"], session, "{used}");

    // Another session, opened by the user: not listed, not closable.
    let other = h.ok("ssh_connect", json!({"hostname": "localhost"})).await;
    let other_name = other["session"].as_str().unwrap().to_owned();
    assert_ne!(other_name, session);
    let listed = allowed(&h, json!({"op": "sessions"})).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [session.as_str()], "{listed}");
    refused(&h, json!({"op": "disconnect", "session": other_name})).await;
    refused(&h, json!({"op": "connect", "session": other_name})).await;
    h.assert_still_serving().await;
}

/// A read-only tool opens and closes no sessions.
#[tokio::test]
async fn a_read_only_tool_opens_and_closes_no_session() {
    let sshd = Sshd::start().unwrap();
    let tools = probe_folder("read_only = true");
    let h = probe_harness(sshd, tools.path(), &[]).await;
    h.exec("true").await;
    for op in ["connect", "disconnect"] {
        let error = refused(&h, json!({"op": op})).await;
        assert!(
            error["error"].as_str().unwrap().contains("read-only"),
            "{op}: {error}"
        );
    }
    h.assert_still_serving().await;
}

/// A tool that can change things is not advertised as harmless because it says so;
/// under a read-only scope it may be.
#[tokio::test]
async fn advertised_hints_follow_imports_and_scope_not_claims() {
    let tools = probe_folder("");
    let h = probe_harness(Sshd::start().unwrap(), tools.path(), &[]).await;
    let hints = h.tools["scope_probe"].annotations.clone().unwrap();
    assert_eq!(hints.read_only_hint, Some(false), "{hints:?}");
    assert_eq!(hints.destructive_hint, Some(true), "{hints:?}");
    assert_eq!(hints.idempotent_hint, Some(false), "{hints:?}");
    assert_eq!(hints.open_world_hint, Some(true), "{hints:?}");
    // The built-ins declare what they do.
    for (tool, read_only) in [("ssh_execute", false), ("ssh_connect", false)] {
        let hints = h.tools[tool].annotations.clone().unwrap();
        assert_eq!(hints.read_only_hint, Some(read_only), "{tool}");
    }

    let tools = probe_folder("read_only = true");
    let h = probe_harness(Sshd::start().unwrap(), tools.path(), &[]).await;
    let hints = h.tools["scope_probe"].annotations.clone().unwrap();
    assert_eq!(hints.read_only_hint, Some(true), "{hints:?}");
    assert_eq!(hints.destructive_hint, Some(false), "{hints:?}");
}

/// Roots that would silently mean more than written (an empty one is `/`, a relative
/// one depends on the home directory) are refused when the grant file is loaded.
#[test]
fn roots_that_would_widen_a_scope_are_refused_at_load() {
    for scope in [
        "remote_paths = [\"\"]",
        "remote_paths = [\"srv/app\"]",
        "local_paths = [\"drop\"]",
        "local_paths = [\"\"]",
    ] {
        let tools = probe_folder(scope);
        let out = Command::new(bin())
            .args(["tools", "list"])
            .env("MCP_SSH_TOOLS_DIR", tools.path())
            .env("MCP_SSH_CACHE_DIR", mcpssh_testbed::shared_cache_dir())
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{listing}");
        assert!(!listing.contains("scope_probe\t"), "{scope}: {listing}");
        let refusal = listing
            .lines()
            .find(|l| l.starts_with("NOT LOADED"))
            .unwrap_or_else(|| panic!("{scope}: {listing}"));
        assert!(
            refusal.contains("not an absolute") && refusal.contains("scope_probe.toml"),
            "{scope}: {refusal}"
        );
    }
}
