//! Start-up: bad configuration fails with one clear line; the embedded, build-time
//! compiled built-ins write nothing to the compiled-code cache (which then serves only
//! custom tools), and a cache directory that cannot be created does not stop the server.

use std::path::Path;

use crate::common::bin;
use crate::custom_tools::component;

/// `mcpssh tools list` with the cache in `cache` and, optionally, a tools folder.
fn tools_list(cache: &Path, tools: Option<&Path>) -> String {
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["tools", "list"]).env("MCP_SSH_CACHE_DIR", cache);
    if let Some(tools) = tools {
        cmd.env("MCP_SSH_TOOLS_DIR", tools);
    }
    let out = cmd.output().unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    listing
}

/// The compiled-code entries in `cache`.
fn entries(cache: &Path) -> Vec<String> {
    std::fs::read_dir(cache)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn built_ins_are_not_compiled_into_the_cache_custom_tools_are() {
    let cache = tempfile::tempdir().unwrap();
    let listing = tools_list(cache.path(), None);
    assert!(listing.contains("ssh_execute"), "{listing}");
    assert_eq!(
        entries(cache.path()),
        Vec::<String>::new(),
        "built-ins come from the binary"
    );

    let tools = tempfile::tempdir().unwrap();
    std::fs::copy(
        component("trap_tool.wasm"),
        tools.path().join("trap_tool.wasm"),
    )
    .unwrap();
    let listing = tools_list(cache.path(), Some(tools.path()));
    assert!(listing.contains("trap_now"), "{listing}");
    assert_eq!(entries(cache.path()).len(), 1, "the custom tool is cached");
}

#[test]
fn a_cache_directory_that_cannot_be_created_does_not_stop_start_up() {
    // Below a regular file: no one, root included, can create it.
    let listing = tools_list(Path::new("/dev/null/mcpssh-cache"), None);
    assert!(listing.contains("scp_upload"), "{listing}");
}

/// Bad configuration: a non-zero exit and exactly one clear line on stderr, nothing on
/// stdout (which belongs to MCP).
#[test]
fn bad_configuration_fails_with_one_clear_line() {
    for (var, value, expect) in [
        ("MCP_SSH_PORT", "notaport", "notaport"),
        ("MCP_SSH_COMMAND_TIMEOUT", "-5", "MCP_SSH_COMMAND_TIMEOUT"),
        ("MCP_SSH_TOOL_PREFIX", "bad prefix", "MCP_SSH_TOOL_PREFIX"),
    ] {
        let out = std::process::Command::new(bin())
            .env(var, value)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(out.stdout.is_empty(), "{var}: stdout must stay clean");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{var}: {stderr}");
        assert!(
            stderr.starts_with("mcpssh: ") && stderr.contains(expect),
            "{var}: {stderr}"
        );
    }
}
