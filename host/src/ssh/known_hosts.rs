//! Host key verification against known_hosts files, under the configured policy.
//!
//! Reads OpenSSH's format: plain, wildcard (`*`, `?`, `!negated`) and hashed (`|1|salt|hash`)
//! host patterns, `[host]:port` entries, and the `@revoked` marker (a revoked key is
//! always refused). `@cert-authority` lines are skipped (host certificates are checked
//! by their key). Several files may be given; new keys are recorded in the first.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{KeyInit, Mac};
use russh::keys::{HashAlg, PublicKey};

use crate::config::HostKeyPolicy;
use crate::error::{HostError, HostResult};

/// What verification concluded about an accepted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key was already recorded for this host.
    Known,
    /// The host was new; its key has now been recorded.
    Recorded,
    /// Checking is off (`no`): the key was accepted unverified.
    Unchecked,
}

/// The `SHA256:...` fingerprint of a key, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// How the host is written in known_hosts: `host`, or `[host]:port` off port 22.
fn host_pattern(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// One key recorded for the host, and where.
struct Recorded {
    file: PathBuf,
    line: usize,
    key: PublicKey,
    revoked: bool,
}

/// Whether a comma-separated host field matches `name`.
fn hosts_match(field: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_match(hashed, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if super::ssh_config::glob(negated, name) {
                return false;
            }
        } else {
            matched |= super::ssh_config::glob(pattern, name);
        }
    }
    matched
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// The keys recorded for `name` in `file` (a missing file records nothing).
fn read_file(file: &Path, name: &str) -> HostResult<Vec<Recorded>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(HostError::HostKey(format!(
                "cannot read known_hosts file {}: {e}",
                file.display()
            )));
        }
    };
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next().filter(|f| !f.starts_with('#')) else {
            continue;
        };
        let mut revoked = false;
        if first.starts_with('@') {
            revoked = first == "@revoked";
            if !revoked {
                continue;
            }
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(algorithm), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !hosts_match(first, name) {
            continue;
        }
        match PublicKey::from_openssh(&format!("{algorithm} {blob}")) {
            Ok(key) => found.push(Recorded {
                file: file.to_path_buf(),
                line: i + 1,
                key,
                revoked,
            }),
            Err(e) => {
                tracing::warn!(file = %file.display(), line = i + 1, "unreadable known_hosts entry: {e}")
            }
        }
    }
    Ok(found)
}

/// Verifies `key` for `host:port` against `files` under `policy`, recording a new host's
/// key in the first file when the policy allows it. A refused key is a
/// `HostError::HostKey` whose message names the fingerprints and the file and line to fix.
pub fn verify(
    policy: HostKeyPolicy,
    files: &[PathBuf],
    host: &str,
    port: u16,
    key: &PublicKey,
) -> HostResult<Verdict> {
    let offered = fingerprint(key);
    let pattern = host_pattern(host, port);
    let mut recorded = Vec::new();
    for file in files {
        recorded.extend(read_file(file, &pattern)?);
    }
    if let Some(r) = recorded
        .iter()
        .find(|r| r.revoked && r.key.key_data() == key.key_data())
    {
        return Err(HostError::HostKey(format!(
            "the host key of {pattern} ({offered}) is marked @revoked in {}:{}; refusing to connect",
            r.file.display(),
            r.line
        )));
    }
    if policy == HostKeyPolicy::No {
        tracing::warn!(
            host = %pattern, fingerprint = %offered,
            "host key NOT verified (MCP_SSH_STRICT_HOST_KEY_CHECKING=no): the connection may be intercepted"
        );
        return Ok(Verdict::Unchecked);
    }
    let valid: Vec<&Recorded> = recorded.iter().filter(|r| !r.revoked).collect();
    if valid.iter().any(|r| r.key.key_data() == key.key_data()) {
        return Ok(Verdict::Known);
    }
    if let Some(old) = valid.first() {
        return Err(HostError::HostKey(format!(
            "HOST KEY CHANGED for {pattern}: the server offered {} {offered}, but {}:{} records {} {}. \
             This may be an attack (or the host was reinstalled). If you are sure the change is legitimate, \
             remove line {} from {} (`ssh-keygen -R '{pattern}' -f {}`) and connect again.",
            key.algorithm(),
            old.file.display(),
            old.line,
            old.key.algorithm(),
            fingerprint(&old.key),
            old.line,
            old.file.display(),
            old.file.display(),
        )));
    }
    let Some(first) = files.first() else {
        return Err(HostError::HostKey(
            "no known_hosts file is configured".into(),
        ));
    };
    match policy {
        HostKeyPolicy::Yes => Err(HostError::HostKey(format!(
            "the host key of {pattern} ({} {offered}) is not in {} and strict host key checking is on. \
             Verify the fingerprint, then add the key (`ssh-keyscan -p {port} {host} >> {}`) or set \
             MCP_SSH_STRICT_HOST_KEY_CHECKING=accept-new.",
            key.algorithm(),
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            first.display(),
        ))),
        _ => {
            record(first, &pattern, key).map_err(|e| {
                HostError::HostKey(format!(
                    "cannot record the host key of {pattern} in {}: {e}",
                    first.display()
                ))
            })?;
            tracing::info!(host = %pattern, fingerprint = %offered, file = %first.display(), "new host key recorded");
            Ok(Verdict::Recorded)
        }
    }
}

/// Appends `pattern key` to the known_hosts file, creating it (and its folder) if needed.
fn record(file: &Path, pattern: &str, key: &PublicKey) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file)?;
    let mut line = String::new();
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    let openssh = key.to_openssh().map_err(std::io::Error::other)?;
    line.push_str(&format!("{pattern} {openssh}\n"));
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// A different ed25519 key on every call.
    fn key() -> PublicKey {
        static SEED: AtomicU8 = AtomicU8::new(1);
        let seed = [SEED.fetch_add(1, Ordering::Relaxed); 32];
        PrivateKey::from(Ed25519Keypair::from_seed(&seed))
            .public_key()
            .clone()
    }

    fn files(dir: &tempfile::TempDir) -> Vec<PathBuf> {
        vec![dir.path().join("known_hosts")]
    }

    #[test]
    fn accept_new_records_then_knows_then_refuses_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(&dir);
        let k1 = key();
        let policy = HostKeyPolicy::AcceptNew;
        assert_eq!(
            verify(policy, &files, "h", 2222, &k1).unwrap(),
            Verdict::Recorded
        );
        assert_eq!(
            verify(policy, &files, "h", 2222, &k1).unwrap(),
            Verdict::Known
        );
        let k2 = key();
        let msg = verify(policy, &files, "h", 2222, &k2)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&fingerprint(&k1)) && msg.contains(&fingerprint(&k2)),
            "{msg}"
        );
        assert!(
            msg.contains("known_hosts:1"),
            "names the file and line: {msg}"
        );
    }

    #[test]
    fn strict_refuses_unknown_hosts_and_no_accepts_anything() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(&dir);
        let k = key();
        assert!(matches!(
            verify(HostKeyPolicy::Yes, &files, "h", 22, &k),
            Err(HostError::HostKey(_))
        ));
        assert!(!files[0].exists(), "strict mode must not record anything");
        assert_eq!(
            verify(HostKeyPolicy::No, &files, "h", 22, &k).unwrap(),
            Verdict::Unchecked
        );
    }

    #[test]
    fn reads_hashed_wildcard_negated_and_revoked_entries_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (hashed, wild, revoked) = (key(), key(), key());
        // `ssh-keygen -H` style entry for [h1]:2200, with a known salt.
        let salt = [7u8; 20];
        let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[h1]:2200");
        let b64 = base64::engine::general_purpose::STANDARD;
        let entry = format!(
            "|1|{}|{}",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        std::fs::write(
            &a,
            format!(
                "# comment\n@cert-authority *.x ssh-ed25519 AAAA\n{entry} {}\n",
                hashed.to_openssh().unwrap()
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            format!(
                "*.example.com,!bad.example.com {}\n@revoked rev.example.com {}\n",
                wild.to_openssh().unwrap(),
                revoked.to_openssh().unwrap()
            ),
        )
        .unwrap();
        let files = vec![a, b];
        let strict = HostKeyPolicy::Yes;
        assert_eq!(
            verify(strict, &files, "h1", 2200, &hashed).unwrap(),
            Verdict::Known
        );
        assert_eq!(
            verify(strict, &files, "web.example.com", 22, &wild).unwrap(),
            Verdict::Known
        );
        assert!(
            verify(strict, &files, "bad.example.com", 22, &wild).is_err(),
            "negated"
        );
        let msg = verify(HostKeyPolicy::No, &files, "rev.example.com", 22, &revoked)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("@revoked"), "{msg}");
    }
}
