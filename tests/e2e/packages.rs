//! The installed packages (run by scripts/test-packages, which builds the wheel and the
//! npm packages and installs them into a fresh virtual environment and npm prefix): each
//! launcher in `MCPSSH_PACKAGE_LAUNCHERS` (`:`-separated) answers `--version` and serves
//! `tools/list` and `ssh_execute` to an MCP client against a local sshd. Without the
//! variable (the normal test run) there is nothing to test.

use mcpssh_testbed::{CallToolResultExt, McpServer, Sshd};
use serde_json::json;

#[tokio::test]
async fn installed_launchers_serve_tools_over_mcp() {
    let Ok(launchers) = std::env::var("MCPSSH_PACKAGE_LAUNCHERS") else {
        eprintln!("MCPSSH_PACKAGE_LAUNCHERS is not set: run scripts/test-packages");
        return;
    };
    let sshd = Sshd::start().unwrap();
    for launcher in launchers.split(':').filter(|l| !l.is_empty()) {
        let version = std::process::Command::new(launcher)
            .arg("--version")
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&version.stdout);
        assert!(
            version.status.success() && shown.starts_with("mcpssh "),
            "{launcher} --version: {shown}"
        );
        let server = McpServer::spawn(launcher, sshd.mcp_env()).await.unwrap();
        let tools = server.list_tools().await.unwrap();
        assert!(
            tools.iter().any(|t| t.name == "ssh_execute"),
            "{launcher}: tools/list"
        );
        let result = server
            .call_tool("ssh_execute", json!({"command": "echo packaged"}))
            .await
            .unwrap();
        assert_eq!(result.json()["stdout"], "packaged\n", "{launcher}");
        server.shutdown().await.unwrap();
        eprintln!("{launcher}: --version, tools/list and ssh_execute work");
    }
}
