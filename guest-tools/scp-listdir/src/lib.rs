//! `scp_listdir`: list a remote directory. Imports only `mcpssh:plugin/remote-read`.

use mcpssh_sdk::bindings::mcpssh::plugin::remote_read;
use mcpssh_sdk::bindings::mcpssh::plugin::types::FileInfo;
use mcpssh_sdk::files::{iso8601_utc, kind_name, mode_string, permissions_octal};
use mcpssh_sdk::{HostArg, JsonSchema, Tool, ToolError, ToolInfo, target, validate};
use serde::{Deserialize, Serialize};

/// Entries listed when `limit` is left out.
pub const DEFAULT_LIMIT: i64 = 1000;
/// The largest `limit` a call may ask for.
pub const MAX_LIMIT: i64 = 10_000;

const DESCRIPTION: &str = "\
List a remote directory over SFTP: names, types (symlinks not followed), sizes, permissions and \
modification times (UTC), sorted, hidden entries included.";

/// Which directory to list.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListdirArgs {
    /// Default: the remote home.
    pub path: Option<String>,
    #[schemars(range(min = 1, max = 10000), extend("default" = 1000))]
    pub limit: Option<i64>,
    // Described by the SDK (`target::HOST_DESCRIPTION`).
    pub host: Option<HostArg>,
}

/// One directory entry.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Entry {
    /// The entry's name (not a path).
    pub name: String,
    /// `file`, `directory`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Size in bytes (of the link itself for a symlink).
    pub size: u64,
    /// Permission bits in octal, e.g. `0644` (`4755` with setuid).
    pub permissions: String,
    /// The `ls -l` form, e.g. `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`.
    pub mode: String,
    /// Last modification, ISO 8601 UTC (e.g. `2026-11-25T17:04:16Z`), or null when unknown.
    pub modified: Option<String>,
}

/// The listing.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ListdirOutput {
    /// Always true.
    pub success: bool,
    /// The directory's canonical absolute path.
    pub path: String,
    /// The entries, sorted by name (byte order).
    pub entries: Vec<Entry>,
    /// Number of entries returned.
    pub count: usize,
    /// True when the directory has more entries than were returned.
    pub truncated: bool,
    /// Present when the listing was cut: what to do to see more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The `scp_listdir` tool.
pub struct ListdirTool;

impl Tool for ListdirTool {
    type Args = ListdirArgs;
    type Output = ListdirOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("scp_listdir", DESCRIPTION)
            .title("List a remote directory")
            .read_only(true)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: ListdirArgs) -> Result<ListdirOutput, ToolError> {
        let Checked {
            path,
            limit,
            session,
        } = check(args)?;
        let session = session.as_deref();
        let canonical = remote_read::canonicalize(session, &path)?;
        let (entries, truncated) = remote_read::list_dir(session, &canonical, limit)?;
        Ok(shape(canonical, entries, truncated, limit))
    }
}

/// The checked arguments.
#[derive(Debug, PartialEq, Eq)]
struct Checked {
    path: String,
    limit: u32,
    session: Option<String>,
}

/// Checks the arguments: the path (default `.`), the limit and the session.
fn check(args: ListdirArgs) -> Result<Checked, ToolError> {
    let path = args.path.unwrap_or_else(|| ".".to_owned());
    validate::non_empty("path", &path)?;
    validate::no_nul("path", &path)?;
    let limit = validate::in_range("limit", args.limit.unwrap_or(DEFAULT_LIMIT), 1, MAX_LIMIT)?;
    Ok(Checked {
        path,
        limit: u32::try_from(limit).expect("checked range"),
        session: target::session(args.host)?,
    })
}

/// Shapes the host's entries into the result: sorted by name, formatted, capped at `limit`.
fn shape(path: String, entries: Vec<FileInfo>, truncated: bool, limit: u32) -> ListdirOutput {
    let mut entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.name != "." && e.name != "..")
        .map(|e| Entry {
            kind: kind_name(e.kind).to_owned(),
            size: e.size,
            permissions: permissions_octal(e.mode),
            mode: mode_string(e.kind, e.mode),
            modified: e.modified.map(iso8601_utc),
            name: e.name,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let truncated = truncated || entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let note = truncated.then(|| {
        format!(
            "The directory has more than {limit} entries; only {} are shown (sorted by name \
             among those returned). Pass a larger `limit` (at most {MAX_LIMIT}) or list a \
             subdirectory, or use ssh_execute with `ls` or `find` to filter.",
            entries.len()
        )
    });
    ListdirOutput {
        success: true,
        path,
        count: entries.len(),
        entries,
        truncated,
        note,
    }
}

mcpssh_sdk::export_tools!(ListdirTool);

#[cfg(test)]
mod tests {
    use super::*;
    use mcpssh_sdk::bindings::mcpssh::plugin::types::FileKind;
    use mcpssh_sdk::{check_tool, input_schema};
    use serde_json::{Value, json};

    fn info(name: &str, kind: FileKind, size: u64, mode: u32, modified: Option<u64>) -> FileInfo {
        FileInfo {
            name: name.into(),
            kind,
            size,
            mode,
            modified,
            uid: Some(1000),
            gid: None,
        }
    }

    #[test]
    fn descriptor_is_valid() {
        check_tool::<ListdirTool>().unwrap();
        let d = mcpssh_sdk::descriptor::<ListdirTool>();
        assert_eq!(d.name, "scp_listdir");
        assert!(d.read_only && !d.destructive && d.idempotent && d.open_world);
        let s = input_schema::<ListdirArgs>();
        assert!(s.get("required").is_none());
        assert_eq!(s["properties"]["limit"]["maximum"], 10000);
        assert_eq!(
            s["properties"]["host"]["description"],
            mcpssh_sdk::target::HOST_DESCRIPTION
        );
    }

    #[test]
    fn defaults_and_limits() {
        assert_eq!(
            check(ListdirArgs::default()).unwrap(),
            Checked {
                path: ".".to_owned(),
                limit: 1000,
                session: None
            }
        );
        let args = mcpssh_sdk::parse_args(r#"{"path": "/etc", "limit": 5, "host": "web1"}"#);
        assert_eq!(
            check(args.unwrap()).unwrap(),
            Checked {
                path: "/etc".to_owned(),
                limit: 5,
                session: Some("web1".to_owned())
            }
        );
        for (args, field) in [
            (r#"{"limit": 0}"#, "limit"),
            (r#"{"limit": 10001}"#, "limit"),
            (r#"{"path": ""}"#, "path"),
            (r#"{"path": 5}"#, "path"),
            (r#"{"dir": "/"}"#, "dir"),
            (r#"{"host": ""}"#, "host"),
            (r#"{"host": "a\nb"}"#, "host"),
        ] {
            let e: Value = mcpssh_sdk::testing::refusal::<ListdirTool>(args);
            assert_eq!(e["error_kind"], "invalid-argument", "{args}");
            assert_eq!(e["field"], field, "{args}");
        }
    }

    #[test]
    fn shapes_sorted_entries() {
        let out = shape(
            "/home/me".into(),
            vec![
                info("b.txt", FileKind::File, 12, 0o644, Some(1_795_626_256)),
                info(".hidden", FileKind::Directory, 4096, 0o700, None),
                info("link", FileKind::Symlink, 5, 0o777, Some(0)),
                info("A", FileKind::Other, 0, 0o600, None),
            ],
            false,
            1000,
        );
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({
                "success": true, "path": "/home/me", "count": 4, "truncated": false,
                "entries": [
                    {"name": ".hidden", "type": "directory", "size": 4096, "permissions": "0700",
                     "mode": "drwx------", "modified": null},
                    {"name": "A", "type": "other", "size": 0, "permissions": "0600",
                     "mode": "?rw-------", "modified": null},
                    {"name": "b.txt", "type": "file", "size": 12, "permissions": "0644",
                     "mode": "-rw-r--r--", "modified": "2026-11-25T17:04:16Z"},
                    {"name": "link", "type": "symlink", "size": 5, "permissions": "0777",
                     "mode": "lrwxrwxrwx", "modified": "1970-01-01T00:00:00Z"},
                ]
            })
        );
    }

    #[test]
    fn notes_truncation() {
        let many = (0..5)
            .map(|i| info(&format!("f{i}"), FileKind::File, 0, 0o644, None))
            .collect();
        let out = shape("/d".into(), many, false, 3);
        assert!(out.truncated);
        assert_eq!(out.count, 3);
        assert_eq!(out.entries.last().unwrap().name, "f2");
        assert!(out.note.unwrap().contains("more than 3 entries"));
        let out = shape(
            "/d".into(),
            vec![info("x", FileKind::File, 0, 0, None)],
            true,
            1,
        );
        assert!(out.truncated && out.note.is_some());
    }
}
