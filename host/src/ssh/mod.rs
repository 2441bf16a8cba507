//! The SSH client side of the host: where to connect (`target`, with the configuration
//! `crate::ssh_config` reads),
//! connecting and authenticating (`connection`, `handler`, `auth`, `key_file`),
//! verifying host keys (`known_hosts`, and asking the user about new ones:
//! `host_key_prompt`), channel slots and the channel kept open ahead of
//! need (`channel_slot`, `ready_channel`), running commands (`exec`, `shell`,
//! `shell_probe`) and tuning the TCP stream under them (`socket`). A leaf: nothing here
//! knows about SFTP, sessions kept across calls (`crate::sessions`), MCP or wasm.

pub mod auth;
pub mod channel_slot;
pub mod connection;
pub mod exec;
pub mod handler;
pub mod host_key_prompt;
pub mod key_file;
pub mod known_hosts;
pub mod ready_channel;
pub mod russh_error;
pub mod shell;
pub mod shell_probe;
pub mod socket;
pub mod target;

pub use connection::{Connection, SessionInfo};
pub use target::{Target, TargetRequest};
