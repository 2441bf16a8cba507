//! Sessions: what outlives a tool call. A session is an SSH connection (`crate::ssh`)
//! and the SFTP channel opened on it on first use (`crate::sftp`), owned here, above
//! both, so that neither of them knows the other's caching: `ssh/` knows nothing of
//! SFTP, and `sftp/` takes the connection it runs on as given. The pool (`pool`) keeps
//! the open sessions by name. Nothing here knows about MCP or wasm.

pub mod pool;
pub mod session;

pub use pool::{Connected, SessionPool};
pub use session::Session;
