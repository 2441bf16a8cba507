//! # mcpssh tool SDK
//!
//! Write an `mcpssh` tool as a WebAssembly component in a few lines of Rust. A tool is a
//! type implementing [`Tool`]: it declares its arguments and its result as ordinary serde
//! structs (their JSON Schemas are derived with [`schemars`]), describes itself with a
//! [`ToolInfo`], and implements [`Tool::run`]. [`export_tools!`] turns one or more tools into
//! the component's `mcpssh:plugin/tool` export: it lists the tools, parses and checks the
//! arguments (naming the offending field on error), runs the tool and turns its result or
//! [`ToolError`] into the JSON the host expects.
//!
//! This is `examples/unit_status.rs` of this crate, a complete tool (it is built and its tests
//! run with the crate's own):
//!
//! ```no_run
#![doc = include_str!("../examples/unit_status.rs")]
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` from a crate with
//! `crate-type = ["cdylib"]`; the `.wasm` file in `target/wasm32-wasip2/release/` is the
//! component. (In this crate: `cargo build --release --target wasm32-wasip2 --example
//! unit_status` gives `target/wasm32-wasip2/release/examples/unit_status.wasm`.)
//!
//! ## Capabilities
//!
//! A component imports only the host interfaces its code calls: the example above imports
//! `mcpssh:plugin/exec` and nothing else, because it calls only [`bindings::mcpssh::plugin::exec`].
//! [`ExecRequest::new`](bindings::mcpssh::plugin::exec::ExecRequest::new) builds a command
//! request from the host's defaults.
//! The host loads a user-supplied component only if the user granted every interface it imports,
//! so call only what you need. Nothing in this SDK calls a host import on its own; the helpers in
//! [`log`] import `host-log` only when you use them.
//!
//! ## Sessions
//!
//! The host may hold several SSH sessions at once. Remote host calls take a `session`
//! (`None`: the default one). Tools that reach the remote host should take the optional `host`
//! argument of the built-in tools: a `host: Option<`[`HostArg`]`>` field, passed on with
//! [`target::session`], which checks it and supplies its schema description.
//!
//! ## Errors
//!
//! Return a [`ToolError`] from [`Tool::run`]; host errors ([`bindings::mcpssh::plugin::types::Error`])
//! convert into one with `?`. The host sends it to the client as structured content with
//! `isError: true`:
//! `{"success": false, "error_kind": "...", "error": "...", "field": "..."}`.
//!
//! ## Testing
//!
//! The bindings compile on the native target too, so a tool's pure logic (argument checks,
//! result shaping) can be unit tested with `cargo test`. Host imports cannot be called natively
//! (they panic). [`check_tool`] verifies a tool's descriptor and schemas; [`call_tool`] runs the
//! exact argument parsing that the component does; [`testing::refusal`] returns the error
//! object of refused arguments.

#![warn(missing_docs)]

extern crate self as mcpssh_sdk;

/// Bindings generated from the `mcpssh:plugin` WIT package in `wit/v0.1/` (world
/// `tool-component`).
///
/// The capability interfaces are under [`bindings::mcpssh::plugin`]:
/// `session`, `exec`, `remote_read`, `remote_write`, `transfer`, `local_read`, `host_log`, and the
/// shared `types`. Calling any function of an interface makes the component import it.
///
/// The exported `tool` interface is under `bindings::exports::mcpssh::plugin::tool`; you normally
/// do not implement it yourself but use [`export_tools!`](crate::export_tools).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "tool-component",
        path: "wit/v0.1",
        pub_export_macro: true,
        default_bindings_module: "mcpssh_sdk::bindings",
        runtime_path: "mcpssh_sdk::__private::wit_bindgen::rt",
    });
}

mod args;
mod error;
mod exec;
#[cfg(feature = "builtin-tools")]
pub mod files;
#[cfg(feature = "builtin-tools")]
pub mod jobs;
pub mod log;
mod schema;
pub mod stream;
pub mod target;
pub mod testing;
mod tool;
#[cfg(feature = "builtin-tools")]
pub mod transfer;
pub mod validate;

pub use args::{arguments_object, parse_args, parse_value};
pub use error::{ToolError, ToolResult, kind};
pub use schema::{input_schema, output_schema};
pub use target::HostArg;
pub use tool::{
    Annotations, NoArgs, Tool, ToolInfo, call_tool, check_tool, descriptor, is_valid_tool_name,
    unknown_tool,
};

/// Re-exported so tool crates can derive [`JsonSchema`] without naming their own schemars
/// dependency version (they still need `schemars` as a dependency for the derive macro).
pub use schemars::{self, JsonSchema};
/// Re-exported for convenience.
pub use serde_json;

/// Implements the component's `mcpssh:plugin/tool` export for one or more [`Tool`] types.
///
/// Invoke it once, at the top level of the tool crate (a `cdylib`):
///
/// ```ignore
/// mcpssh_sdk::export_tools!(ConnectTool);
/// mcpssh_sdk::export_tools!(ListTool, StatTool); // or several tools in one component
/// ```
///
/// The generated export:
/// - `describe()` returns [`descriptor::<T>()`](descriptor) of every listed tool, in order;
/// - `call(name, arguments)` runs [`call_tool::<T>`](call_tool) for the tool whose
///   [`ToolInfo::name`] equals `name`, or returns an `invalid` error when there is none.
///
/// The crate must depend on this SDK under its default name, `mcpssh_sdk`.
#[macro_export]
macro_rules! export_tools {
    ($($tool:ty),+ $(,)?) => {
        #[doc(hidden)]
        pub struct __McpsshToolComponent;

        impl $crate::bindings::exports::mcpssh::plugin::tool::Guest for __McpsshToolComponent {
            fn describe()
                -> ::std::vec::Vec<$crate::bindings::exports::mcpssh::plugin::tool::Descriptor>
            {
                ::std::vec![$($crate::descriptor::<$tool>()),+]
            }

            fn call(
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                $(
                    if <$tool as $crate::Tool>::descriptor().name == name {
                        return $crate::call_tool::<$tool>(&arguments);
                    }
                )+
                ::core::result::Result::Err($crate::unknown_tool(&name))
            }
        }

        $crate::bindings::export!(__McpsshToolComponent with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
