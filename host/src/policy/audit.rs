//! The audit log (`MCP_SSH_AUDIT_LOG`): one JSON line per tool call, appended to a file
//! readable by the user only, rotated by size, optionally chained by hash.
//!
//! Arguments are redacted before they are written: standard input, environment values
//! and anything named like a secret are replaced by a note, and long values by their
//! SHA-256 and length. Settings and secrets never reach the log.
//!
//! With the chain on, each line carries `seq`, `prev` (the previous line's hash) and, as
//! its last field, `hash`: SHA-256 (or HMAC-SHA-256 with the key file) of the line's text
//! without `hash`. [`verify`](super::verify) recomputes them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::trusted_file;

/// The largest audit key file read.
const MAX_KEY_BYTES: u64 = 4096;

/// How many rotated files are kept (`FILE.1` is the newest).
pub const ROTATIONS: usize = 5;

/// Strings longer than this are logged as their hash and length.
const LARGE_VALUE: usize = 256;

/// The text between a chained line's body and its hash.
pub(super) const HASH_FIELD: &str = ",\"hash\":\"";

/// The log file and its rotations, newest first.
pub fn all_files(path: &Path) -> Vec<PathBuf> {
    std::iter::once(path.to_path_buf())
        .chain((1..=ROTATIONS).map(|n| rotated(path, n)))
        .collect()
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The hash of a chained line's body: HMAC-SHA-256 with `key`, else SHA-256; hex.
pub(super) fn line_hash(body: &str, key: Option<&[u8]>) -> String {
    match key {
        Some(key) => {
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .expect("HMAC takes keys of any length");
            mac.update(body.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        None => hex::encode(Sha256::digest(body.as_bytes())),
    }
}

/// Reads an HMAC key file: its bytes, at least 16. Like any secret, the file must be
/// the user's and readable by nobody else: whoever reads the key can forge the chain.
pub fn read_key(path: &Path) -> Result<Vec<u8>, String> {
    let key = trusted_file::read_secret(path, "the audit key file", MAX_KEY_BYTES)
        .map_err(|e| format!("{e:#}"))?
        .ok_or_else(|| {
            format!(
                "cannot read the audit key file {}: no such file",
                path.display()
            )
        })?;
    if key.len() < 16 {
        return Err(format!(
            "the audit key file {} holds {} bytes; use at least 16 random bytes (e.g. `head -c 32 /dev/urandom > FILE`)",
            path.display(),
            key.len()
        ));
    }
    Ok(key)
}

struct Writer {
    file: File,
    size: u64,
    seq: u64,
    prev: String,
}

/// The audit log being written.
pub struct AuditLog {
    path: PathBuf,
    max_bytes: u64,
    chain: bool,
    key: Option<Vec<u8>>,
    writer: Mutex<Writer>,
}

/// One call, as the audit log records it.
pub struct Entry {
    pub client: String,
    pub tool: String,
    pub arguments: Value,
    /// The gate's record: session, host, user and decisions.
    pub record: super::CallRecord,
    /// `success` or `error`.
    pub outcome: &'static str,
    /// The call's result (for the exit code, bytes and error kind).
    pub result: Value,
    pub duration_ms: u64,
}

impl AuditLog {
    /// The log the settings ask for, opened (created with mode 0600); none without
    /// `MCP_SSH_AUDIT_LOG`. The error is one line.
    pub fn from_settings(settings: &Settings) -> Result<Option<AuditLog>, String> {
        let Some(path) = log_path(settings)? else {
            return Ok(None);
        };
        let key = key_from_settings(settings)?;
        let chain = settings.audit_chain || key.is_some();
        let file = open_append(&path)?;
        let (seq, prev) = if chain {
            chain_tail(&file)
        } else {
            (0, String::new())
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Some(AuditLog {
            path,
            max_bytes: settings.audit_max_bytes.max(4096),
            chain,
            key,
            writer: Mutex::new(Writer {
                file,
                size,
                seq,
                prev,
            }),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line for `entry`. A failure to write is logged, never fatal.
    pub fn write(&self, entry: Entry) {
        let mut body = Map::new();
        body.insert("time".into(), json!(rfc3339_now()));
        body.insert("client".into(), json!(entry.client));
        body.insert("tool".into(), json!(entry.tool));
        for (key, value) in [
            ("session", &entry.record.session),
            ("host", &entry.record.host),
            ("user", &entry.record.user),
        ] {
            if let Some(v) = value {
                body.insert(key.into(), json!(v));
            }
        }
        body.insert("arguments".into(), redact(&entry.arguments));
        if !entry.record.decisions.is_empty() {
            body.insert("policy".into(), json!(entry.record.decisions));
        }
        body.insert("outcome".into(), json!(entry.outcome));
        // What the result says that the record needs: how it ended, how much moved, and
        // for a new session the host key it was made with (and whether it was new).
        for key in [
            "error_kind",
            "exit_code",
            "timed_out",
            "bytes",
            "host_key_fingerprint",
            "new_host_key_recorded",
        ] {
            if let Some(v) = entry
                .result
                .get(key)
                .filter(|v| !v.is_null() && **v != Value::Bool(false))
            {
                body.insert(key.into(), v.clone());
            }
        }
        body.insert("duration_ms".into(), json!(entry.duration_ms));
        let mut writer = self.writer.lock().unwrap();
        if let Err(e) = self.append(&mut writer, body) {
            tracing::error!("cannot write the audit log {}: {e}", self.path.display());
        }
    }

    fn append(&self, writer: &mut Writer, mut body: Map<String, Value>) -> std::io::Result<()> {
        let line = if self.chain {
            body.insert("seq".into(), json!(writer.seq));
            body.insert("prev".into(), json!(writer.prev));
            let text = Value::Object(body).to_string();
            let hash = line_hash(&text, self.key.as_deref());
            let line = format!("{}{HASH_FIELD}{hash}\"}}", &text[..text.len() - 1]);
            writer.seq += 1;
            writer.prev = hash;
            line
        } else {
            Value::Object(body).to_string()
        };
        if writer.size > 0 && writer.size + line.len() as u64 + 1 > self.max_bytes {
            self.rotate(writer)?;
        }
        writer.file.write_all(format!("{line}\n").as_bytes())?;
        writer.size += line.len() as u64 + 1;
        Ok(())
    }

    /// Moves `FILE` to `FILE.1` (and so on, dropping the oldest) and starts a new file;
    /// the chain continues across files.
    fn rotate(&self, writer: &mut Writer) -> std::io::Result<()> {
        for n in (1..ROTATIONS).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        writer.file = open_append(&self.path).map_err(std::io::Error::other)?;
        writer.size = 0;
        Ok(())
    }
}

/// Opens the log for appending (made private when new; readable through the handle for
/// [`chain_tail`]). Not through a symlink, and without waiting on a FIFO: anything but the
/// user's own regular file, which nobody else may write, is refused — another user could
/// rewrite the record, read it live, or point it at one of the user's files.
fn open_append(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open the audit log {} (MCP_SSH_AUDIT_LOG): {e}",
                path.display()
            )
        })?;
    trusted_file::check_open_file(&file, path, "the audit log")
        .map_err(|e| format!("{e:#} (MCP_SSH_AUDIT_LOG)"))?;
    Ok(file)
}

/// The log file the settings name (`MCP_SSH_AUDIT_LOG`), made absolute; none without.
fn log_path(settings: &Settings) -> Result<Option<PathBuf>, String> {
    let Some(path) = settings.audit_log.as_deref() else {
        return Ok(None);
    };
    std::path::absolute(crate::config::expand_tilde(path))
        .map(Some)
        .map_err(|e| format!("audit log {path}: {e}"))
}

/// The HMAC key the settings name (`MCP_SSH_AUDIT_KEY_FILE`), read and checked.
fn key_from_settings(settings: &Settings) -> Result<Option<Vec<u8>>, String> {
    settings
        .audit_key_file
        .as_deref()
        .map(|k| read_key(&crate::config::expand_tilde(k)))
        .transpose()
}

/// What start-up would refuse about the settings' audit files, found without creating or
/// writing the log (for `mcpssh doctor`): the log's path when all is well, none without
/// a log.
pub fn check_settings(settings: &Settings) -> Result<Option<PathBuf>, String> {
    let Some(path) = log_path(settings)? else {
        return Ok(None);
    };
    key_from_settings(settings)?;
    check_existing_log(&path)?;
    Ok(Some(path))
}

/// An existing log's file, checked as [`open_append`] checks it, without creating it or
/// waiting on a FIFO. A log not there yet is fine.
fn check_existing_log(path: &Path) -> Result<(), String> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => trusted_file::check_open_file(&file, path, "the audit log")
            .map_err(|e| format!("{e:#} (MCP_SSH_AUDIT_LOG)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot open the audit log {} (MCP_SSH_AUDIT_LOG): {e}",
            path.display()
        )),
    }
}

/// Where an existing chained log left off: the next `seq` and the last hash, read through
/// the log's open handle.
fn chain_tail(mut file: &File) -> (u64, String) {
    use std::io::Read;
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return (0, String::new());
    };
    let value: Value = serde_json::from_str(last).unwrap_or(Value::Null);
    match (value["seq"].as_u64(), value["hash"].as_str()) {
        (Some(seq), Some(hash)) => (seq + 1, hash.to_string()),
        _ => (0, String::new()),
    }
}

/// Whether an argument named `key` holds a secret.
fn secret_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "passphrase",
        "secret",
        "token",
        "credential",
        "private_key",
        "api_key",
        "apikey",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// The arguments as the log shows them: standard input, environment values and
/// secret-named values replaced, long strings hashed.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, v)| {
                    let shown = match key.as_str() {
                        "stdin" => json!(format!("[redacted: {} bytes]", byte_len(v))),
                        "env" => match v {
                            Value::Object(vars) => Value::Object(
                                vars.keys()
                                    .map(|k| (k.clone(), json!("[redacted]")))
                                    .collect(),
                            ),
                            _ => json!("[redacted]"),
                        },
                        k if secret_name(k) => json!("[redacted]"),
                        _ => redact(v),
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if s.len() > LARGE_VALUE => json!(format!(
            "[sha256:{} {} bytes]",
            hex::encode(Sha256::digest(s.as_bytes())),
            s.len()
        )),
        other => other.clone(),
    }
}

fn byte_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Null => 0,
        other => other.to_string().len(),
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_large_values_are_redacted() {
        let args = json!({
            "command": "ls",
            "stdin": "the-stdin-secret",
            "env": {"API": "the-env-secret"},
            "password": "pw-secret",
            "nested": {"db_token": "tok-secret", "list": ["x".repeat(300)]},
            "timeout": 5
        });
        let shown = redact(&args).to_string();
        for secret in [
            "the-stdin-secret",
            "the-env-secret",
            "pw-secret",
            "tok-secret",
            &"x".repeat(300),
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("\"command\":\"ls\"") && shown.contains("\"API\""),
            "{shown}"
        );
        assert!(
            shown.contains("[sha256:") && shown.contains("300 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn a_new_session_records_its_host_key_and_false_flags_are_left_out() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: Settings,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let settings = Cli::parse_from(["mcpssh", "--audit-log", path.to_str().unwrap()]).settings;
        let log = AuditLog::from_settings(&settings).unwrap().unwrap();
        for (recorded, fingerprint) in [(true, "SHA256:new"), (false, "SHA256:known")] {
            log.write(Entry {
                client: "c".into(),
                tool: "ssh_connect".into(),
                arguments: json!({"host": "web"}),
                record: Default::default(),
                outcome: "success",
                result: json!({"host_key_fingerprint": fingerprint,
                    "new_host_key_recorded": recorded, "timed_out": false}),
                duration_ms: 1,
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["host_key_fingerprint"], "SHA256:new");
        assert_eq!(lines[0]["new_host_key_recorded"], true);
        assert_eq!(lines[1]["host_key_fingerprint"], "SHA256:known");
        assert!(lines[1].get("new_host_key_recorded").is_none(), "{text}");
        assert!(lines[0].get("timed_out").is_none(), "{text}");
    }

    #[test]
    fn the_time_is_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
