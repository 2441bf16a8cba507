//! `host_facts`: an example of a user-supplied `mcpssh` tool.
//!
//! It returns structured facts about the connected host (OS, kernel, hostname, uptime, load,
//! memory, disks, CPU count) from **one** remote command: a small POSIX `sh` script
//! ([`facts::SCRIPT`]) that prints one section per fact, parsed here in Rust
//! ([`facts::facts_from_output`]). The component imports only `mcpssh:plugin/exec`, so its
//! grant file (`host_facts.toml`, beside `host_facts.wasm` in `MCP_SSH_TOOLS_DIR`) is
//! `grants = ["exec"]`. See `docs/authoring.md` for how to build, grant, try and serve it.

pub mod facts;

use mcpssh_sdk::bindings::mcpssh::plugin::exec::{self, ExecRequest};
use mcpssh_sdk::stream::captured_to_string;
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target};
use serde::Deserialize;

pub use facts::HostFacts;

/// How long the script may run on the remote host, in milliseconds.
pub const TIMEOUT_MS: u64 = 30_000;
/// The most output kept (per stream): far more than the script prints on any normal host.
pub const OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;

const DESCRIPTION: &str = "\
Collect facts about the remote host with one read-only command and return them as structured \
data: `os` (from /etc/os-release: id, name, version, version_id, pretty_name), `kernel` \
(`uname -srm`: name, release, machine), `hostname`, `uptime_seconds`, `load_average` (1, 5 and \
15 minutes), `memory` (total, available and swap bytes from /proc/meminfo), `cpu_count` \
(`nproc`) and `disks` (every mounted file system from `df` except tmpfs, devtmpfs and overlay: \
mount, device, fs_type, size/used/available bytes, use_percent). A fact the host cannot provide \
(e.g. /proc on a non-Linux system) is null and named in `unavailable`; `warnings` says when the \
facts are incomplete. Uses the open SSH session, or opens the configured one when none is open; \
with several sessions open, `host` picks one.";

/// Arguments of `host_facts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFactsArgs {
    // Described by the SDK (`target::HOST_DESCRIPTION`).
    pub host: Option<HostArg>,
}

/// The `host_facts` tool.
pub struct HostFactsTool;

impl Tool for HostFactsTool {
    type Args = HostFactsArgs;
    type Output = HostFacts;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("host_facts", DESCRIPTION)
            .title("Facts about the remote host")
            .read_only(true)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: HostFactsArgs) -> Result<HostFacts, ToolError> {
        let output = exec::run(&request(args)?)?;
        facts::facts_from_output(
            output.exit_code,
            output.timed_out,
            &captured_to_string(&output.stdout),
            &captured_to_string(&output.stderr),
            output.stdout.cut_bytes > 0,
        )
    }
}

/// The one command `host_facts` runs: `sh -s`, with the script on standard input.
fn request(args: HostFactsArgs) -> Result<ExecRequest, ToolError> {
    Ok(ExecRequest::new("sh -s")
        .session(target::session(args.host)?)
        .stdin(facts::SCRIPT)
        .timeout_ms(TIMEOUT_MS)
        .output_limit(OUTPUT_LIMIT))
}

mcpssh_sdk::export_tools!(HostFactsTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::{check_tool, descriptor, input_schema, output_schema, parse_args};
    use serde_json::json;

    #[test]
    fn descriptor_is_valid_and_read_only() {
        check_tool::<HostFactsTool>().unwrap();
        let d = descriptor::<HostFactsTool>();
        assert_eq!(d.name, "host_facts");
        assert!(d.read_only && !d.destructive && d.idempotent && d.open_world);
    }

    #[test]
    fn input_schema_has_only_the_optional_host() {
        let s = input_schema::<HostFactsArgs>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["properties"].as_object().unwrap().len(), 1);
        assert_eq!(s["properties"]["host"]["type"], "string");
        assert!(s.get("required").is_none());
    }

    #[test]
    fn output_schema_requires_every_fact() {
        let s = output_schema::<HostFacts>();
        assert_eq!(
            s["required"],
            json!([
                "success",
                "os",
                "kernel",
                "hostname",
                "uptime_seconds",
                "load_average",
                "memory",
                "cpu_count",
                "disks",
                "unavailable",
                "warnings"
            ])
        );
        assert_eq!(
            s["properties"]["disks"]["items"]["properties"]["fs_type"]["type"],
            json!(["string", "null"])
        );
    }

    #[test]
    fn one_command_with_the_script_on_stdin() {
        let r = request(parse_args::<HostFactsArgs>("{}").unwrap()).unwrap();
        assert_eq!(r.command, "sh -s");
        assert_eq!(r.session, None);
        assert_eq!(r.stdin.as_deref(), Some(facts::SCRIPT.as_bytes()));
        assert_eq!(r.timeout_ms, Some(TIMEOUT_MS));
        assert!(!r.pty);
        let r = request(parse_args::<HostFactsArgs>(r#"{"host": "web1"}"#).unwrap()).unwrap();
        assert_eq!(r.session.as_deref(), Some("web1"));
    }

    #[test]
    fn bad_arguments_name_the_field() {
        for (args, field) in [
            (r#"{"host": "two words"}"#, "host"),
            (r#"{"host": ""}"#, "host"),
            (r#"{"hots": "web1"}"#, "hots"),
        ] {
            // Argument errors come before any host call, so they run natively.
            let e = mcpssh_sdk::testing::refusal::<HostFactsTool>(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}: {e}");
            assert_eq!(e["field"], field, "{args}: {e}");
        }
    }
}
