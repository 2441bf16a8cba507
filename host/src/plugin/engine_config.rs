//! The wasmtime settings of mcpssh's engine. The build script includes this file too and
//! precompiles the built-in tools with exactly these settings, so the running engine
//! accepts the embedded code; a setting changed here changes both sides at once.

/// The engine settings: epoch interruption (CPU limits) and the component model.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}
