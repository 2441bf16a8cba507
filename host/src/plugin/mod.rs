//! The WebAssembly side of the host: the wasmtime runtime and its per-call stores
//! (`runtime`, `state`), the capability interfaces tools import (`imports`), and the
//! registry of loaded tools (`registry`). This layer never speaks MCP.

pub mod bindings;
pub mod file_imports;
pub mod grants;
pub mod imports;
pub mod registry;
pub mod runtime;
pub mod state;
pub mod stop;
pub mod watch;

pub use registry::{Registry, ToolEntry};
pub use runtime::{CallOutcome, Runtime};
pub use state::{CallContext, HostServices, ProgressSink};
