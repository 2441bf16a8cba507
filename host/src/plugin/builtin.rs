//! The built-in tool components, compiled for wasm32-wasip2 by the build script and
//! embedded in the binary: `COMPONENTS` lists each as (name, component bytes), and
//! `PRECOMPILED` their machine code for this binary's target, when the build could make it.

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The precompiled code of the built-in component `label`, if embedded.
pub fn precompiled(label: &str) -> Option<&'static [u8]> {
    PRECOMPILED
        .iter()
        .find(|(name, _)| *name == label)
        .map(|(_, code)| *code)
}
