//! Host key verification against a known_hosts file, under the configured policy.

use std::path::Path;

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

/// Verifies `key` for `host:port` against `file` under `policy`, recording a new host's
/// key when the policy allows it. A refused key is a `HostError::HostKey` whose message
/// names the fingerprints and the file (and line) to fix.
pub fn verify(
    policy: HostKeyPolicy,
    file: &Path,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> HostResult<Verdict> {
    let offered = fingerprint(key);
    let pattern = host_pattern(host, port);
    if policy == HostKeyPolicy::No {
        tracing::warn!(
            host = %pattern, fingerprint = %offered,
            "host key NOT verified (MCP_SSH_STRICT_HOST_KEY_CHECKING=no): the connection may be intercepted"
        );
        return Ok(Verdict::Unchecked);
    }
    let recorded =
        russh::keys::known_hosts::known_host_keys_path(host, port, file).map_err(|e| {
            HostError::HostKey(format!(
                "cannot read known_hosts file {}: {e}",
                file.display()
            ))
        })?;
    if recorded.iter().any(|(_, k)| k.key_data() == key.key_data()) {
        return Ok(Verdict::Known);
    }
    if let Some((line, old)) = recorded.first() {
        return Err(HostError::HostKey(format!(
            "HOST KEY CHANGED for {pattern}: the server offered {} {offered}, but {}:{line} records {} {}. \
             This may be an attack (or the host was reinstalled). If you are sure the change is legitimate, \
             remove line {line} from {} (`ssh-keygen -R '{pattern}' -f {}`) and connect again.",
            key.algorithm(),
            file.display(),
            old.algorithm(),
            fingerprint(old),
            file.display(),
            file.display(),
        )));
    }
    match policy {
        HostKeyPolicy::Yes => Err(HostError::HostKey(format!(
            "the host key of {pattern} ({} {offered}) is not in {} and strict host key checking is on. \
             Verify the fingerprint, then add the key (`ssh-keyscan -p {port} {host} >> {}`) or set \
             MCP_SSH_STRICT_HOST_KEY_CHECKING=accept-new.",
            key.algorithm(),
            file.display(),
            file.display(),
        ))),
        _ => {
            record(file, &pattern, key).map_err(|e| {
                HostError::HostKey(format!(
                    "cannot record the host key of {pattern} in {}: {e}",
                    file.display()
                ))
            })?;
            tracing::info!(host = %pattern, fingerprint = %offered, file = %file.display(), "new host key recorded");
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

    #[test]
    fn accept_new_records_then_knows_then_refuses_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k1 = key();
        let policy = HostKeyPolicy::AcceptNew;
        assert_eq!(
            verify(policy, &file, "h", 2222, &k1).unwrap(),
            Verdict::Recorded
        );
        assert_eq!(
            verify(policy, &file, "h", 2222, &k1).unwrap(),
            Verdict::Known
        );
        let k2 = key();
        let err = verify(policy, &file, "h", 2222, &k2).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&fingerprint(&k1)) && msg.contains(&fingerprint(&k2)),
            "{msg}"
        );
        assert!(msg.contains(":1"), "names the line: {msg}");
    }

    #[test]
    fn strict_refuses_unknown_hosts_and_no_accepts_anything() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let k = key();
        assert!(matches!(
            verify(HostKeyPolicy::Yes, &file, "h", 22, &k),
            Err(HostError::HostKey(_))
        ));
        assert!(!file.exists(), "strict mode must not record anything");
        assert_eq!(
            verify(HostKeyPolicy::No, &file, "h", 22, &k).unwrap(),
            Verdict::Unchecked
        );
    }
}
