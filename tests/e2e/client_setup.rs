//! The client side a test sets up for the server it starts: an empty `HOME`, no ssh-agent,
//! an OpenSSH client config of its own, environment overrides for a server started
//! outside a `Harness`, and which sshd ran a command.

use std::collections::HashMap;
use std::path::Path;

use mcpssh_testbed::rmcp::model::CallToolResult;
use mcpssh_testbed::{CallToolResultExt, Sshd};
use serde_json::Value;

use crate::common::check_error_shape;

/// A path no agent listens on: set as `SSH_AUTH_SOCK` so that an agent of whoever runs
/// the tests cannot help (mcpssh inherits the environment).
pub const NO_AGENT: &str = "/nonexistent/mcpssh-test/agent.sock";

/// An empty directory to serve as mcpssh's `HOME` (no `~/.ssh/id_*`, no `~/.ssh/config`).
pub fn empty_home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("mcpssh-home-")
        .tempdir()
        .unwrap()
}

/// `sshd.mcp_env()` with `extra` on top (an empty value removes the variable).
pub fn env_for(sshd: &Sshd, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = sshd.mcp_env().into_iter().collect();
    for (k, v) in extra {
        if v.is_empty() {
            env.remove(*k);
        } else {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
    }
    env
}

/// A tool error's structured content, without the shape checks of the harness (for
/// servers started outside a `Harness`).
pub fn expect_error(tool: &str, result: &CallToolResult) -> Value {
    assert!(
        result.is_error(),
        "{tool} should have failed: {}",
        result.summary()
    );
    check_error_shape(result)
}

/// The server port the remote shell sees (`$SSH_CONNECTION`'s fourth field): tells which
/// sshd ran a command.
pub const SERVER_PORT: &str = "set -- $SSH_CONNECTION; echo $4";

/// Writes an OpenSSH client config `text` into `dir`; returns its path.
pub fn write_ssh_config(dir: &Path, text: &str) -> String {
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A `Host` block for `sshd` under `alias`, logging in with `key` and trusting hosts
/// listed in `known_hosts`.
pub fn host_block(alias: &str, sshd: &Sshd, key: &Path, known_hosts: &Path) -> String {
    format!(
        "Host {alias}\n\
         \x20   HostName 127.0.0.1\n\
         \x20   Port {port}\n\
         \x20   User mcpssh-test\n\
         \x20   IdentityFile {key}\n\
         \x20   IdentitiesOnly yes\n\
         \x20   UserKnownHostsFile {known_hosts}\n",
        port = sshd.port(),
        key = key.display(),
        known_hosts = known_hosts.display(),
    )
}

/// Nothing from the harness's explicit target settings: everything comes from the config.
pub const FROM_CONFIG_ONLY: [(&str, &str); 4] = [
    ("MCP_SSH_PORT", ""),
    ("MCP_SSH_USERNAME", ""),
    ("MCP_SSH_KEY_FILENAME", ""),
    ("MCP_SSH_KNOWN_HOSTS", ""),
];
