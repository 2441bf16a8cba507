//! The SSH client side of the host: connecting and authenticating (`connection`),
//! verifying host keys (`known_hosts`), running commands (`exec`), keeping sessions
//! alive across tool calls (`pool`) and tuning the TCP stream under them (`socket`). Nothing here knows about MCP or wasm.

pub mod auth;
pub mod connection;
pub mod exec;
pub mod key_file;
pub mod known_hosts;
pub mod pool;
pub mod shell;
pub mod shell_probe;
pub mod socket;
pub mod ssh_config;

pub use connection::{Connection, SessionInfo, Target};
pub use pool::SessionPool;
