//! Helpers for file tools: formatting metadata (ISO 8601 times, `rwx` modes, human sizes),
//! the Python server's `FileTransferParams` (flat or nested), and the names `RENAME` picks.
//!
//! Nothing here calls a host import.
//!
//! ```
//! use mcpssh_sdk::bindings::mcpssh::plugin::types::FileKind;
//! use mcpssh_sdk::files;
//!
//! assert_eq!(files::iso8601_utc(0), "1970-01-01T00:00:00Z");
//! assert_eq!(files::permissions_octal(0o644), "0644");
//! assert_eq!(files::mode_string(FileKind::Directory, 0o755), "drwxr-xr-x");
//! assert_eq!(files::human_size(10_522_669_875), "9.8 GiB");
//! assert_eq!(files::renamed_path("/tmp/report.pdf", "20261125-170416", 1), "/tmp/report_20261125-170416.pdf");
//! ```

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings::mcpssh::plugin::types::FileKind;
use crate::error::ToolError;
use crate::target::{self, HostArg};
use crate::validate;

/// The Python server's default `max_size`: 1 GiB.
pub const DEFAULT_MAX_SIZE: u64 = 1_073_741_824;

/// Seconds since the Unix epoch as ISO 8601 UTC with second precision, e.g.
/// `2026-11-25T17:04:16Z`.
pub fn iso8601_utc(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the Unix epoch as the compact UTC timestamp used by `RENAME`:
/// `YYYYmmdd-HHMMSS`, e.g. `20261125-170416`.
pub fn timestamp_suffix(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// The current time in seconds since the Unix epoch (WASI wall clock; 0 if it is before 1970).
pub fn now_unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// (year, month, day, hour, minute, second) in UTC of a Unix time.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3_600) as u32,
        (rem % 3_600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The JSON name of a file kind: `file`, `directory`, `symlink` or `other`.
pub fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

/// The permission bits (including setuid, setgid and sticky) as a 4-digit octal string, e.g.
/// `0644`, `4755`.
pub fn permissions_octal(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// The `ls -l` form of a mode: a type character (`-`, `d`, `l`, or `?` for other kinds) and
/// nine permission characters, with `s`/`S` for setuid and setgid and `t`/`T` for sticky,
/// e.g. `-rw-r--r--`, `drwxrwxrwt`, `lrwxrwxrwx`.
pub fn mode_string(kind: FileKind, mode: u32) -> String {
    let mut out = String::with_capacity(10);
    out.push(match kind {
        FileKind::File => '-',
        FileKind::Directory => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => '?',
    });
    let specials = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (special, lower, upper)) in specials.into_iter().enumerate() {
        let bits = (mode >> (6 - 3 * i)) & 0o7;
        out.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        out.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        let exec = bits & 0o1 != 0;
        out.push(match (mode & special != 0, exec) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    out
}

/// A size in binary units with one decimal: `512 B`, `1.0 KiB`, `9.8 GiB`, up to EiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Move up when the value would print as 1024.0 or more.
    while value >= 1023.95 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A transfer rate: `bytes` per second over `duration_ms` (a duration of 0 counts as 1 ms).
pub fn rate_per_second(bytes: u64, duration_ms: u64) -> u64 {
    let ms = u128::from(duration_ms.max(1));
    u64::try_from(u128::from(bytes) * 1000 / ms).unwrap_or(u64::MAX)
}

/// Percentage of a file system in use, as `df` computes it: `used / (used + available) * 100`,
/// rounded to one decimal (0 when both are 0).
pub fn percent_used(used: u64, available: u64) -> f64 {
    let whole = used as f64 + available as f64;
    if whole <= 0.0 {
        return 0.0;
    }
    (used as f64 / whole * 1000.0).round() / 10.0
}

/// The path `RENAME` tries as its `attempt`-th alternative (1, 2, ...): the timestamp is put
/// before the extension of the last path component, `<stem>_<stamp><.ext>`, and attempts from 2
/// on add `-<attempt>`: `report_20261125-170416.pdf`, `report_20261125-170416-2.pdf`, ...
///
/// The extension is what follows the last `.` of the file name, unless that `.` starts the
/// name (`.bashrc` has none) or ends it; `archive.tar.gz` becomes
/// `archive.tar_<stamp>.gz`.
pub fn renamed_path(path: &str, stamp: &str, attempt: u32) -> String {
    let name_start = path.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let (dir, name) = path.split_at(name_start);
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 && dot + 1 < name.len() => name.split_at(dot),
        _ => (name, ""),
    };
    if attempt <= 1 {
        format!("{dir}{stem}_{stamp}{ext}")
    } else {
        format!("{dir}{stem}_{stamp}-{attempt}{ext}")
    }
}

/// What to do when the destination of a transfer exists: `FAIL` (refuse, nothing is written),
/// `OVERWRITE` (replace it atomically) or `RENAME` (keep it, write to a new name with a
/// timestamp before the extension). Lowercase is accepted too.
#[allow(missing_docs)] // The variants are documented in the type-level comment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum OnConflict {
    // Refuse: the call fails with `already-exists` and nothing is written.
    #[default]
    #[serde(alias = "fail")]
    Fail,
    // Replace the existing file (atomically: it stays intact until the new one is complete).
    #[serde(alias = "overwrite")]
    Overwrite,
    // Keep the existing file and write to a new name with a timestamp before the extension.
    #[serde(alias = "rename")]
    Rename,
}

/// The arguments of `scp_upload` and `scp_download`: the Python server's `FileTransferParams`, flat.
///
/// Tools also accept the Python server's nested form `{"params": {...}}` through
/// [`unwrap_nested_params`] (not advertised in the schema).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileTransferParams {
    /// File on the machine running mcpssh: absolute or `~/...`.
    pub local_path: String,
    /// File on the remote host; relative to the remote home.
    pub remote_path: String,
    /// Refuse larger files, in bytes.
    #[schemars(range(min = 0), extend("default" = 1073741824))]
    pub max_size: Option<i64>,
    /// If the destination exists: fail, replace it, or write `<name>_<UTC time><.ext>`.
    #[serde(default)]
    pub on_conflict: OnConflict,
    /// Which open session to use; see [`HostArg`] (the schema says
    /// [`HOST_DESCRIPTION`](crate::target::HOST_DESCRIPTION)).
    #[schemars(description = crate::target::HOST_DESCRIPTION)]
    pub host: Option<HostArg>,
}

/// [`FileTransferParams`] after checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedTransfer {
    /// The local path, as given.
    pub local_path: String,
    /// The remote path, as given.
    pub remote_path: String,
    /// The size limit in bytes.
    pub max_size: u64,
    /// The conflict policy.
    pub on_conflict: OnConflict,
    /// The session to use (the checked `host`; `None`: the default one).
    pub session: Option<String>,
}

impl FileTransferParams {
    /// Checks the paths (non-empty, no NUL, not ending in `/`), the size limit and `host`.
    pub fn check(self) -> Result<CheckedTransfer, ToolError> {
        for (field, value) in [
            ("local_path", &self.local_path),
            ("remote_path", &self.remote_path),
        ] {
            validate::non_empty(field, value)?;
            validate::no_nul(field, value)?;
            if value.ends_with('/') {
                return Err(ToolError::invalid_argument(
                    field,
                    format!("`{field}` must name a file, not a directory (it ends with `/`)"),
                ));
            }
        }
        let max_size = match self.max_size {
            None => DEFAULT_MAX_SIZE,
            Some(v) => validate::at_least("max_size", v, 0)? as u64,
        };
        let session = target::session(self.host)?;
        Ok(CheckedTransfer {
            local_path: self.local_path,
            remote_path: self.remote_path,
            max_size,
            on_conflict: self.on_conflict,
            session,
        })
    }
}

/// The Python server's nested form: when `arguments` is an object whose only key is `params` and whose
/// value is an object, returns that inner object; otherwise returns `arguments` unchanged.
///
/// ```
/// use mcpssh_sdk::files::unwrap_nested_params;
/// use serde_json::json;
///
/// let nested = json!({"params": {"local_path": "/a", "remote_path": "b"}});
/// assert_eq!(unwrap_nested_params(nested), json!({"local_path": "/a", "remote_path": "b"}));
/// let flat = json!({"local_path": "/a", "remote_path": "b"});
/// assert_eq!(unwrap_nested_params(flat.clone()), flat);
/// ```
pub fn unwrap_nested_params(arguments: Value) -> Value {
    match arguments {
        Value::Object(mut map)
            if map.len() == 1 && map.get("params").is_some_and(Value::is_object) =>
        {
            map.remove("params").expect("checked")
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_value;
    use serde_json::json;

    #[test]
    fn iso_times() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_795_626_256), "2026-11-25T17:04:16Z");
        assert_eq!(iso8601_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(iso8601_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        // Must not panic for the largest value.
        assert!(iso8601_utc(u64::MAX).ends_with('Z'));
        assert_eq!(timestamp_suffix(1_795_626_256), "20261125-170416");
    }

    #[test]
    fn modes() {
        assert_eq!(mode_string(FileKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(FileKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(FileKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileKind::Directory, 0o1776), "drwxrwxrwT");
        assert_eq!(mode_string(FileKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(FileKind::Other, 0o600), "?rw-------");
        assert_eq!(mode_string(FileKind::File, 0), "----------");
        assert_eq!(permissions_octal(0o644), "0644");
        assert_eq!(permissions_octal(0o4755), "4755");
        assert_eq!(permissions_octal(0o100644), "0644");
        assert_eq!(kind_name(FileKind::Symlink), "symlink");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(1_048_575), "1.0 MiB");
        assert_eq!(human_size(1_048_576), "1.0 MiB");
        assert_eq!(human_size(10_522_669_875), "9.8 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn rates_and_percentages() {
        assert_eq!(rate_per_second(1000, 500), 2000);
        assert_eq!(rate_per_second(1000, 0), 1_000_000);
        assert_eq!(rate_per_second(u64::MAX, 0), u64::MAX);
        assert_eq!(percent_used(0, 0), 0.0);
        assert_eq!(percent_used(1, 2), 33.3);
        assert_eq!(percent_used(2, 1), 66.7);
        assert_eq!(percent_used(5, 0), 100.0);
    }

    #[test]
    fn rename_names() {
        let s = "20261125-170416";
        assert_eq!(renamed_path("a.txt", s, 1), "a_20261125-170416.txt");
        assert_eq!(renamed_path("a.txt", s, 2), "a_20261125-170416-2.txt");
        assert_eq!(renamed_path("/x.y/file", s, 1), "/x.y/file_20261125-170416");
        assert_eq!(renamed_path("~/.bashrc", s, 1), "~/.bashrc_20261125-170416");
        assert_eq!(
            renamed_path("dir/archive.tar.gz", s, 3),
            "dir/archive.tar_20261125-170416-3.gz"
        );
        assert_eq!(renamed_path("trailing.", s, 1), "trailing._20261125-170416");
        assert_eq!(
            renamed_path("C:\\d\\f.bin", s, 1),
            "C:\\d\\f_20261125-170416.bin"
        );
    }

    fn params(v: Value) -> Result<CheckedTransfer, ToolError> {
        parse_value::<FileTransferParams>(unwrap_nested_params(v))?.check()
    }

    #[test]
    fn params_flat_and_nested() {
        let flat = params(json!({"local_path": "/l", "remote_path": "r"})).unwrap();
        assert_eq!(flat.max_size, DEFAULT_MAX_SIZE);
        assert_eq!(flat.on_conflict, OnConflict::Fail);
        let nested = params(json!({"params": {"local_path": "/l", "remote_path": "r",
            "max_size": 10, "on_conflict": "RENAME"}}))
        .unwrap();
        assert_eq!(nested.max_size, 10);
        assert_eq!(nested.on_conflict, OnConflict::Rename);
        let null_max = params(
            json!({"local_path": "/l", "remote_path": "r", "max_size": null,
            "on_conflict": "overwrite"}),
        )
        .unwrap();
        assert_eq!(null_max.max_size, DEFAULT_MAX_SIZE);
        assert_eq!(null_max.on_conflict, OnConflict::Overwrite);
        assert_eq!(null_max.session, None);
        let hosted =
            params(json!({"local_path": "/l", "remote_path": "r", "host": "web1"})).unwrap();
        assert_eq!(hosted.session.as_deref(), Some("web1"));
        let nested = params(json!({"params": {"local_path": "/l", "remote_path": "r",
            "host": "db"}}))
        .unwrap();
        assert_eq!(nested.session.as_deref(), Some("db"));
    }

    #[test]
    fn params_errors_name_the_field() {
        for (v, field) in [
            (json!({"remote_path": "r"}), "local_path"),
            (json!({"params": {"remote_path": "r"}}), "local_path"),
            (json!({"local_path": "", "remote_path": "r"}), "local_path"),
            (
                json!({"local_path": "/l", "remote_path": "dir/"}),
                "remote_path",
            ),
            (
                json!({"local_path": "/l", "remote_path": "r", "max_size": -1}),
                "max_size",
            ),
            (
                json!({"local_path": "/l", "remote_path": "r", "on_conflict": "SKIP"}),
                "on_conflict",
            ),
            (
                json!({"local_path": "/l", "remote_path": "r", "params": {}}),
                "params",
            ),
            (json!({"params": "x"}), "params"),
            (
                json!({"local_path": "/l", "remote_path": "r", "host": ""}),
                "host",
            ),
            (
                json!({"local_path": "/l", "remote_path": "r", "host": "a b"}),
                "host",
            ),
            (
                json!({"local_path": "/l", "remote_path": "r", "host": 1}),
                "host",
            ),
        ] {
            let e = params(v.clone()).unwrap_err();
            assert_eq!(e.kind(), "invalid-argument", "{v}");
            assert_eq!(e.field(), Some(field), "{v}: {e}");
        }
    }

    #[test]
    fn params_schema_is_flat() {
        let s = crate::input_schema::<FileTransferParams>();
        let props: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            props,
            [
                "host",
                "local_path",
                "max_size",
                "on_conflict",
                "remote_path"
            ]
        );
        assert_eq!(
            s["properties"]["host"]["description"],
            crate::target::HOST_DESCRIPTION
        );
        assert_eq!(s["required"], json!(["local_path", "remote_path"]));
        assert_eq!(
            s["properties"]["on_conflict"]["enum"],
            json!(["FAIL", "OVERWRITE", "RENAME"])
        );
        assert_eq!(s["properties"]["on_conflict"]["default"], "FAIL");
        assert_eq!(s["properties"]["max_size"]["default"], 1073741824);
    }
}
