//! Interop with the official Python MCP SDK (`mcp` on PyPI, installed by `scripts/setup`):
//! a second, independent client. Each test starts its own sshd and runs one scenario of
//! `tests/python/sdk_interop.py`, which starts mcpssh itself (through the SDK's stdio
//! transport, or over raw JSON-RPC lines for the wire-level checks), checks everything it
//! gets back (every tool result against its tool's `outputSchema`) and exits non-zero on
//! the first failed check. The script's output is printed when a test fails.

use std::{
    fs::File,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use mcpssh_testbed::{Sshd, TEST_USER, workspace_root};

use crate::common::bin;

/// Generous: the slowest scenario (poll shutdown) takes about 15 s.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

/// Run `scenario` of `sdk_interop.py` against `sshd`; panics with the script's output
/// unless every check passed.
fn run_scenario(sshd: &Sshd, scenario: &str) -> String {
    run_python(sshd, "sdk_interop.py", &[scenario], &[])
}

/// Runs `tests/python/<script>` with `args`, against `sshd` (its environment, plus
/// `env`); panics with the script's output unless every check passed.
pub fn run_python(sshd: &Sshd, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let label = args.first().copied().unwrap_or(script);
    let log_path = sshd.dir().join(format!("python-{label}.log"));
    let log = File::create(&log_path).expect("creating the script's log");
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(workspace_root().join("tests/python").join(script))
        .args(args)
        .env("MCPSSH_BIN", bin())
        .env("MCPSSH_TEST_USER", TEST_USER)
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("cloning the log handle"))
        .stderr(log);
    for (k, v) in sshd.mcp_env() {
        cmd.env(k, v);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .spawn()
        .expect("running python3 (scripts/setup installs it and the `mcp` SDK)");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for python3") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => output,
        Some(status) => panic!(
            "the Python SDK scenario `{label}` failed ({status}):\n{output}\n--- sshd log ---\n{}",
            sshd.log()
        ),
        None => panic!(
            "the Python SDK scenario `{label}` did not finish within {SCRIPT_TIMEOUT:?}:\n{output}"
        ),
    }
}

fn scenario(name: &str) {
    let sshd = Sshd::start().expect("starting sshd");
    let output = run_scenario(&sshd, name);
    eprintln!("{output}");
}

#[test]
fn initialize_list_and_call_tools() {
    scenario("tools");
}

#[test]
fn argument_errors_and_unknown_tools() {
    scenario("errors");
}

#[test]
fn resources_and_prompts() {
    scenario("resources_prompts");
}

#[test]
fn cancels_a_running_call() {
    scenario("cancel");
}

#[test]
fn sees_the_polling_shutdown() {
    scenario("poll_shutdown");
}

#[test]
fn client_that_never_polls_is_kept() {
    scenario("never_polls");
}

#[test]
fn handshake_revisions() {
    scenario("handshake");
}

#[test]
fn discover_2026_07_28() {
    scenario("discover");
}

#[test]
fn raw_json_rpc_every_revision() {
    scenario("raw");
}

#[test]
fn stdin_eof_mid_call_exits_0_and_leaves_nothing_behind() {
    let sshd = Sshd::start().expect("starting sshd");
    let output = run_scenario(&sshd, "stdin_eof");
    eprintln!("{output}");
    // The script checked within its own 1 s grace; the remote side again, independently.
    let left = sshd.processes_matching("sleep 37.3");
    assert!(
        left.is_empty(),
        "a remote command outlived the server: {left:?}\n{output}"
    );
}

#[test]
fn sigterm_mid_call_exits_0_and_leaves_nothing_behind() {
    let sshd = Sshd::start().expect("starting sshd");
    let output = run_scenario(&sshd, "sigterm");
    eprintln!("{output}");
    let left = sshd.processes_matching("sleep 37.4");
    assert!(
        left.is_empty(),
        "a remote command outlived the server: {left:?}\n{output}"
    );
}

#[test]
fn sdk_shutdown_mid_call_needs_no_kill() {
    let sshd = Sshd::start().expect("starting sshd");
    let output = run_scenario(&sshd, "sdk_exit");
    eprintln!("{output}");
    let left = sshd.processes_matching("sleep 37.5");
    assert!(
        left.is_empty(),
        "a remote command outlived the server: {left:?}\n{output}"
    );
}
