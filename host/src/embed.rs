//! Embedding `mcpssh` in another program, like the Python server's
//! `SSHServerMCP(hostname=..., ...).run(transport="stdio")`: a builder with the same
//! settings as the command line, and `serve_stdio()`.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mcpssh::embed::SshServer;
//!
//! SshServer::builder()?
//!     .hostname("example.com")
//!     .port(22)
//!     .username("user")
//!     .key_filename("/path/to/private_key")
//!     .server_name("My Custom Server")
//!     .tool_prefix("custom_")
//!     .serve_stdio()
//!     .await
//! # }
//! ```

use clap::Parser;

use crate::app::App;
use crate::config::{HostKeyPolicy, Settings};

/// The settings as the binary reads them: defaults, then `MCP_SSH_*` variables.
#[derive(Parser)]
struct FromEnvironment {
    #[command(flatten)]
    settings: Settings,
}

/// An `mcpssh` server to run inside your program.
pub struct SshServer;

impl SshServer {
    /// Starts from the defaults and the `MCP_SSH_*` environment variables, exactly as
    /// the `mcpssh` binary does; the builder's methods override them. Fails when an
    /// `MCP_SSH_*` variable holds an invalid value.
    pub fn builder() -> anyhow::Result<SshServerBuilder> {
        let settings = FromEnvironment::try_parse_from(["mcpssh"])
            .map_err(|e| anyhow::anyhow!("invalid MCP_SSH_* setting: {e}"))?
            .settings
            .with_environment_secrets();
        Ok(SshServerBuilder { settings })
    }
}

/// Settings for an embedded server. See the README's configuration table.
pub struct SshServerBuilder {
    settings: Settings,
}

impl SshServerBuilder {
    /// The host (or `~/.ssh/config` alias) to connect to by default.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.settings.hostname = Some(hostname.into());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.settings.port = Some(port);
        self
    }

    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.settings.username = Some(username.into());
        self
    }

    /// The private key file.
    pub fn key_filename(mut self, path: impl Into<String>) -> Self {
        self.settings.key_filename = Some(path.into());
        self
    }

    /// The name reported to MCP clients.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.settings.server_name = name.into();
        self
    }

    /// The prefix of every tool name.
    pub fn tool_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.settings.tool_prefix = prefix.into();
        self
    }

    /// The Python server's polling shutdown: seconds between polls and missed polls tolerated.
    pub fn polling(mut self, interval_seconds: u64, missed_polls_threshold: u32) -> Self {
        self.settings.poll_interval = interval_seconds;
        self.settings.missed_polls_threshold = missed_polls_threshold;
        self
    }

    /// The known_hosts file and how strictly host keys are checked.
    pub fn host_keys(mut self, known_hosts: impl Into<String>, policy: HostKeyPolicy) -> Self {
        self.settings.known_hosts = Some(known_hosts.into());
        self.settings.strict_host_key_checking = Some(policy);
        self
    }

    /// A folder of your own tool components.
    pub fn tools_dir(mut self, dir: impl Into<String>) -> Self {
        self.settings.tools_dir = Some(dir.into());
        self
    }

    /// The finished settings.
    pub fn settings(self) -> Settings {
        self.settings
    }

    /// Loads the tools and serves MCP on this process's stdin/stdout until the client
    /// goes away (stdout must carry nothing else).
    pub async fn serve_stdio(self) -> anyhow::Result<()> {
        crate::mcp::serve_stdio(App::start(self.settings).await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_sets_what_it_says() {
        let s = SshServer::builder()
            .unwrap()
            .hostname("h.example")
            .port(2200)
            .username("u")
            .key_filename("/k")
            .server_name("N")
            .tool_prefix("p_")
            .polling(5, 0)
            .settings();
        assert_eq!(s.hostname.as_deref(), Some("h.example"));
        assert_eq!(s.port, Some(2200));
        assert_eq!(s.username.as_deref(), Some("u"));
        assert_eq!(s.key_filename.as_deref(), Some("/k"));
        assert_eq!(
            (s.server_name.as_str(), s.tool_prefix.as_str()),
            ("N", "p_")
        );
        assert_eq!((s.poll_interval, s.missed_polls_threshold), (5, 0));
        assert!(s.validate().is_ok());
    }
}
