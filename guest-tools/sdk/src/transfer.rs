//! The conflict policy of `scp_upload` and `scp_download` (the Python server's `on_conflict`), written
//! against closures so that it calls no host import itself and is unit-tested natively.
//!
//! - `FAIL`: one transfer with `create-new`; `already-exists` is returned with a hint.
//! - `OVERWRITE`: one transfer with `overwrite`.
//! - `RENAME`: when the destination does not exist, a `create-new` transfer to it; otherwise
//!   (or when that reports `already-exists`) `create-new` transfers to
//!   [`renamed_path`] names `<stem>_<YYYYmmdd-HHMMSS><.ext>`, then
//!   `...-2`, `-3`, ... (up to [`MAX_RENAME_ATTEMPTS`]), skipping names that exist, so an
//!   existing file is never replaced even by two renames in the same second.

use schemars::JsonSchema;
use serde::Serialize;

use crate::bindings::mcpssh::plugin::transfer::{TransferReport, TransferRequest, WriteMode};
use crate::bindings::mcpssh::plugin::types::Error as HostError;
use crate::error::{ToolError, kind};
use crate::files::{CheckedTransfer, OnConflict, human_size, rate_per_second, renamed_path};

/// How many alternative names `RENAME` tries before giving up.
pub const MAX_RENAME_ATTEMPTS: u32 = 1000;

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local to remote: the destination is `remote_path`.
    Upload,
    /// Remote to local: the destination is `local_path`.
    Download,
}

/// What was done about an existing destination: `none` (it did not exist), `overwritten`
/// (`OVERWRITE` replaced it) or `renamed` (`RENAME` wrote the file under a new name).
#[allow(missing_docs)] // The variants are documented in the type-level comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Conflict {
    // The destination did not exist.
    None,
    // The destination existed and was replaced (`OVERWRITE`).
    Overwritten,
    // The destination existed; the file was written under a new name (`RENAME`).
    Renamed,
}

/// The result of `scp_upload` and `scp_download`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct TransferOutput {
    /// Always true (failures are tool errors).
    pub success: bool,
    /// The local file (upload: the source; download: the file written), resolved by the host.
    pub local_path: String,
    /// The remote file (upload: the file written; download: the source), resolved by the host.
    /// After a `RENAME` this is the new name.
    pub remote_path: String,
    /// Bytes transferred.
    pub bytes: u64,
    /// How long the transfer took, in milliseconds.
    pub duration_ms: u64,
    /// Average rate in bytes per second.
    pub rate_bytes_per_second: u64,
    /// What was done about an existing destination: `none` (there was none), `overwritten`
    /// or `renamed`.
    pub conflict: Conflict,
    /// True when the SSH session had dropped and was re-established for this transfer.
    pub reconnected: bool,
    /// A one-line summary.
    pub message: String,
}

/// Runs a transfer under the request's conflict policy.
///
/// - `now_secs`: the current Unix time (for `RENAME` names).
/// - `exists(path)`: whether the destination path exists (for `RENAME` only); it should map
///   the host's `not-found` to `Ok(false)` and, for a remote destination, ask the session
///   `params.session`.
/// - `transfer(request)`: the host's `upload` or `download`.
pub fn run_transfer(
    params: &CheckedTransfer,
    direction: Direction,
    now_secs: u64,
    mut exists: impl FnMut(&str) -> Result<bool, ToolError>,
    mut transfer: impl FnMut(&TransferRequest) -> Result<TransferReport, HostError>,
) -> Result<TransferOutput, ToolError> {
    let destination = match direction {
        Direction::Upload => &params.remote_path,
        Direction::Download => &params.local_path,
    };
    let request_to = |path: &str, mode: WriteMode| {
        let (local_path, remote_path) = match direction {
            Direction::Upload => (params.local_path.clone(), path.to_owned()),
            Direction::Download => (path.to_owned(), params.remote_path.clone()),
        };
        TransferRequest {
            session: params.session.clone(),
            local_path,
            remote_path,
            mode,
            max_size: Some(params.max_size),
        }
    };

    match params.on_conflict {
        OnConflict::Fail => match transfer(&request_to(destination, WriteMode::CreateNew)) {
            Ok(report) => Ok(shape(direction, &report, Conflict::None, destination)),
            Err(HostError::AlreadyExists(message)) => Err(ToolError::new(
                kind::ALREADY_EXISTS,
                format!(
                    "{}{} Pass on_conflict \"OVERWRITE\" to replace it, or \
                     \"RENAME\" to keep it and write to a new name.",
                    sentence(&message, destination),
                    if message.to_lowercase().contains("nothing was written") {
                        ""
                    } else {
                        " Nothing was written."
                    }
                ),
            )),
            Err(e) => Err(e.into()),
        },
        OnConflict::Overwrite => {
            let report = transfer(&request_to(destination, WriteMode::Overwrite))?;
            let conflict = if report.replaced {
                Conflict::Overwritten
            } else {
                Conflict::None
            };
            Ok(shape(direction, &report, conflict, destination))
        }
        OnConflict::Rename => {
            if !exists(destination)? {
                match transfer(&request_to(destination, WriteMode::CreateNew)) {
                    Ok(report) => {
                        return Ok(shape(direction, &report, Conflict::None, destination));
                    }
                    Err(HostError::AlreadyExists(_)) => {} // Appeared meanwhile: rename.
                    Err(e) => return Err(e.into()),
                }
            }
            let stamp = crate::files::timestamp_suffix(now_secs);
            for attempt in 1..=MAX_RENAME_ATTEMPTS {
                let candidate = renamed_path(destination, &stamp, attempt);
                if exists(&candidate)? {
                    continue;
                }
                match transfer(&request_to(&candidate, WriteMode::CreateNew)) {
                    Ok(report) => {
                        return Ok(shape(direction, &report, Conflict::Renamed, destination));
                    }
                    Err(HostError::AlreadyExists(_)) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Err(ToolError::new(
                kind::ALREADY_EXISTS,
                format!(
                    "`{destination}` exists and so do {MAX_RENAME_ATTEMPTS} renamed alternatives \
                     (`{}` ...); nothing was written. Choose another destination name.",
                    renamed_path(destination, &stamp, 1)
                ),
            ))
        }
    }
}

/// The host's message as a sentence, or a default naming the path.
fn sentence(message: &str, destination: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        format!("`{destination}` already exists.")
    } else if message.ends_with(['.', '!', '?']) {
        message.to_owned()
    } else {
        format!("{message}.")
    }
}

/// Shapes a finished transfer into the result. `requested` is the destination as asked for.
pub fn shape(
    direction: Direction,
    report: &TransferReport,
    conflict: Conflict,
    requested: &str,
) -> TransferOutput {
    let rate = rate_per_second(report.bytes, report.duration_ms);
    let (verb, from, to) = match direction {
        Direction::Upload => ("Uploaded", &report.local_path, &report.remote_path),
        Direction::Download => ("Downloaded", &report.remote_path, &report.local_path),
    };
    let mut message = format!(
        "{verb} {} ({} bytes) from `{from}` to `{to}` in {} ms ({}/s).",
        human_size(report.bytes),
        report.bytes,
        report.duration_ms,
        human_size(rate)
    );
    match conflict {
        Conflict::None => {}
        Conflict::Overwritten => message.push_str(" The existing file was replaced."),
        Conflict::Renamed => message.push_str(&format!(
            " `{requested}` already existed and was kept; the file was written as `{to}`."
        )),
    }
    if report.reconnected {
        message.push_str(" The SSH session had dropped and was re-established first.");
    }
    TransferOutput {
        success: true,
        local_path: report.local_path.clone(),
        remote_path: report.remote_path.clone(),
        bytes: report.bytes,
        duration_ms: report.duration_ms,
        rate_bytes_per_second: rate,
        conflict,
        reconnected: report.reconnected,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const NOW: u64 = 1_795_626_256; // 2026-11-25T17:04:16Z

    fn params(on_conflict: OnConflict) -> CheckedTransfer {
        CheckedTransfer {
            local_path: "/home/me/report.pdf".into(),
            remote_path: "docs/report.pdf".into(),
            max_size: 100,
            on_conflict,
            session: None,
        }
    }

    /// A fake file system: `existing` paths exist; a `create-new` transfer to one fails, an
    /// `overwrite` replaces it. `hidden` paths exist but `exists` does not see them (a race).
    struct Fake {
        existing: BTreeSet<String>,
        hidden: BTreeSet<String>,
        requests: Vec<(String, String, WriteMode)>,
    }

    impl Fake {
        fn new(existing: &[&str], hidden: &[&str]) -> Self {
            Fake {
                existing: existing.iter().map(|s| s.to_string()).collect(),
                hidden: hidden.iter().map(|s| s.to_string()).collect(),
                requests: Vec::new(),
            }
        }

        fn run(&mut self, p: &CheckedTransfer, d: Direction) -> Result<TransferOutput, ToolError> {
            let existing = self.existing.clone();
            let hidden = &mut self.hidden;
            let seen = &mut self.existing;
            let requests = &mut self.requests;
            run_transfer(
                p,
                d,
                NOW,
                |path| Ok(existing.contains(path)),
                |r| {
                    requests.push((r.local_path.clone(), r.remote_path.clone(), r.mode));
                    assert_eq!(r.max_size, Some(100));
                    assert_eq!(r.session, p.session);
                    let dest = match d {
                        Direction::Upload => &r.remote_path,
                        Direction::Download => &r.local_path,
                    };
                    let there = seen.contains(dest) || hidden.contains(dest);
                    if there && r.mode == WriteMode::CreateNew {
                        return Err(HostError::AlreadyExists(format!("{dest} exists")));
                    }
                    seen.insert(dest.clone());
                    hidden.remove(dest);
                    Ok(TransferReport {
                        local_path: r.local_path.clone(),
                        remote_path: r.remote_path.clone(),
                        bytes: 2048,
                        duration_ms: 2,
                        replaced: there,
                        reconnected: false,
                    })
                },
            )
        }
    }

    #[test]
    fn fail_mode() {
        let mut fs = Fake::new(&[], &[]);
        let out = fs
            .run(&params(OnConflict::Fail), Direction::Upload)
            .unwrap();
        assert_eq!(out.conflict, Conflict::None);
        assert_eq!(out.remote_path, "docs/report.pdf");
        assert_eq!(out.rate_bytes_per_second, 1_024_000);
        assert_eq!(
            out.message,
            "Uploaded 2.0 KiB (2048 bytes) from `/home/me/report.pdf` to `docs/report.pdf` in 2 ms (1000.0 KiB/s)."
        );
        // Second time: refused with a hint, nothing else tried.
        let e = fs
            .run(&params(OnConflict::Fail), Direction::Upload)
            .unwrap_err();
        assert_eq!(e.kind(), "already-exists");
        assert!(
            e.message()
                .starts_with("docs/report.pdf exists. Nothing was written."),
            "{e}"
        );
        assert!(e.message().contains("OVERWRITE"));
        assert_eq!(fs.requests.len(), 2);
        assert!(fs.requests.iter().all(|r| r.2 == WriteMode::CreateNew));
    }

    #[test]
    fn every_request_goes_to_the_chosen_session() {
        for mode in [OnConflict::Fail, OnConflict::Overwrite, OnConflict::Rename] {
            let mut p = params(mode);
            p.session = Some("web1".into());
            // The destination exists, so RENAME makes a second request.
            let mut fs = Fake::new(&["docs/report.pdf"], &[]);
            let _ = fs.run(&p, Direction::Upload);
            assert!(!fs.requests.is_empty());
        }
    }

    #[test]
    fn overwrite_mode() {
        let mut fs = Fake::new(&[], &[]);
        let p = params(OnConflict::Overwrite);
        assert_eq!(
            fs.run(&p, Direction::Download).unwrap().conflict,
            Conflict::None
        );
        let out = fs.run(&p, Direction::Download).unwrap();
        assert_eq!(out.conflict, Conflict::Overwritten);
        assert_eq!(out.local_path, "/home/me/report.pdf");
        assert!(out.message.starts_with(
            "Downloaded 2.0 KiB (2048 bytes) from `docs/report.pdf` to `/home/me/report.pdf`"
        ));
        assert!(out.message.ends_with("The existing file was replaced."));
        assert!(fs.requests.iter().all(|r| r.2 == WriteMode::Overwrite));
    }

    #[test]
    fn rename_mode_never_overwrites() {
        let mut fs = Fake::new(&[], &[]);
        let p = params(OnConflict::Rename);
        let first = fs.run(&p, Direction::Upload).unwrap();
        assert_eq!(
            (first.conflict, first.remote_path.as_str()),
            (Conflict::None, "docs/report.pdf")
        );
        let second = fs.run(&p, Direction::Upload).unwrap();
        assert_eq!(second.conflict, Conflict::Renamed);
        assert_eq!(second.remote_path, "docs/report_20261125-170416.pdf");
        assert!(
            second
                .message
                .contains("`docs/report.pdf` already existed and was kept")
        );
        // Same second again.
        let third = fs.run(&p, Direction::Upload).unwrap();
        assert_eq!(third.remote_path, "docs/report_20261125-170416-2.pdf");
        let fourth = fs.run(&p, Direction::Upload).unwrap();
        assert_eq!(fourth.remote_path, "docs/report_20261125-170416-3.pdf");
        assert!(fs.requests.iter().all(|r| r.2 == WriteMode::CreateNew));
        // Nothing was tried on an existing name: exactly one request per call.
        assert_eq!(fs.requests.len(), 4);
    }

    #[test]
    fn rename_mode_survives_races() {
        // The destination and the first renamed name appear between the check and the write.
        let mut fs = Fake::new(
            &[],
            &["/home/me/report.pdf", "/home/me/report_20261125-170416.pdf"],
        );
        let out = fs
            .run(&params(OnConflict::Rename), Direction::Download)
            .unwrap();
        assert_eq!(out.conflict, Conflict::Renamed);
        assert_eq!(out.local_path, "/home/me/report_20261125-170416-2.pdf");
        assert_eq!(fs.requests.len(), 3);
    }

    #[test]
    fn host_errors_pass_through() {
        for mode in [OnConflict::Fail, OnConflict::Overwrite, OnConflict::Rename] {
            let e = run_transfer(
                &params(mode),
                Direction::Upload,
                NOW,
                |_| Ok(false),
                |_| {
                    Err(HostError::TooLarge(
                        "the file is 200 bytes, over max_size 100.".into(),
                    ))
                },
            )
            .unwrap_err();
            assert_eq!(e.kind(), "too-large");
            assert_eq!(e.message(), "the file is 200 bytes, over max_size 100.");
        }
        let e = run_transfer(
            &params(OnConflict::Rename),
            Direction::Upload,
            NOW,
            |_| Err(ToolError::new(kind::PERMISSION_DENIED, "no")),
            |_| unreachable!(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), "permission-denied");
    }

    #[test]
    fn rename_gives_up_eventually() {
        let e = run_transfer(
            &params(OnConflict::Rename),
            Direction::Upload,
            NOW,
            |_| Ok(true),
            |_| unreachable!(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), "already-exists");
    }

    #[test]
    fn a_reconnected_session_is_reported() {
        let report = |reconnected| TransferReport {
            local_path: "/l".into(),
            remote_path: "/r".into(),
            bytes: 1,
            duration_ms: 1,
            replaced: false,
            reconnected,
        };
        let out = shape(Direction::Upload, &report(true), Conflict::None, "/r");
        assert!(out.reconnected);
        assert!(
            out.message.ends_with("was re-established first."),
            "{}",
            out.message
        );
        let out = shape(Direction::Upload, &report(false), Conflict::None, "/r");
        assert!(!out.reconnected);
        assert!(!out.message.contains("re-established"));
    }

    #[test]
    fn output_schema_lists_conflicts() {
        let s = crate::output_schema::<TransferOutput>();
        assert_eq!(
            s["required"],
            serde_json::json!([
                "success",
                "local_path",
                "remote_path",
                "bytes",
                "duration_ms",
                "rate_bytes_per_second",
                "conflict",
                "reconnected",
                "message"
            ])
        );
        let c = s["properties"]["conflict"].to_string();
        for v in ["none", "overwritten", "renamed"] {
            assert!(c.contains(v), "{c}");
        }
    }
}
