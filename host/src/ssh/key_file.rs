//! Reading the user's key material (private keys, their `.pub` halves and OpenSSH
//! certificates) safely: the path may come from a model (`key_filename`), so it may name
//! a device, a FIFO or a huge file. Only regular files of at most [`MAX_KEY_FILE_BYTES`]
//! are read, off the async threads, and a FIFO is opened without blocking so it is
//! refused instead of waiting for a writer forever. As in OpenSSH, a private key of the
//! user's that others may read is not used until it is made private.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use russh::keys::{Certificate, PrivateKey, PublicKey};

use crate::config::Secret;
use crate::error::{HostError, HostResult};

/// The largest key file read. An OpenSSH private key is a few KiB (a 16384-bit RSA key,
/// the largest OpenSSH makes, is about 12 KiB); a certificate with many principals
/// stays well below this too.
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Which half of a key a file holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Private,
    Public,
}

/// Reads `path` if it is a regular file of at most [`MAX_KEY_FILE_BYTES`] (a private key:
/// not open to others, see [`check_private`]). Blocking: call it through
/// [`read_off_runtime`].
fn read_small_regular_file(path: &Path, half: Half) -> HostResult<String> {
    let shown = path.display();
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer; it is then
    // refused below as not a regular file. Regular files ignore the flag.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| HostError::from_io(&format!("cannot read the key file {shown}"), &e))?;
    let meta = file
        .metadata()
        .map_err(|e| HostError::from_io(&format!("cannot read the key file {shown}"), &e))?;
    if !meta.is_file() {
        return Err(HostError::Invalid(format!(
            "the key file {shown} is not a regular file (a directory, device, FIFO or socket); \
             give the path of an OpenSSH private key"
        )));
    }
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(HostError::Invalid(format!(
            "the key file {shown} is {} bytes, too large to be a private key (at most {} bytes); \
             give the path of an OpenSSH private key",
            meta.len(),
            MAX_KEY_FILE_BYTES
        )));
    }
    if half == Half::Private {
        check_private(&meta, path)?;
    }
    let mut text = String::new();
    // `take` bounds the read even if the file grows after the size check.
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => HostError::Invalid(format!(
                "the key file {shown} is not text; give the path of an OpenSSH private key"
            )),
            _ => HostError::from_io(&format!("cannot read the key file {shown}"), &e),
        })?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(HostError::Invalid(format!(
            "the key file {shown} grew past {MAX_KEY_FILE_BYTES} bytes while being read"
        )));
    }
    Ok(text)
}

/// Words every "others can read this key" refusal carries (OpenSSH's own).
const UNPROTECTED: &str = "UNPROTECTED PRIVATE KEY FILE";

/// Why the private key at `path` is not to be used because others can read it, if so: a
/// login then goes on with the other identities, as OpenSSH's does. (Loading the key
/// checks the same again, on the file it reads.)
pub async fn unprotected(path: &Path) -> Option<HostError> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // The load's own order: what is not a regular file of a key's size is refused
        // by the load, as such, before its permissions matter.
        let meta = std::fs::metadata(&owned)
            .ok()
            .filter(|m| m.is_file() && m.len() <= MAX_KEY_FILE_BYTES)?;
        check_private(&meta, &owned).err()
    })
    .await
    .ok()
    .flatten()
}

/// OpenSSH's rule for private keys: one the user owns must be readable and writable by
/// the user alone ("UNPROTECTED PRIVATE KEY FILE"), or it is not used. A key that
/// others can read is no longer secret; refusing it makes the user notice.
fn check_private(meta: &std::fs::Metadata, path: &Path) -> HostResult<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.mode() & 0o777;
    if meta.uid() == crate::trusted_file::current_uid() && mode & 0o077 != 0 {
        let shown = path.display();
        return Err(HostError::Auth(format!(
            "the key file {shown} has permissions {mode:04o}, which let other users read it: \
             OpenSSH ignores such a key (\"{UNPROTECTED}\"), and so does mcpssh; \
             run `chmod 600 {shown}`"
        )));
    }
    Ok(())
}

/// Runs [`read_small_regular_file`] on a blocking thread, so a slow file system never
/// stalls the async threads; the caller's connect timeout bounds the wait.
async fn read_off_runtime(path: &Path, half: Half) -> HostResult<String> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_small_regular_file(&owned, half))
        .await
        .map_err(|e| HostError::Other(format!("reading the key file failed: {e}")))?
}

/// Loads a private key, with a message that says what to do when it cannot be opened.
/// `passphrase` is given only for keys the user configured (see `auth`).
pub async fn load_private_key(path: &Path, passphrase: Option<&Secret>) -> HostResult<PrivateKey> {
    let text = read_off_runtime(path, Half::Private).await?;
    let shown = path.display();
    russh::keys::decode_secret_key(&text, passphrase.map(|s| s.0.as_str())).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => HostError::Auth(format!(
            "the key {shown} is encrypted: set MCP_SSH_KEY_PASSPHRASE to its passphrase \
                 (it opens only key files the user configured: MCP_SSH_KEY_FILENAME, IdentityFile \
                 in ~/.ssh/config, or the default ~/.ssh/id_*)"
        )),
        // The parser's own message could quote the file; say only what it is not.
        _ => HostError::Auth(format!(
            "cannot load the key {shown}: not an OpenSSH private key, or wrong passphrase"
        )),
    })
}

/// The public half of a key file, from `<key>.pub` (or `<key>` with `.pub` replacing its
/// extension), for matching agent identities. None when there is no readable one.
pub async fn load_public_key(path: &Path) -> Option<PublicKey> {
    for candidate in [
        PathBuf::from(format!("{}.pub", path.display())),
        path.with_extension("pub"),
    ] {
        if let Ok(text) = read_off_runtime(&candidate, Half::Public).await
            && let Ok(key) = PublicKey::from_openssh(text.trim())
        {
            return Some(key);
        }
    }
    None
}

/// The certificate `<key>-cert.pub` beside a key file, if there is a readable one.
pub async fn load_certificate(path: &Path) -> Option<Certificate> {
    let cert = PathBuf::from(format!("{}-cert.pub", path.display()));
    let text = read_off_runtime(&cert, Half::Public).await.ok()?;
    Certificate::from_openssh(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn devices_fifos_directories_and_huge_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_KEY_FILE_BYTES + 1)
            .unwrap();
        for bad in [Path::new("/dev/zero"), &fifo, dir.path(), &big] {
            let e = read_small_regular_file(bad, Half::Private).unwrap_err();
            assert_eq!(e.kind(), "invalid", "{}: {e}", bad.display());
        }
        let e = read_small_regular_file(&dir.path().join("missing"), Half::Private).unwrap_err();
        assert_eq!(e.kind(), "not-found", "{e}");
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "key text").unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_small_regular_file(&ok, Half::Private).unwrap(),
            "key text"
        );
    }

    #[test]
    fn a_private_key_others_can_read_is_refused_as_openssh_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key text").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = read_small_regular_file(&key, Half::Private).unwrap_err();
            assert!(
                e.kind() == "auth" && e.message().contains("chmod 600"),
                "{mode:o}: {e}"
            );
            // Its public half may be read by anyone.
            assert!(read_small_regular_file(&key, Half::Public).is_ok());
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                read_small_regular_file(&key, Half::Private).is_ok(),
                "{mode:o}"
            );
        }
    }

    #[tokio::test]
    async fn a_non_key_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(&f, "aws_secret_access_key = SECRET123\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_private_key(&f, None).await.unwrap_err();
        assert_eq!(e.kind(), "auth");
        assert!(!e.message().contains("SECRET123"), "{e}");
    }
}
