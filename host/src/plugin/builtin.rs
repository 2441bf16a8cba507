//! The built-in tool components, compiled for wasm32-wasip2 by the build script and
//! embedded in the binary: `COMPONENTS` lists each as (name, component bytes).

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));
