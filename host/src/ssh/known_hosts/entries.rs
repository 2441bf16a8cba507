//! Reading known_hosts text as OpenSSH does: one entry per line, an optional marker
//! (`@revoked`, `@cert-authority`), a comma-separated host field of plain names,
//! wildcards (`*`, `?`), negations (`!pattern`) and hashed names (`|1|salt|hash`), then
//! the key. Names are compared lowercased (OpenSSH lowercases a host name before
//! matching or hashing it). Lines that cannot be read are skipped; nothing here panics on
//! any input.

use std::path::Path;

use base64::Engine;
use hmac::{KeyInit, Mac};
use russh::keys::PublicKey;

/// What a line says about its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// No marker: the host's key.
    HostKey,
    /// `@revoked`: the key must never be accepted for the host.
    Revoked,
    /// `@cert-authority`: a certificate authority trusted to sign the host's keys.
    CertAuthority,
}

/// One entry that applies to the host looked up.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    pub marker: Marker,
    pub key: PublicKey,
}

/// The fields of one line, before its key is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields<'a> {
    marker: Marker,
    hosts: &'a str,
    algorithm: &'a str,
    key: &'a str,
}

/// Splits a line into its fields; `None` for blanks, comments, unknown markers and lines
/// missing a field.
fn fields(line: &str) -> Option<Fields<'_>> {
    let mut words = line.split_whitespace();
    let first = words.next().filter(|w| !w.starts_with('#'))?;
    let (marker, hosts) = match first {
        "@revoked" => (Marker::Revoked, words.next()?),
        "@cert-authority" => (Marker::CertAuthority, words.next()?),
        marked if marked.starts_with('@') => return None,
        hosts => (Marker::HostKey, hosts),
    };
    Some(Fields {
        marker,
        hosts,
        algorithm: words.next()?,
        key: words.next()?,
    })
}

/// The entries of `text` whose host field matches `name` (a host name or `[host]:port`,
/// lowercased). An unreadable key is skipped with a warning naming `origin` and the line.
pub fn matching(text: &str, name: &str, origin: &Path) -> Vec<Entry> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let Some(f) = fields(line).filter(|f| hosts_match(f.hosts, name)) else {
            continue;
        };
        match PublicKey::from_openssh(&format!("{} {}", f.algorithm, f.key)) {
            Ok(key) => found.push(Entry {
                line: index + 1,
                marker: f.marker,
                key,
            }),
            Err(e) => {
                tracing::warn!(file = %origin.display(), line = index + 1, "unreadable known_hosts entry: {e}")
            }
        }
    }
    found
}

/// Whether a comma-separated host field matches `name` (already lowercased): some
/// pattern matches and no negated one does.
pub fn hosts_match(field: &str, name: &str) -> bool {
    crate::pattern::list_matches(field.split(','), |pattern| {
        match pattern.strip_prefix("|1|") {
            Some(hashed) => hashed_match(hashed, name),
            None => crate::pattern::glob(pattern, name),
        }
    })
}

/// `HMAC-SHA1(salt, name)`.
fn name_hash(salt: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(salt).ok()?;
    mac.update(name.as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

/// Whether `salt|hash` (the part after `|1|`, base64) is the hash of `name`.
fn hashed_match(hashed: &str, name: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    name_hash(&salt, name).is_some_and(|h| h == hash)
}

/// `name` hashed as `ssh-keygen -H` and `HashKnownHosts yes` write it:
/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
pub fn hashed_name(name: &str, salt: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hash = name_hash(salt, name).unwrap_or_default();
    format!("|1|{}|{}", b64.encode(salt), b64.encode(hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_markers_comments_and_short_lines() {
        let plain = fields("  h1,h2 ssh-ed25519 AAAA comment").unwrap();
        assert_eq!(
            (plain.marker, plain.hosts, plain.algorithm, plain.key),
            (Marker::HostKey, "h1,h2", "ssh-ed25519", "AAAA")
        );
        assert_eq!(
            fields("@cert-authority *.x ssh-ed25519 AAAA")
                .unwrap()
                .marker,
            Marker::CertAuthority
        );
        assert_eq!(
            fields("@revoked h ssh-rsa AAAA").unwrap().marker,
            Marker::Revoked
        );
        for skipped in [
            "",
            "   ",
            "# h ssh-ed25519 AAAA",
            "@other h k AAAA",
            "h ssh-ed25519",
            "@revoked h k",
        ] {
            assert_eq!(fields(skipped), None, "{skipped:?}");
        }
    }

    #[test]
    fn hashed_names_round_trip_and_differ_by_salt() {
        let entry = hashed_name("[h]:2222", &[1; 20]);
        assert!(hosts_match(&entry, "[h]:2222"));
        assert!(!hosts_match(&entry, "[h]:2223"));
        assert_ne!(entry, hashed_name("[h]:2222", &[2; 20]));
    }

    #[test]
    fn patterns_are_case_insensitive_and_negations_win() {
        assert!(hosts_match("Web.Example.COM", "web.example.com"));
        assert!(hosts_match(
            "*.example.com,!bad.example.com",
            "a.example.com"
        ));
        assert!(!hosts_match(
            "*.example.com,!bad.example.com",
            "bad.example.com"
        ));
        assert!(!hosts_match("|1|garbage", "h"));
        assert!(!hosts_match("|1|!!!|???", "h"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Pieces of real known_hosts lines, so that generated text often parses far.
        fn token() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("@revoked".to_string()),
                Just("@cert-authority".to_string()),
                Just("|1|".to_string()),
                Just("ssh-ed25519".to_string()),
                Just("AAAAC3NzaC1lZDI1NTE5AAAAI".to_string()),
                Just("[h]:22".to_string()),
                Just(",".to_string()),
                Just("!".to_string()),
                Just("*".to_string()),
                Just("|".to_string()),
                Just(" ".to_string()),
                Just("\n".to_string()),
                Just("#".to_string()),
                any::<String>(),
            ]
        }

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in any::<String>(), name in any::<String>()) {
                let _ = matching(&text, &name, Path::new("fuzz"));
                let _ = hosts_match(&text, &name);
            }

            #[test]
            fn near_miss_lines_never_panic(
                tokens in proptest::collection::vec(token(), 0..24),
                name in prop_oneof![Just("h".to_string()), Just("[h]:22".to_string()), any::<String>()],
            ) {
                let text = tokens.concat();
                let _ = matching(&text, &name, Path::new("fuzz"));
                for line in text.lines() {
                    if let Some(f) = fields(line) {
                        let _ = hosts_match(f.hosts, &name);
                    }
                }
            }

            #[test]
            fn hashed_names_always_match_themselves(name in any::<String>(), salt in any::<Vec<u8>>()) {
                prop_assert!(hosts_match(&hashed_name(&name, &salt), &name));
            }
        }
    }
}
