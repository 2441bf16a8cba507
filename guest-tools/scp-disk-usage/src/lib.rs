//! `scp_disk_usage`: size and free space of a remote file system. Imports only
//! `mcpssh:plugin/remote-read`.

use mcpssh_sdk::bindings::mcpssh::plugin::remote_read;
use mcpssh_sdk::bindings::mcpssh::plugin::types::Space;
use mcpssh_sdk::files::{human_size, percent_used};
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target, validate};
use serde::{Deserialize, Serialize};

const DESCRIPTION: &str = "\
Size and free space of the remote file system holding `path`, like `df`.";

/// Which file system.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskUsageArgs {
    /// Default: the remote home.
    pub path: Option<String>,
    // Described by the SDK (`target::HOST_DESCRIPTION`).
    pub host: Option<HostArg>,
}

/// Size and free space.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
pub struct DiskUsageOutput {
    /// Always true.
    pub success: bool,
    /// The canonical absolute path measured.
    pub path: String,
    /// Size of the file system in bytes.
    pub total_bytes: u64,
    /// Bytes in use: total minus free.
    pub used_bytes: u64,
    /// Free bytes, including those reserved for root.
    pub free_bytes: u64,
    /// Free bytes usable by the connected user.
    pub available_bytes: u64,
    /// used / (used + available) * 100, one decimal.
    pub percent_used: f64,
    /// `total_bytes`, human-readable (e.g. `9.8 GiB`).
    pub total: String,
    /// `used_bytes`, human-readable.
    pub used: String,
    /// `free_bytes`, human-readable.
    pub free: String,
    /// `available_bytes`, human-readable.
    pub available: String,
}

/// The `scp_disk_usage` tool.
pub struct DiskUsageTool;

impl Tool for DiskUsageTool {
    type Args = DiskUsageArgs;
    type Output = DiskUsageOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("scp_disk_usage", DESCRIPTION)
            .title("Remote disk usage")
            .read_only(true)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: DiskUsageArgs) -> Result<DiskUsageOutput, ToolError> {
        let (path, session) = check(args)?;
        let session = session.as_deref();
        let canonical = remote_read::canonicalize(session, &path)?;
        let space = remote_read::disk_space(session, &canonical)?;
        Ok(shape(canonical, space))
    }
}

/// Checks the path (default `.`) and the session. Returns both.
fn check(args: DiskUsageArgs) -> Result<(String, Option<String>), ToolError> {
    let path = args.path.unwrap_or_else(|| ".".to_owned());
    validate::non_empty("path", &path)?;
    validate::no_nul("path", &path)?;
    Ok((path, target::session(args.host)?))
}

fn shape(path: String, space: Space) -> DiskUsageOutput {
    let used = space.total.saturating_sub(space.free);
    DiskUsageOutput {
        success: true,
        path,
        total_bytes: space.total,
        used_bytes: used,
        free_bytes: space.free,
        available_bytes: space.available,
        percent_used: percent_used(used, space.available),
        total: human_size(space.total),
        used: human_size(used),
        free: human_size(space.free),
        available: human_size(space.available),
    }
}

mcpssh_sdk::export_tools!(DiskUsageTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::check_tool;
    use serde_json::{Value, json};

    #[test]
    fn descriptor_is_valid() {
        check_tool::<DiskUsageTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<DiskUsageTool>();
        assert_eq!(d.name, "scp_disk_usage");
        assert!(d.read_only && !d.destructive && d.idempotent && d.open_world);
    }

    #[test]
    fn arguments() {
        assert_eq!(
            check(DiskUsageArgs::default()).unwrap(),
            (".".to_owned(), None)
        );
        let args = mcpssh_sdk::parse_args(r#"{"host": "db"}"#).unwrap();
        assert_eq!(
            check(args).unwrap(),
            (".".to_owned(), Some("db".to_owned()))
        );
        for (args, field) in [
            (r#"{"path": ""}"#, "path"),
            (r#"{"host": ""}"#, "host"),
            (r#"{"host": "x y"}"#, "host"),
        ] {
            let e: Value = mcpssh_sdk::testing::refusal::<DiskUsageTool>(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], field, "{args}");
        }
    }

    #[test]
    fn shapes_like_df() {
        // 10 GiB total, 2 GiB free of which 1.5 GiB available.
        let gib = 1u64 << 30;
        let out = shape(
            "/home/me".into(),
            Space {
                total: 10 * gib,
                free: 2 * gib,
                available: 3 * gib / 2,
            },
        );
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({
                "success": true, "path": "/home/me",
                "total_bytes": 10 * gib, "used_bytes": 8 * gib, "free_bytes": 2 * gib,
                "available_bytes": 3 * gib / 2, "percent_used": 84.2,
                "total": "10.0 GiB", "used": "8.0 GiB", "free": "2.0 GiB", "available": "1.5 GiB"
            })
        );
        let empty = shape(
            "/".into(),
            Space {
                total: 0,
                free: 0,
                available: 0,
            },
        );
        assert_eq!(empty.percent_used, 0.0);
        // free > total (bogus server) does not underflow.
        assert_eq!(
            shape(
                "/".into(),
                Space {
                    total: 1,
                    free: 2,
                    available: 2
                }
            )
            .used_bytes,
            0
        );
    }
}
