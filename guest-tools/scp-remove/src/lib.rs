//! `scp_remove`: remove a remote file or symlink. Imports only `mcpssh:plugin/remote-write`.

use mcpssh_sdk::bindings::mcpssh::plugin::remote_write;
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target, validate};
use serde::{Deserialize, Serialize};

const DESCRIPTION: &str = "\
Remove one remote file or symlink (not its target) over SFTP. Directories are refused. Cannot \
be undone.";

/// What to remove.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveArgs {
    /// Relative to the remote home.
    pub path: String,
    // Described by the SDK (`target::HOST_DESCRIPTION`).
    pub host: Option<HostArg>,
}

/// What was removed.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RemoveOutput {
    /// Always true (failures are tool errors).
    pub success: bool,
    /// The path removed, as given.
    pub path: String,
    /// A one-line summary.
    pub message: String,
}

/// The `scp_remove` tool.
pub struct RemoveTool;

impl Tool for RemoveTool {
    type Args = RemoveArgs;
    type Output = RemoveOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("scp_remove", DESCRIPTION)
            .title("Remove a remote file")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    }

    fn run(args: RemoveArgs) -> Result<RemoveOutput, ToolError> {
        let (path, session) = check(args)?;
        remote_write::remove_file(session.as_deref(), &path)?;
        Ok(shape(path))
    }
}

/// Checks the path (not empty, no NUL, not `.`, `..` or ending in `/`, which is always a
/// directory) and the session. Returns both.
fn check(args: RemoveArgs) -> Result<(String, Option<String>), ToolError> {
    let path = args.path;
    validate::non_empty("path", &path)?;
    validate::no_nul("path", &path)?;
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if path.ends_with('/') || last == "." || last == ".." {
        return Err(ToolError::invalid_argument(
            "path",
            format!("`path` must name a file or symlink, not a directory: {path:?}"),
        ));
    }
    Ok((path, target::session(args.host)?))
}

fn shape(path: String) -> RemoveOutput {
    RemoveOutput {
        success: true,
        message: format!("Removed `{path}`."),
        path,
    }
}

mcpssh_sdk::export_tools!(RemoveTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::check_tool;
    use serde_json::{Value, json};

    #[test]
    fn descriptor_is_valid() {
        check_tool::<RemoveTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<RemoveTool>();
        assert_eq!(d.name, "scp_remove");
        assert!(!d.read_only && d.destructive && !d.idempotent && d.open_world);
    }

    #[test]
    fn bad_paths_are_refused() {
        for args in [
            r#"{}"#,
            r#"{"path": ""}"#,
            r#"{"path": "/tmp/"}"#,
            r#"{"path": "a/.."}"#,
            r#"{"path": "."}"#,
            r#"{"path": "a\u0000b"}"#,
            r#"{"path": "/", "host": "web1"}"#,
        ] {
            let e: Value = mcpssh_sdk::testing::refusal::<RemoveTool>(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], "path", "{args}");
        }
        assert_eq!(
            check(RemoveArgs {
                path: "/tmp/x.txt".into(),
                host: None
            })
            .unwrap(),
            ("/tmp/x.txt".into(), None)
        );
        assert_eq!(
            check(RemoveArgs {
                path: "..x".into(),
                host: Some("web1".into())
            })
            .unwrap(),
            ("..x".into(), Some("web1".into()))
        );
        for args in [
            r#"{"path": "x", "host": ""}"#,
            r#"{"path": "x", "host": "a b"}"#,
        ] {
            let e: Value = mcpssh_sdk::testing::refusal::<RemoveTool>(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], "host", "{args}");
        }
    }

    #[test]
    fn shapes_the_result() {
        assert_eq!(
            serde_json::to_value(shape("/tmp/x".into())).unwrap(),
            json!({"success": true, "path": "/tmp/x", "message": "Removed `/tmp/x`."})
        );
    }
}
