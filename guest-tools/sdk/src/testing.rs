//! Helpers for tools' unit tests, which run natively (`cargo test`): argument checking and
//! result shaping can be tested there; host imports cannot.

use serde_json::Value;

use crate::bindings::mcpssh::plugin::exec::JobInfo;
use crate::bindings::mcpssh::plugin::session::SessionInfo;

use crate::tool::{Tool, call_tool, descriptor};

/// The error object tool `T` answers to `arguments` it refuses (`error_kind`, `error`,
/// `field`). Panics when the call succeeds or the error is not JSON.
pub fn refusal<T: Tool>(arguments: &str) -> Value {
    let name = descriptor::<T>().name;
    let error = match call_tool::<T>(arguments) {
        Ok(result) => panic!("{name} accepted {arguments}: {result}"),
        Err(error) => error,
    };
    serde_json::from_str(&error)
        .unwrap_or_else(|e| panic!("{name}'s refusal of {arguments} is not JSON ({e}): {error}"))
}

/// Asserts that tool `T`, which takes [`crate::files::FileTransferParams`] flat or nested
/// as `{"params": {...}}`, refuses bad arguments as `invalid-argument` naming the field: a
/// missing `local_path`, an unknown `on_conflict`, a malformed `host`.
#[cfg(feature = "builtin-tools")]
pub fn assert_refuses_bad_transfer_arguments<T: Tool>() {
    for args in [
        r#"{"remote_path": "x"}"#,
        r#"{"params": {"remote_path": "x"}}"#,
    ] {
        let e = refusal::<T>(args);
        assert_eq!(e["error_kind"], "invalid-argument", "{args}");
        assert_eq!(e["field"], "local_path", "{args}");
    }
    let e = refusal::<T>(r#"{"local_path": "/a", "remote_path": "b", "on_conflict": "ASK"}"#);
    assert_eq!(e["field"], "on_conflict");
    for host in [r#""""#, r#""a b""#, "7"] {
        let args = format!(r#"{{"local_path": "/a", "remote_path": "b", "host": {host}}}"#);
        let e = refusal::<T>(&args);
        assert_eq!(e["error_kind"], "invalid-argument", "{args}");
        assert_eq!(e["field"], "host", "{args}");
    }
}

/// Asserts what every file-transfer tool `T` named `name` declares: a valid descriptor,
/// destructive and open-world annotations, the flat arguments advertised (the nested
/// `params` form is accepted but not advertised), the shared `host` argument, and no
/// unknown arguments accepted.
#[cfg(feature = "builtin-tools")]
pub fn assert_transfer_descriptor<T: Tool>(name: &str) {
    crate::tool::check_tool::<T>().unwrap();
    let d = descriptor::<T>();
    assert_eq!(d.name, name);
    assert!(!d.read_only && d.destructive && !d.idempotent && d.open_world);
    let input: Value = serde_json::from_str(&d.input_schema).unwrap();
    assert!(input["properties"].get("params").is_none());
    assert_eq!(
        input["properties"]["host"]["description"],
        crate::target::HOST_DESCRIPTION
    );
    assert_eq!(input["additionalProperties"], false);
}

/// A made-up open session named `name` (to `deploy@example.org:22`), for tests of tools
/// that shape session lists.
pub fn session_info(name: &str) -> SessionInfo {
    SessionInfo {
        name: name.into(),
        host: "example.org".into(),
        port: 22,
        username: "deploy".into(),
        server_version: "SSH-2.0-OpenSSH_9.2p1".into(),
        host_key_algorithm: "ssh-ed25519".into(),
        host_key_fingerprint: "SHA256:abc".into(),
        connected_at: 1_700_000_000,
    }
}

/// A made-up job `id` on session `s`, running or finished without an exit status, with no
/// output yet, for tests of tools that shape job results.
pub fn job_info(id: &str, running: bool) -> JobInfo {
    JobInfo {
        id: id.into(),
        session: "s".into(),
        command: "x".into(),
        started_at: 0,
        duration_ms: 0,
        running,
        exit_code: None,
        exit_signal: None,
        timed_out: false,
        idle_timed_out: false,
        cancelled: false,
        error: None,
        stdout_bytes: 0,
        stderr_bytes: 0,
    }
}
