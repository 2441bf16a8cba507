//! `mcpssh audit verify FILE`: checks a chained audit log. Every line's hash must match
//! its text (so an edited line is found), its `prev` must be the previous line's hash and
//! its `seq` one more than the previous line's (so a removed, inserted or moved line is
//! found). The first line of a rotated file continues a chain that started earlier; the
//! report says where it starts. Without the HMAC key anyone who can write the file can
//! rewrite the whole chain from an edited line on; with the key only its holder can.
//! Removing lines at the end is not detectable from the file alone: keep the last hash
//! (printed by this command) somewhere else to check it later.

use super::audit::{HASH_FIELD, line_hash};

/// What a successful verification found.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub lines: u64,
    pub first_seq: u64,
    pub last_hash: String,
}

/// Verifies the chained log `text`; the error names the first bad line (1-based).
pub fn verify(text: &str, key: Option<&[u8]>) -> Result<Verified, String> {
    let mut previous: Option<(u64, String)> = None;
    let mut first_seq = 0;
    let mut lines = 0;
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        if line.trim().is_empty() {
            return Err(format!("line {n}: empty line"));
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {n}: not JSON: {e}"))?;
        let (Some(seq), Some(prev), Some(hash)) = (
            value["seq"].as_u64(),
            value["prev"].as_str(),
            value["hash"].as_str(),
        ) else {
            return Err(format!(
                "line {n}: not a chained line (no seq, prev and hash; was the log written with --audit-chain?)"
            ));
        };
        let suffix = format!("{HASH_FIELD}{hash}\"}}");
        let Some(body) = line.strip_suffix(&suffix) else {
            return Err(format!("line {n}: the hash is not the line's last field"));
        };
        let body = format!("{body}}}");
        if line_hash(&body, key) != hash {
            return Err(format!(
                "line {n} (seq {seq}): its hash does not match its text: the line was edited{}",
                if key.is_some() {
                    ""
                } else {
                    " (or the log was written with an HMAC key: pass --key-file)"
                }
            ));
        }
        match &previous {
            None => {
                if seq == 0 && !prev.is_empty() {
                    return Err(format!("line {n}: seq 0 with a previous hash"));
                }
                first_seq = seq;
            }
            Some((last_seq, last_hash)) => {
                if seq != last_seq + 1 {
                    return Err(format!(
                        "line {n}: seq {seq} follows seq {last_seq}: a line was removed, inserted or moved"
                    ));
                }
                if prev != last_hash {
                    return Err(format!(
                        "line {n} (seq {seq}): it does not continue the previous line's hash: a line was replaced or moved"
                    ));
                }
            }
        }
        previous = Some((seq, hash.to_string()));
        lines += 1;
    }
    let Some((_, last_hash)) = previous else {
        return Err("the log is empty".into());
    };
    Ok(Verified {
        lines,
        first_seq,
        last_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::audit::{AuditLog, Entry};
    use serde_json::json;

    fn write_log(dir: &std::path::Path, key: Option<&str>, calls: usize) -> std::path::PathBuf {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            settings: crate::config::Settings,
        }
        let path = dir.join("audit.log");
        let mut args = vec![
            "mcpssh".to_string(),
            "--audit-log".into(),
            path.display().to_string(),
            "--audit-chain".into(),
        ];
        if let Some(key) = key {
            let key_path = dir.join("key");
            std::fs::write(&key_path, key).unwrap();
            let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
            std::fs::set_permissions(&key_path, private).unwrap();
            args.extend(["--audit-key-file".into(), key_path.display().to_string()]);
        }
        let settings = Cli::parse_from(args).settings;
        let log = AuditLog::from_settings(&settings).unwrap().unwrap();
        for i in 0..calls {
            log.write(Entry {
                client: "test".into(),
                tool: "ssh_execute".into(),
                arguments: json!({"command": format!("echo {i}")}),
                record: Default::default(),
                outcome: "success",
                result: json!({"exit_code": 0}),
                duration_ms: 1,
            });
        }
        path
    }

    #[test]
    fn an_intact_chain_verifies_and_every_tampering_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path(), None, 4);
        let text = std::fs::read_to_string(&path).unwrap();
        let ok = verify(&text, None).unwrap();
        assert_eq!((ok.lines, ok.first_seq), (4, 0));
        let lines: Vec<&str> = text.lines().collect();
        let join = |l: Vec<&str>| l.join("\n") + "\n";
        // Edited.
        let edited = text.replacen("echo 1", "echo X", 1);
        assert!(verify(&edited, None).unwrap_err().contains("edited"));
        // Removed.
        let removed = join(vec![lines[0], lines[2], lines[3]]);
        assert!(verify(&removed, None).unwrap_err().contains("line 2"));
        // Reordered.
        let moved = join(vec![lines[0], lines[2], lines[1], lines[3]]);
        assert!(verify(&moved, None).is_err());
        // The last line edited: its own hash is wrong.
        let last = text.replacen("echo 3", "echo Y", 1);
        assert!(verify(&last, None).unwrap_err().contains("line 4"));
    }

    #[test]
    fn with_a_key_the_chain_needs_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path(), Some("0123456789abcdef0123"), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(verify(&text, Some(b"0123456789abcdef0123")).is_ok());
        assert!(verify(&text, None).is_err());
        assert!(verify(&text, Some(b"another key of 16+ bytes")).is_err());
    }

    #[test]
    fn a_reopened_log_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), None, 2);
        let path = write_log(dir.path(), None, 2);
        let ok = verify(&std::fs::read_to_string(path).unwrap(), None).unwrap();
        assert_eq!(ok.lines, 4);
    }
}
