//! Builds the built-in tool components (`guest-tools/`) for wasm32-wasip2 and embeds
//! them in the binary, so `cargo build` / `cargo install --path host` gives one
//! self-contained `mcpssh`.

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
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

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
    std::fs::write(out_dir.join("builtins.rs"), source).unwrap();
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
