//! The on-disk cache of compiled machine code (`<dir>/<name>.cwasm`). Cached code is
//! loaded as native code, so every entry carries an HMAC-SHA256 tag under a secret
//! made once per installation (`<dir>/cache.key`, readable by the user only). An entry
//! whose tag does not verify (tampered with, copied from another entry or another
//! installation) is ignored: the component is compiled again and the entry rewritten.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::trusted_file;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The file holding the installation's secret.
const KEY_FILE: &str = "cache.key";
/// Bytes of the secret.
const KEY_LEN: usize = 32;
/// Bytes of an entry's tag, stored before the code.
const TAG_LEN: usize = 32;
/// The largest entry read back (compiled components are a few MiB).
const MAX_ENTRY_BYTES: u64 = 512 * 1024 * 1024;
/// Changes whenever the entry layout does, so older entries are never read.
const FORMAT: &str = "hmac-sha256-v1";

/// An open, keyed cache directory.
pub struct CodeCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl CodeCache {
    /// Opens (creating if needed) the cache in `dir`. When the directory or its key
    /// cannot be used, says why in the log and returns `None`: components are then
    /// compiled at every start.
    pub fn open(dir: &Path) -> Option<CodeCache> {
        match Self::try_open(dir) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "compiled-code cache disabled, components are compiled at every start: {e:#}"
                );
                None
            }
        }
    }

    fn try_open(dir: &Path) -> Result<CodeCache> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(CodeCache {
            dir: dir.to_path_buf(),
            key: load_or_create_key(dir)?,
        })
    }

    /// The entry name of `bytes` compiled by `engine`: it covers mcpssh's version, the
    /// engine's settings and the component's bytes.
    pub fn entry_name(engine: &Engine, bytes: &[u8]) -> String {
        use std::hash::{Hash, Hasher};
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut sha = Sha256::new();
        sha.update(FORMAT.as_bytes());
        sha.update(env!("CARGO_PKG_VERSION").as_bytes());
        sha.update(engine_hash.finish().to_le_bytes());
        sha.update(bytes);
        hex::encode(&sha.finalize()[..16])
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.cwasm"))
    }

    /// The tag of `code` stored as entry `name`: an entry cannot be moved to another name.
    fn mac(&self, name: &str, code: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(code);
        mac
    }

    /// The code stored as `name`, if there is an entry and its tag verifies. A refused
    /// entry is logged.
    pub fn load(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.path(name);
        let refuse = |why: String| {
            tracing::warn!(path = %path.display(), "ignoring cached code, compiling again: {why}");
            None
        };
        let mut entry = match trusted_file::read_trusted(&path, "cached code", MAX_ENTRY_BYTES) {
            Ok(Some(entry)) => entry,
            Ok(None) => return None,
            Err(e) => return refuse(format!("{e:#}")),
        };
        if entry.len() < TAG_LEN {
            return refuse("the entry is truncated".into());
        }
        let code = entry.split_off(TAG_LEN);
        if self.mac(name, &code).verify_slice(&entry).is_err() {
            return refuse(
                "its authentication tag does not match (it was changed after mcpssh wrote it)"
                    .into(),
            );
        }
        Some(code)
    }

    /// Stores `code` as `name`, tagged; a failure is logged and otherwise ignored.
    pub fn store(&self, name: &str, code: &[u8]) {
        let tag = self.mac(name, code).finalize().into_bytes();
        let written = write_atomically(&self.dir, &self.path(name), 0o644, &[&tag, code]);
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), "cannot write the compiled-code cache: {e:#}");
        }
    }
}

/// Reads the installation's secret, creating it first if there is none. Two processes
/// starting at once agree on one secret: it is published with a hard link, which never
/// replaces an existing file.
fn load_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN]> {
    let path = dir.join(KEY_FILE);
    let what = "the compiled-code cache key";
    let bytes = match trusted_file::read_secret(&path, what, KEY_LEN as u64)? {
        Some(bytes) => bytes,
        None => {
            let fresh: [u8; KEY_LEN] = rand::random();
            let tmp = temp_path(dir);
            let published =
                write_new(&tmp, 0o600, &[&fresh]).and_then(|()| {
                    match std::fs::hard_link(&tmp, &path) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e.into()),
                        _ => Ok(()),
                    }
                });
            let _ = std::fs::remove_file(&tmp);
            published.with_context(|| format!("cannot create {}", path.display()))?;
            trusted_file::read_secret(&path, what, KEY_LEN as u64)?
                .ok_or_else(|| anyhow!("{} vanished after it was created", path.display()))?
        }
    };
    bytes.try_into().map_err(|b: Vec<u8>| {
        anyhow!(
            "{} holds {} bytes, not {KEY_LEN}; remove it and mcpssh makes a new one",
            path.display(),
            b.len()
        )
    })
}

fn temp_path(dir: &Path) -> PathBuf {
    dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ))
}

/// Creates `path` (which must not exist) with `mode` and writes `parts` to it.
fn write_new(path: &Path, mode: u32, parts: &[&[u8]]) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()?;
    Ok(())
}

/// Writes `parts` to `path` through a temporary file and a rename.
fn write_atomically(dir: &Path, path: &Path, mode: u32, parts: &[&[u8]]) -> Result<()> {
    let tmp = temp_path(dir);
    let written = write_new(&tmp, mode, parts).and_then(|()| Ok(std::fs::rename(&tmp, path)?));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn entries_round_trip_and_tampering_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache::open(dir.path()).unwrap();
        let key_mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert!(cache.load("a").is_none(), "no entry yet");
        cache.store("a", b"code of a");
        cache.store("b", b"code of b");
        assert_eq!(cache.load("a").unwrap(), b"code of a");

        // Another entry copied over it: refused, the tag covers the name.
        std::fs::copy(cache.path("b"), cache.path("a")).unwrap();
        assert!(cache.load("a").is_none());

        // One byte of code changed: refused.
        let mut entry = std::fs::read(cache.path("b")).unwrap();
        *entry.last_mut().unwrap() ^= 1;
        std::fs::write(cache.path("b"), &entry).unwrap();
        assert!(cache.load("b").is_none());

        // Another installation (another key) cannot read, nor forge, this one's entries.
        cache.store("a", b"code of a");
        let other = tempfile::tempdir().unwrap();
        let other = CodeCache::open(other.path()).unwrap();
        std::fs::copy(cache.path("a"), other.path("a")).unwrap();
        assert!(other.load("a").is_none());
        assert_eq!(
            CodeCache::open(dir.path()).unwrap().load("a").unwrap(),
            b"code of a",
            "the key is kept"
        );
    }

    #[test]
    fn a_key_others_can_read_disables_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        drop(CodeCache::open(dir.path()).unwrap());
        let key = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CodeCache::open(dir.path()).is_none());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&key, b"short").unwrap();
        assert!(CodeCache::open(dir.path()).is_none());
    }
}
