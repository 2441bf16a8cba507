//! Builds the built-in tool components (`guest-tools/`) for wasm32-wasip2 and embeds
//! them in the binary, so `cargo build` / `cargo install --path host` gives one
//! self-contained `mcpssh`. Also precompiles them to native code for the target, with
//! the engine settings the host uses (`src/plugin/engine_config.rs`), and embeds that
//! too, so the first start does not spend a second compiling them; the host falls back
//! to compiling when the embedded code does not suit the running engine.
//!
//! The precompiling wasmtime is the host's own: the build-dependency asks for the same
//! features, and the dev profile builds dependencies the same way for build scripts, so
//! cargo compiles wasmtime once for both (see the workspace Cargo.toml).

#[path = "src/plugin/engine_config.rs"]
mod engine_config;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The built-in tools, one component each, in the order they are listed to clients.
const BUILTIN_COMPONENTS: &[&str] = &[
    "ssh_connect",
    "ssh_execute",
    "ssh_disconnect",
    "scp_upload",
    "scp_download",
    "scp_listdir",
    "scp_remove",
    "scp_disk_usage",
    "ssh_job_output",
    "ssh_job_cancel",
    "ssh_job_list",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().expect("host/ lives in the workspace");
    let guests = root.join("guest-tools");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );
    for entry in std::fs::read_dir(&guests)
        .expect("guest-tools/ exists")
        .flatten()
    {
        if entry.path().is_dir() && entry.file_name() != "target" {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    println!("cargo:rerun-if-changed=src/plugin/engine_config.rs");

    check_wasm_target();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--target",
        "wasm32-wasip2",
        "--workspace",
    ])
    .arg("--manifest-path")
    .arg(guests.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir);
    // The outer build's settings are not the guests' settings.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("CARGO_PROFILE_")
            || key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
        {
            cmd.env_remove(key);
        }
    }
    let status = cmd
        .status()
        .expect("cannot run cargo to build the guest tools");
    assert!(
        status.success(),
        "building the guest tools (guest-tools/) for wasm32-wasip2 failed"
    );

    let built = target_dir.join("wasm32-wasip2").join("release");
    let mut source = String::from(
        "/// (tool component name, component bytes)\npub const COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for name in BUILTIN_COMPONENTS {
        let file = built.join(format!("{name}.wasm"));
        let embedded = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&file, &embedded)
            .unwrap_or_else(|e| panic!("missing built component {}: {e}", file.display()));
        source.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            embedded.display().to_string()
        ));
    }
    source.push_str("];\n");
    source.push_str(&precompiled_source(&out_dir));
    std::fs::write(out_dir.join("builtins.rs"), source).unwrap();
}

/// Precompiles every built-in component in `out_dir` and returns the source of
/// `PRECOMPILED`: (tool component name, native code). Empty when cross-compiling (the
/// host's cranelift targets only its own architecture) or when precompiling fails;
/// the host then compiles at start-up as it would without this step.
fn precompiled_source(out_dir: &Path) -> String {
    let mut source = String::from(
        "/// (tool component name, code precompiled by the build script)\npub const PRECOMPILED: &[(&str, &[u8])] = &[\n",
    );
    let target = std::env::var("TARGET").unwrap();
    if std::env::var("HOST").unwrap() != target {
        println!(
            "cargo:warning=cross-compiling for {target}: the built-in tools are compiled at first start instead of at build time"
        );
        return source + "];\n";
    }
    let mut config = engine_config::engine_config();
    // An explicit target: baseline CPU features, not the build machine's, so the code
    // runs on any CPU of the architecture.
    let engine = config
        .target(&target)
        .map_err(|e| e.to_string())
        .and_then(|c| wasmtime::Engine::new(c).map_err(|e| e.to_string()));
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            println!("cargo:warning=not precompiling the built-in tools: {e}");
            return source + "];\n";
        }
    };
    for name in BUILTIN_COMPONENTS {
        let wasm = std::fs::read(out_dir.join(format!("{name}.wasm"))).unwrap();
        let code = engine
            .precompile_component(&wasm)
            .unwrap_or_else(|e| panic!("precompiling the built-in {name}: {e}"));
        let file = out_dir.join(format!("{name}.cwasm"));
        std::fs::write(&file, code).unwrap();
        source.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    source + "];\n"
}

/// Fails early, with the fix, when the wasm32-wasip2 standard library is missing.
fn check_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(sysroot) = sysroot {
        let lib = Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2");
        if !lib.exists() {
            panic!(
                "the wasm32-wasip2 target is not installed: run `rustup target add wasm32-wasip2` (scripts/setup does it)"
            );
        }
    }
}
