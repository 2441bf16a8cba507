//! The MCP layer, the only code that speaks MCP (rmcp): the request handler that serves
//! the registry's tools and turns call outcomes into `structuredContent` results
//! ([`server`]), the resources served natively rather than by tools ([`resources`]), the
//! prompts ([`prompts`]), the notifications to the client, each bounded (progress in
//! [`progress`], log messages in [`client_log`]), the cap on calls running at once
//! ([`call_slots`]), the polling shutdown ([`watchdog`]), and serving it all on stdio
//! ([`stdio`]) while the tools folder is reloaded ([`reload`]), and asking the user
//! through the client ([`elicitation`]).
//!
//! Nothing here uses russh or wasmtime: calls go through the plugin runtime, sessions
//! through the session pool, and the user's answers reach the policy gate through the
//! `policy::Approver` trait and host key checks through `ssh::host_key_prompt`.

pub mod call_slots;
pub mod client_log;
pub mod elicitation;
pub mod progress;
pub mod prompts;
pub mod reload;
pub mod resources;
pub mod server;
pub mod stdio;
pub mod watchdog;

pub use stdio::serve_stdio;
