//! The one harness shared by the `mcpssh` end-to-end tests, the demo (`cargo xtask demo`)
//! and the benchmarks.
//!
//! - [`Sshd`]: a real OpenSSH `sshd` on 127.0.0.1 with its own keys, logging in as the
//!   `mcpssh-test` user (shell `/bin/sh`), stopped with all its children on drop.
//! - [`McpServer`]: the `mcpssh` binary spawned over stdio and driven by rmcp's client.
//! - [`schema`]: checking values against the tools' JSON Schemas (the `jsonschema` crate).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcpssh_testbed::{CallToolResultExt, McpServer, Sshd};
//! let sshd = Sshd::start()?;
//! let server = McpServer::spawn("target/debug/mcpssh", sshd.mcp_env()).await?;
//! let result = server
//!     .call_tool("ssh_execute", serde_json::json!({"command": "echo hi"}))
//!     .await?;
//! assert_eq!(result.json()["stdout"], "hi\n");
//! # Ok(()) }
//! ```

pub mod mcp;
pub mod schema;
pub mod sshd;
pub mod transport;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use mcp::{CallToolResultExt, DEFAULT_CALL_TIMEOUT, McpServer, PendingCall};
pub use rmcp;
pub use sshd::{
    Sshd, SshdBuilder, TEST_USER, ensure_shell_user, ensure_test_user, fingerprint_of,
    generate_key, generate_key_with, prepare_system, processes_matching,
    processes_of_user_matching, test_user_ids, test_user_password,
};

/// The root of the mcpssh workspace.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    workspace_root().join("target")
}

/// A compile cache shared by every test server (`MCP_SSH_CACHE_DIR`), so that tests do
/// not each compile the built-in wasm components again.
pub fn shared_cache_dir() -> PathBuf {
    let dir = target_dir().join("mcpssh-test-cache");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Build the `mcpssh` binary (`cargo build -p mcpssh`, `--release` if asked) and return
/// its path. For the demo and benchmarks; tests use `env!("CARGO_BIN_EXE_mcpssh")`.
pub fn build_mcpssh(release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "mcpssh", "--bin", "mcpssh"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build -p mcpssh")?;
    if !status.success() {
        bail!("cargo build -p mcpssh failed ({status})");
    }
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("mcpssh");
    if !path.exists() {
        bail!("{} is missing after the build", path.display());
    }
    Ok(path)
}
