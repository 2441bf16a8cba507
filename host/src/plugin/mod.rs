//! The WebAssembly side of the host: the wasmtime runtime and its per-call stores
//! (`runtime`, `state`, `stop`), the compiled-code cache (`code_cache`), the catalogue of
//! capability interfaces tools import (`capability`) and their host side (`host`, one
//! file per interface), the user's grant files (`grants`) with their scopes (`scope`), and
//! the registry of loaded tools (`registry`) with their descriptions (`tool_spec`) and the hints it
//! advertises (`annotations`). This layer never speaks MCP.

pub mod annotations;
pub mod bindings;
pub mod builtin;
pub mod capability;
pub mod code_cache;
pub mod engine_config;
pub mod grants;
pub mod host;
pub mod registry;
pub mod runtime;
pub mod scope;
pub mod selection;
pub mod state;
pub mod stop;
pub mod tool_spec;
pub mod watch;
pub mod yield_clock;

pub use registry::{Registry, ToolEntry};
pub use runtime::{CallOutcome, Runtime};
pub use state::{CallContext, HostServices, ProgressSink};
