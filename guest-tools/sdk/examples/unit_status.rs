//! `unit_status`: the state of a systemd unit on the remote host. A complete tool: copy this
//! file into the `src/lib.rs` of a `cdylib` crate that depends on `mcpssh-tool-sdk`, `serde`
//! (with `derive`) and `schemars`.

use mcpssh_sdk::bindings::mcpssh::plugin::exec::{self, ExecRequest};
use mcpssh_sdk::stream::captured_to_string;
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, kind, target};
use serde::{Deserialize, Serialize};

/// The arguments. Doc comments become the input schema's descriptions: the model reads them.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The systemd unit, e.g. `nginx.service` or `ssh`.
    pub unit: String,
    // Which open session to use; the SDK supplies the description.
    pub host: Option<HostArg>,
}

/// The result (the output schema is derived from it).
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
pub struct Output {
    /// True when the unit is active.
    pub success: bool,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub active_state: String,
    /// `running`, `exited`, `dead`, ...
    pub sub_state: String,
    /// The unit's own description.
    pub description: String,
}

/// The `unit_status` tool.
pub struct UnitStatus;

impl Tool for UnitStatus {
    type Args = Args;
    type Output = Output;

    fn descriptor() -> ToolInfo {
        ToolInfo::new(
            "unit_status",
            "Show whether a systemd unit on the remote host is active, with its sub-state \
             and description. Fails with `not-found` for a unit systemd does not know.",
        )
        .title("systemd unit status")
        .read_only(true)
        .idempotent(true)
    }

    fn run(args: Args) -> Result<Output, ToolError> {
        // Check arguments before any host call; the error names the field.
        let safe = |b: u8| b.is_ascii_alphanumeric() || b"@._:-".contains(&b);
        if args.unit.is_empty() || !args.unit.bytes().all(safe) {
            return Err(ToolError::invalid_argument(
                "unit",
                "`unit` must be a unit name of A-Z a-z 0-9 @ . _ : -",
            ));
        }
        let command = format!(
            "systemctl show --property=LoadState,ActiveState,SubState,Description -- {}",
            args.unit
        );
        let request = ExecRequest::new(command)
            .session(target::session(args.host)?)
            .timeout_ms(10_000)
            .output_limit(64 * 1024);
        // A host error (not connected, auth, ...) becomes the tool's error.
        let out = exec::run(&request)?;
        if out.exit_code != Some(0) {
            let stderr = captured_to_string(&out.stderr);
            return Err(ToolError::new(
                kind::OTHER,
                format!("systemctl failed: {}", stderr.trim()),
            ));
        }
        parse(&args.unit, &captured_to_string(&out.stdout))
    }
}

/// Pure, so it is unit tested natively.
fn parse(unit: &str, stdout: &str) -> Result<Output, ToolError> {
    let get = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    if get("LoadState") == "not-found" {
        return Err(ToolError::new(
            kind::NOT_FOUND,
            format!("systemd knows no unit `{unit}`"),
        ));
    }
    let active_state = get("ActiveState");
    Ok(Output {
        success: active_state == "active",
        active_state,
        sub_state: get("SubState"),
        description: get("Description"),
    })
}

mcpssh_sdk::export_tools!(UnitStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_schemas_are_valid() {
        mcpssh_sdk::check_tool::<UnitStatus>().unwrap();
    }

    #[test]
    fn bad_unit_names_are_refused_before_any_host_call() {
        let err = mcpssh_sdk::testing::refusal::<UnitStatus>(r#"{"unit": "x; rm -rf ~"}"#);
        assert_eq!(err["error_kind"], "invalid-argument");
        assert_eq!(err["field"], "unit");
    }

    #[test]
    fn parses_systemctl_show() {
        let out = parse(
            "ssh",
            "LoadState=loaded\nActiveState=active\nSubState=running\nDescription=OpenBSD Secure Shell server\n",
        )
        .unwrap();
        assert!(out.success);
        assert_eq!(out.sub_state, "running");
        assert_eq!(
            parse("nope", "LoadState=not-found\n").unwrap_err().kind(),
            "not-found"
        );
    }
}
