//! Host key verification against known_hosts files, as OpenSSH reads them, under the
//! configured policy.
//!
//! Both the user's files (`MCP_SSH_KNOWN_HOSTS`, else `UserKnownHostsFile`, else
//! `~/.ssh/known_hosts`) and the system-wide ones (`MCP_SSH_GLOBAL_KNOWN_HOSTS`, else
//! `GlobalKnownHostsFile`, else `/etc/ssh/ssh_known_hosts` and `ssh_known_hosts2`) are
//! read: a key listed for the host in any of them is trusted, a different key listed
//! for it is refused (naming the file and line), and a key marked `@revoked` is always
//! refused. A new host's key is recorded only in the first user file (hashed under
//! `HashKnownHosts yes`); system-wide files are never written. Host names are compared
//! lowercased, and a name that known_hosts would read as a pattern is refused before
//! anything connects or is recorded. A host covered by a `@cert-authority` line is
//! trusted when it presents a valid certificate signed by that authority, and is never
//! recorded as a new host. Lines are parsed by `entries`, certificates checked by
//! `certificate`, new entries written by `record`.

mod certificate;
mod entries;
mod record;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use self::entries::{Entry, Marker};
use crate::config::{HostKeyPolicy, Settings, home_dir};
use crate::error::{HostError, HostResult};
use crate::ssh_config::KnownHostsConfig;

/// What verification concluded about an accepted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The key was already recorded for this host.
    Known,
    /// The host presented a valid certificate signed by a trusted `@cert-authority`.
    Certified,
    /// The host was new; its key has now been recorded.
    Recorded,
    /// Checking is off (`no`): the key was accepted unverified.
    Unchecked,
    /// The host is new and the policy would record its key, but this check was told
    /// not to write anything (see [`verify_without_recording`]).
    WouldRecord,
}

/// The `SHA256:...` fingerprint of a key, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The known_hosts files of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostsFiles {
    /// Read, and new keys recorded in the first.
    pub user: Vec<PathBuf>,
    /// Read only.
    pub global: Vec<PathBuf>,
    /// Record new hosts as `|1|salt|hash` (`HashKnownHosts yes`).
    pub hash_new_entries: bool,
}

/// OpenSSH's default `GlobalKnownHostsFile`.
pub const DEFAULT_GLOBAL_FILES: [&str; 2] =
    ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

impl KnownHostsFiles {
    /// The files for a target: the settings first, then its `~/.ssh/config` entries,
    /// then OpenSSH's defaults.
    pub fn select(settings: &Settings, config: KnownHostsConfig) -> KnownHostsFiles {
        let user = match settings.known_hosts_path() {
            Some(file) => vec![file],
            None if !config.user_files.is_empty() => config.user_files,
            None => vec![home_dir().join(".ssh").join("known_hosts")],
        };
        let global = settings
            .global_known_hosts_paths()
            .or(config.global_files)
            .unwrap_or_else(|| DEFAULT_GLOBAL_FILES.iter().map(PathBuf::from).collect());
        KnownHostsFiles {
            user,
            global,
            hash_new_entries: config.hash_new_entries.unwrap_or(false),
        }
    }

    fn listing(&self) -> String {
        self.user
            .iter()
            .chain(&self.global)
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How the host is written in known_hosts: `host`, or `[host]:port` off port 22, lowercased.
pub fn host_pattern(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// Characters that known_hosts reads as pattern syntax (or as a marker or comment).
const PATTERN_CHARACTERS: [char; 9] = [',', '*', '?', '!', '|', '[', ']', '#', '@'];

/// Refuses a host name that would not be a plain name in known_hosts: one holding
/// pattern characters (`,` separates names, `*` and `?` are wildcards, `!` negates, `|`
/// starts a hashed name, `@` a marker, `#` a comment), whitespace or control
/// characters. Recording such a name could trust the key for other hosts.
pub fn check_host_name(host: &str) -> HostResult<()> {
    if host.is_empty() {
        return Err(HostError::Invalid("the host name is empty".into()));
    }
    let bad = host
        .chars()
        .find(|c| PATTERN_CHARACTERS.contains(c) || c.is_whitespace() || c.is_control());
    match bad {
        None => Ok(()),
        Some(c) => Err(HostError::Invalid(format!(
            "the host name {host:?} contains {c:?}, which a known_hosts file would not read \
             as part of a plain host name (`,` separates names, `*` and `?` are wildcards, `!` \
             negates, `|` starts a hashed name, whitespace ends the field): refusing it, so \
             that no key can be recorded for other hosts. Give a \
             plain host name or IP address (the user goes in `username`), or define an alias \
             in ~/.ssh/config"
        ))),
    }
}

/// Whether a `@cert-authority` line covers `host:port`: then the connection asks the
/// server for its host certificate.
pub fn covered_by_authority(files: &KnownHostsFiles, host: &str, port: u16) -> bool {
    lookup(files, &host_pattern(host, port))
        .map(|found| {
            found
                .iter()
                .any(|f| f.entry.marker == Marker::CertAuthority)
        })
        .unwrap_or(false)
}

/// One entry for the host, and the file it is in.
struct Found {
    file: PathBuf,
    entry: Entry,
}

impl Found {
    fn place(&self) -> String {
        format!("{}:{}", self.file.display(), self.entry.line)
    }
}

/// The entries for `name` in every file. A user file that exists but cannot be read is
/// an error; an unreadable system-wide file is skipped with a warning.
fn lookup(files: &KnownHostsFiles, name: &str) -> HostResult<Vec<Found>> {
    let mut found = Vec::new();
    let user = files.user.iter().map(|f| (f, true));
    let global = files.global.iter().map(|f| (f, false));
    for (file, required) in user.chain(global) {
        let text = match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) if required => {
                return Err(HostError::HostKey(format!(
                    "cannot read known_hosts file {}: {e}",
                    file.display()
                )));
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), "cannot read the system-wide known_hosts file: {e}");
                continue;
            }
        };
        found.extend(
            entries::matching(&text, name, file)
                .into_iter()
                .map(|entry| Found {
                    file: file.clone(),
                    entry,
                }),
        );
    }
    Ok(found)
}

/// Verifies the key (or certificate) `presented` by `host:port` against `files` under
/// `policy`, recording a new host's key in the first user file when the policy allows it.
/// A refused key is a `HostError::HostKey` whose message names the fingerprints and the
/// file and line to fix.
pub fn verify(
    policy: HostKeyPolicy,
    files: &KnownHostsFiles,
    host: &str,
    port: u16,
    presented: &PublicKeyOrCertificate,
) -> HostResult<Verdict> {
    check(policy, files, host, port, presented, true)
}

/// As [`verify`], but a new host's key is never written: where `verify` would record
/// it, this answers [`Verdict::WouldRecord`]. For checking a configuration without
/// changing it (`mcpssh doctor`).
pub fn verify_without_recording(
    policy: HostKeyPolicy,
    files: &KnownHostsFiles,
    host: &str,
    port: u16,
    presented: &PublicKeyOrCertificate,
) -> HostResult<Verdict> {
    check(policy, files, host, port, presented, false)
}

fn check(
    policy: HostKeyPolicy,
    files: &KnownHostsFiles,
    host: &str,
    port: u16,
    presented: &PublicKeyOrCertificate,
    record: bool,
) -> HostResult<Verdict> {
    check_host_name(host)?;
    // `ask` never records by itself: the key goes to the user first (see
    // `ssh::host_key_prompt`), and is recorded under `accept-new` once accepted.
    let record = record && policy != HostKeyPolicy::Ask;
    let host = host.to_ascii_lowercase();
    let pattern = host_pattern(&host, port);
    let key = presented.public_key();
    let cert = presented.certificate();
    let offered = fingerprint(&key);
    let found = lookup(files, &pattern)?;
    let with = |marker: Marker| found.iter().filter(move |f| f.entry.marker == marker);

    let signer = cert.map(|c| c.signature_key());
    if let Some(r) = with(Marker::Revoked).find(|r| {
        r.entry.key.key_data() == key.key_data() || Some(r.entry.key.key_data()) == signer
    }) {
        return Err(HostError::HostKey(format!(
            "the host key of {pattern} ({offered}) or the authority that signed it is marked \
             @revoked in {}; refusing to connect",
            r.place()
        )));
    }
    if policy == HostKeyPolicy::No {
        tracing::warn!(
            host = %pattern, fingerprint = %offered,
            "host key NOT verified (MCP_SSH_STRICT_HOST_KEY_CHECKING=no): the connection may be intercepted"
        );
        return Ok(Verdict::Unchecked);
    }
    if let Some(cert) = cert
        && let Some(ca) =
            with(Marker::CertAuthority).find(|ca| Some(ca.entry.key.key_data()) == signer)
    {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return match certificate::problem(cert, &ca.entry.key, &host, now) {
            None => Ok(Verdict::Certified),
            Some(problem) => Err(HostError::HostKey(format!(
                "the host certificate of {pattern} is signed by the authority trusted in {}, \
                 but {problem}; refusing to connect. Renew or fix the server's HostCertificate.",
                ca.place()
            ))),
        };
    }
    if with(Marker::HostKey).any(|r| r.entry.key.key_data() == key.key_data()) {
        return Ok(Verdict::Known);
    }
    if let Some(old) = with(Marker::HostKey).next() {
        return Err(HostError::HostKey(format!(
            "HOST KEY CHANGED for {pattern}: the server offered {} {offered}, but {} records {} {}. \
             This may be an attack (or the host was reinstalled). If you are sure the change is legitimate, \
             remove line {} from {} (`ssh-keygen -R '{pattern}' -f {}`) and connect again.",
            key.algorithm(),
            old.place(),
            old.entry.key.algorithm(),
            fingerprint(&old.entry.key),
            old.entry.line,
            old.file.display(),
            old.file.display(),
        )));
    }
    if let Some(ca) = with(Marker::CertAuthority).next() {
        let what = match cert {
            Some(_) => "a certificate signed by another authority",
            None => "a plain host key",
        };
        return Err(HostError::HostKey(format!(
            "{pattern} is covered by the @cert-authority entry in {}, but the server offered \
             {what} ({} {offered}), not a certificate signed by that authority; refusing to \
             connect, and nothing was recorded. Check the server's HostCertificate (it must \
             name {host} as a principal), or, if you have verified this key, add it to a \
             known_hosts file yourself (`ssh-keyscan -p {port} {host}`).",
            ca.place(),
            key.algorithm(),
        )));
    }
    let record_in = files.user.first();
    if policy == HostKeyPolicy::Yes {
        return Err(HostError::HostKey(format!(
            "the host key of {pattern} ({} {offered}) is not in {} and strict host key checking is on. \
             Verify the fingerprint, then add the key (`ssh-keyscan -p {port} {host} >> {}`) or set \
             MCP_SSH_STRICT_HOST_KEY_CHECKING=accept-new.",
            key.algorithm(),
            files.listing(),
            record_in.map_or("~/.ssh/known_hosts".into(), |f| f.display().to_string()),
        )));
    }
    let Some(first) = record_in else {
        return Err(HostError::HostKey(format!(
            "the host key of {pattern} ({} {offered}) is not in {} and no user known_hosts \
             file is configured to record it in (UserKnownHostsFile none)",
            key.algorithm(),
            files.listing(),
        )));
    };
    if !record {
        return Ok(Verdict::WouldRecord);
    }
    record::append(first, &pattern, &key, files.hash_new_entries).map_err(|e| {
        HostError::HostKey(format!(
            "cannot record the host key of {pattern} in {}: {e}",
            first.display()
        ))
    })?;
    tracing::info!(host = %pattern, fingerprint = %offered, file = %first.display(), "new host key recorded");
    Ok(Verdict::Recorded)
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

    /// One user file in `dir`, no system-wide file.
    fn files(dir: &tempfile::TempDir) -> KnownHostsFiles {
        KnownHostsFiles {
            user: vec![dir.path().join("known_hosts")],
            global: Vec::new(),
            hash_new_entries: false,
        }
    }

    /// `super::verify` of a plain key.
    fn verify(
        policy: HostKeyPolicy,
        files: &KnownHostsFiles,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> HostResult<Verdict> {
        super::verify(policy, files, host, port, &key.clone().into())
    }

    fn line(host_field: &str, key: &PublicKey) -> String {
        format!("{host_field} {}\n", key.to_openssh().unwrap())
    }

    #[test]
    fn a_check_without_recording_writes_nothing_and_still_refuses_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(&dir);
        let k1 = key();
        let policy = HostKeyPolicy::AcceptNew;
        let dry = |k: &PublicKey| {
            super::verify_without_recording(policy, &files, "h", 2222, &k.clone().into())
        };
        assert_eq!(dry(&k1).unwrap(), Verdict::WouldRecord);
        assert!(!files.user[0].exists(), "nothing recorded");
        verify(policy, &files, "h", 2222, &k1).unwrap();
        assert_eq!(dry(&k1).unwrap(), Verdict::Known);
        assert!(
            dry(&key())
                .unwrap_err()
                .to_string()
                .contains("HOST KEY CHANGED")
        );
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
        assert!(
            !files.user[0].exists(),
            "strict mode must not record anything"
        );
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
        let entry = entries::hashed_name("[h1]:2200", &[7; 20]);
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
        let files = KnownHostsFiles {
            user: vec![a],
            global: vec![b],
            hash_new_entries: false,
        };
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

    #[test]
    fn a_key_in_the_system_wide_file_is_trusted_and_never_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("ssh_known_hosts");
        let (listed, other) = (key(), key());
        std::fs::write(&global, format!("# system\n{}", line("[h]:2222", &listed))).unwrap();
        let files = KnownHostsFiles {
            global: vec![global.clone()],
            ..files(&dir)
        };
        let policy = HostKeyPolicy::AcceptNew;
        assert_eq!(
            verify(policy, &files, "h", 2222, &listed).unwrap(),
            Verdict::Known
        );
        assert!(!files.user[0].exists(), "nothing recorded in the user file");
        let msg = verify(policy, &files, "h", 2222, &other)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("CHANGED") && msg.contains(&format!("{}:2", global.display())),
            "a mismatch with the system-wide file names it and the line: {msg}"
        );
        assert!(!files.user[0].exists(), "a refused key is not recorded");
    }

    #[test]
    fn host_names_match_case_insensitively_even_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(&dir);
        let (k, other) = (key(), key());
        let hashed = entries::hashed_name("[web.example.com]:2222", &[3; 20]);
        std::fs::write(&files.user[0], line(&hashed, &k)).unwrap();
        let strict = HostKeyPolicy::Yes;
        assert_eq!(
            verify(strict, &files, "WEB.Example.com", 2222, &k).unwrap(),
            Verdict::Known
        );
        assert_eq!(
            verify(
                HostKeyPolicy::AcceptNew,
                &files,
                "NEW.example.com",
                22,
                &other
            )
            .unwrap(),
            Verdict::Recorded
        );
        let text = std::fs::read_to_string(&files.user[0]).unwrap();
        assert!(
            text.lines().last().unwrap().starts_with("new.example.com "),
            "recorded lowercased, as OpenSSH does: {text}"
        );
    }

    #[test]
    fn hash_known_hosts_records_hashed_entries_that_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let files = KnownHostsFiles {
            hash_new_entries: true,
            ..files(&dir)
        };
        let k = key();
        let policy = HostKeyPolicy::AcceptNew;
        assert_eq!(
            verify(policy, &files, "Secret.example.com", 2222, &k).unwrap(),
            Verdict::Recorded
        );
        let text = std::fs::read_to_string(&files.user[0]).unwrap();
        assert!(
            text.starts_with("|1|") && !text.to_lowercase().contains("secret"),
            "{text}"
        );
        assert_eq!(
            verify(HostKeyPolicy::Yes, &files, "secret.example.com", 2222, &k).unwrap(),
            Verdict::Known
        );
    }

    #[test]
    fn a_host_name_that_is_a_pattern_is_never_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let files = files(&dir);
        let attacker = key();
        for name in [
            "evil,*", "*", "h?st", "!x", "|1|a|b", "a b", "a\tb", "x\n*", "u@h", "[h]", "#h", "",
        ] {
            let err = verify(HostKeyPolicy::AcceptNew, &files, name, 22, &attacker).unwrap_err();
            assert!(matches!(err, HostError::Invalid(_)), "{name:?}: {err}");
            assert!(!files.user[0].exists(), "{name:?} was recorded");
        }
        assert!(matches!(
            verify(
                HostKeyPolicy::Yes,
                &files,
                "victim.example.com",
                22,
                &attacker
            ),
            Err(HostError::HostKey(_))
        ));
        for fine in [
            "host",
            "10.0.0.1",
            "::1",
            "fe80::1%eth0",
            "my-host.example.com",
        ] {
            assert!(check_host_name(fine).is_ok(), "{fine}");
        }
    }

    mod cert_authority {
        use super::*;
        use russh::keys::ssh_key::certificate::{Builder, CertType};

        fn keypair(seed: u8) -> PrivateKey {
            PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
        }

        /// A host certificate for `principal`, valid now, signed by `ca`.
        fn host_certificate(
            ca: &PrivateKey,
            host_key: &PublicKey,
            principal: &str,
        ) -> PublicKeyOrCertificate {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let mut builder = Builder::new(
                vec![1; 32],
                host_key.key_data().clone(),
                now - 60,
                now + 3600,
            )
            .unwrap();
            builder.cert_type(CertType::Host).unwrap();
            builder.valid_principal(principal).unwrap();
            builder.sign(ca).unwrap().into()
        }

        fn covered(dir: &tempfile::TempDir, ca: &PrivateKey) -> KnownHostsFiles {
            let files = files(dir);
            std::fs::write(
                &files.user[0],
                format!(
                    "@cert-authority *.example.com {}\n",
                    ca.public_key().to_openssh().unwrap()
                ),
            )
            .unwrap();
            files
        }

        #[test]
        fn a_covered_host_is_never_accepted_as_new() {
            let dir = tempfile::tempdir().unwrap();
            let files = covered(&dir, &keypair(40));
            let before = std::fs::read_to_string(&files.user[0]).unwrap();
            let plain = key();
            let msg = verify(
                HostKeyPolicy::AcceptNew,
                &files,
                "web.example.com",
                22,
                &plain,
            )
            .unwrap_err()
            .to_string();
            assert!(
                msg.contains("@cert-authority") && msg.contains("known_hosts:1"),
                "{msg}"
            );
            let rogue = host_certificate(&keypair(41), &plain, "web.example.com");
            let msg = super::super::verify(
                HostKeyPolicy::AcceptNew,
                &files,
                "web.example.com",
                22,
                &rogue,
            )
            .unwrap_err()
            .to_string();
            assert!(msg.contains("another authority"), "{msg}");
            assert_eq!(
                std::fs::read_to_string(&files.user[0]).unwrap(),
                before,
                "nothing recorded"
            );
            assert!(covered_by_authority(&files, "WEB.example.com", 22));
            assert!(!covered_by_authority(&files, "elsewhere", 22));
        }

        #[test]
        fn a_valid_certificate_is_trusted_and_a_wrong_one_refused() {
            let dir = tempfile::tempdir().unwrap();
            let ca = keypair(42);
            let files = covered(&dir, &ca);
            let host_key = key();
            let good = host_certificate(&ca, &host_key, "web.example.com");
            assert_eq!(
                super::super::verify(HostKeyPolicy::Yes, &files, "Web.Example.com", 22, &good)
                    .unwrap(),
                Verdict::Certified
            );
            let elsewhere = host_certificate(&ca, &host_key, "db.example.com");
            let msg = super::super::verify(
                HostKeyPolicy::AcceptNew,
                &files,
                "web.example.com",
                22,
                &elsewhere,
            )
            .unwrap_err()
            .to_string();
            assert!(msg.contains("issued for db.example.com"), "{msg}");
            std::fs::write(
                dir.path().join("known_hosts"),
                format!(
                    "{}@revoked * {}\n",
                    std::fs::read_to_string(&files.user[0]).unwrap(),
                    ca.public_key().to_openssh().unwrap()
                ),
            )
            .unwrap();
            let msg =
                super::super::verify(HostKeyPolicy::Yes, &files, "web.example.com", 22, &good)
                    .unwrap_err()
                    .to_string();
            assert!(msg.contains("@revoked"), "a revoked authority: {msg}");
        }
    }
}
