//! The WebAssembly side of the host: the wasmtime runtime and its per-call stores
//! (`runtime`, `state`), the compiled-code cache (`code_cache`), the capability
//! interfaces tools import (`imports`, `file_imports`), the user's grant files
//! (`grants`) and the checks that make the tools folder trustworthy (`trust`), and the
//! registry of loaded tools (`registry`) with the hints it advertises
//! (`annotations`). This layer never speaks MCP.

pub mod annotations;
pub mod bindings;
pub mod builtin;
pub mod code_cache;
pub mod engine_config;
pub mod file_imports;
pub mod grants;
pub mod imports;
pub mod job_imports;
pub mod registry;
pub mod runtime;
pub mod selection;
pub mod state;
pub mod stop;
pub mod trust;
pub mod watch;

pub use registry::{Registry, ToolEntry};
pub use runtime::{CallOutcome, Runtime};
pub use state::{CallContext, HostServices, ProgressSink};
