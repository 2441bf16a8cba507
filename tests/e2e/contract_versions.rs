//! Components built against an earlier version of the host contract keep loading and
//! running: frozen binaries in `tests/e2e/fixtures/` that must never be rebuilt (see
//! `guest-tools/sdk/wit/README.md`). A failure here means a change to the WIT was not
//! additive and needs a new contract version.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::Harness;
use crate::custom_tools::harness_with_tools;

/// `contract-probe` as built against `mcpssh:plugin@0.1.0`: it imports every function of
/// every capability interface of that version.
const CONTRACT_0_1_0: &str = "contract_v0_1_0.wasm";

/// Every capability interface, granted.
const ALL_GRANTS: &str = "grants = [\"session\", \"exec\", \"remote-read\", \"remote-write\", \
                          \"transfer\", \"local-read\", \"host-log\"]\n";

/// A tools folder holding the frozen component `fixture` as `contract_probe.wasm`, with
/// every grant.
fn frozen_tools_dir(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let frozen = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures")
        .join(fixture);
    std::fs::copy(&frozen, dir.path().join("contract_probe.wasm"))
        .unwrap_or_else(|e| panic!("{}: {e}", frozen.display()));
    std::fs::write(dir.path().join("contract_probe.toml"), ALL_GRANTS).unwrap();
    dir
}

/// Calls the contract function `op` through the probe; returns what it returned.
async fn probe(h: &Harness, op: &str, args: Value) -> Value {
    let mut args = args;
    args["op"] = json!(op);
    h.ok("contract_probe", args).await["result"].clone()
}

#[tokio::test]
async fn a_component_built_against_contract_0_1_0_loads_and_runs() {
    let tools = frozen_tools_dir(CONTRACT_0_1_0);
    let h = harness_with_tools(tools.path(), &[]).await;
    assert!(
        h.tools.contains_key("contract_probe"),
        "the 0.1.0 component is not served: {:?}",
        h.tools.keys()
    );

    // session and exec
    let run = probe(&h, "exec.run", json!({"command": "echo contract"})).await;
    assert_eq!(run["stdout"], "contract\n", "{run}");
    let sessions = probe(&h, "session.open-sessions", json!({})).await;
    let name = sessions[0]["name"]
        .as_str()
        .expect("one open session")
        .to_owned();
    assert_eq!(probe(&h, "session.login-shell", json!({})).await, "posix");
    // No target: the configured host, whose session is open.
    let connected = probe(&h, "session.connect", json!({})).await;
    assert_eq!(connected["reused"], true, "{connected}");
    assert_eq!(connected["session"]["name"], name, "{connected}");

    // jobs
    let job = probe(&h, "exec.start-job", json!({"command": "echo from-a-job"})).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let page = probe(&h, "exec.read-job-output", json!({"job_id": id})).await;
    assert_eq!(page["data"], "from-a-job\n", "{page}");
    let jobs = probe(&h, "exec.list-jobs", json!({})).await;
    assert!(
        jobs.as_array().unwrap().iter().any(|j| j["id"] == id),
        "{jobs}"
    );
    let sleeper = probe(&h, "exec.start-job", json!({"command": "sleep 300"})).await;
    let sleeper_id = sleeper["id"].as_str().unwrap();
    let cancelled = probe(&h, "exec.cancel-job", json!({"job_id": sleeper_id})).await;
    assert_eq!(cancelled["cancelled"], true, "{cancelled}");

    // files: remote-write, transfer, remote-read, local-read
    let remote = h.sshd.scratch_dir().join("contract");
    let remote = remote.to_str().unwrap();
    let local = tempfile::tempdir().unwrap();
    let source = local.path().join("source.txt");
    std::fs::write(&source, "twelve bytes").unwrap();
    let (moved, fetched) = (format!("{remote}/moved.txt"), local.path().join("back.txt"));
    probe(&h, "remote-write.make-dir", json!({"path": remote})).await;
    let upload = json!({"path": format!("{remote}/sent.txt"), "local_path": source});
    assert_eq!(probe(&h, "transfer.upload", upload).await["bytes"], 12);
    let rename = json!({"path": format!("{remote}/sent.txt"), "to": moved});
    probe(&h, "remote-write.rename", rename).await;
    assert_eq!(
        probe(&h, "remote-read.stat", json!({"path": moved})).await["size"],
        12
    );
    let listing = probe(&h, "remote-read.list-dir", json!({"path": remote})).await;
    assert_eq!(listing["names"], json!(["moved.txt"]), "{listing}");
    let canonical = probe(&h, "remote-read.canonicalize", json!({"path": remote})).await;
    assert!(
        canonical.as_str().unwrap().ends_with("/contract"),
        "{canonical}"
    );
    let space = probe(&h, "remote-read.disk-space", json!({"path": remote})).await;
    assert!(space["total"].as_u64().unwrap() > 0, "{space}");
    let download = json!({"path": moved, "local_path": fetched});
    probe(&h, "transfer.download", download).await;
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "twelve bytes");
    probe(&h, "remote-write.remove-file", json!({"path": moved})).await;
    assert!(!Path::new(&moved).exists());
    let local_stat = probe(&h, "local-read.stat", json!({"path": fetched})).await;
    assert_eq!(local_stat["size"], 12, "{local_stat}");
    let local_space = probe(&h, "local-read.disk-space", json!({"path": local.path()})).await;
    assert!(local_space["total"].as_u64().unwrap() > 0, "{local_space}");

    // host-log, and closing the session
    probe(
        &h,
        "host-log.log",
        json!({"message": "from the 0.1.0 component"}),
    )
    .await;
    probe(&h, "host-log.progress", json!({"message": "halfway"})).await;
    let closed = probe(&h, "session.disconnect", json!({"session": name})).await;
    assert_eq!(closed["name"], name, "{closed}");
    h.assert_still_serving().await;
}
