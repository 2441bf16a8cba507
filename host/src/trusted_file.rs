//! Whether a file that steers mcpssh can be trusted: a tool component, its grant file,
//! the tools folder, the compiled-code cache, the policy file, the audit key and
//! `~/.ssh/config`. Such a file must belong to the user running mcpssh (or to root) and
//! be writable by nobody else (secrets: readable by nobody else either), so another local
//! user cannot loosen the policy, grant a tool more, or point a host alias at their own
//! machine. Files are checked and read through the same open descriptor, so the file read
//! is the file checked.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Permission bits that let someone other than the owner change a file or folder.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// The effective user id of this process.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Who may own a trusted file: the user running mcpssh, or root (who can replace the
/// mcpssh binary itself anyway).
fn trusted_owner(uid: u32) -> bool {
    uid == current_uid() || uid == 0
}

/// Refuses `meta` (of `path`, a `what`) when it belongs to someone else or when
/// `forbidden` permission bits are set.
fn check_owner_and_mode(meta: &Metadata, path: &Path, what: &str, forbidden: u32) -> Result<()> {
    if !trusted_owner(meta.uid()) {
        bail!(
            "{what} {} belongs to user id {}, not to the user running mcpssh (user id {}); \
             another user could change it. Make it yours (chown) or remove it",
            path.display(),
            meta.uid(),
            current_uid()
        );
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        bail!(
            "{what} {} has permissions {mode:04o}, which let other users {}; run `chmod go-{} {}`",
            path.display(),
            if forbidden & 0o044 != 0 {
                "read or change it"
            } else {
                "change it"
            },
            if forbidden & 0o044 != 0 { "rwx" } else { "w" },
            path.display()
        );
    }
    Ok(())
}

/// Refuses a tools folder that another user could add files to or replace files in.
pub fn check_folder(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the tools folder {}", dir.display()))?;
    check_owner_and_mode(&meta, dir, "the tools folder", WRITABLE_BY_OTHERS)
}

/// Refuses a file, already open (for writing, say), that is not a regular file, belongs to
/// another user or that others may write to.
pub fn check_open_file(file: &File, path: &Path, what: &str) -> Result<()> {
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    check_owner_and_mode(&meta, path, what, WRITABLE_BY_OTHERS)
}

/// Opens `path` without blocking on a FIFO and without following a final symlink when
/// `no_follow`; `Ok(None)` when it does not exist.
fn open(path: &Path, no_follow: bool) -> Result<Option<File>> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if no_follow && e.raw_os_error() == Some(libc::ELOOP) => bail!(
            "{} is a symbolic link; name the file itself",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
}

/// Reads an open, already checked regular file of at most `max` bytes.
fn read_checked(
    mut file: File,
    meta: &Metadata,
    path: &Path,
    what: &str,
    max: u64,
) -> Result<Vec<u8>> {
    if !meta.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    if meta.len() > max {
        bail!(
            "{what} {} is {} bytes, more than the {max} bytes allowed",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > max {
        bail!(
            "{what} {} grew past {max} bytes while being read",
            path.display()
        );
    }
    Ok(bytes)
}

/// Reads a file that steers mcpssh (`what` names it in errors): a regular file of at
/// most `max` bytes, owned by the user (or root) and writable by nobody else.
/// `Ok(None)` when it does not exist.
pub fn read_trusted(path: &Path, what: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(file) = open(path, false)? else {
        return Ok(None);
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        check_owner_and_mode(&meta, path, what, WRITABLE_BY_OTHERS)?;
    }
    read_checked(file, &meta, path, what, max).map(Some)
}

/// [`read_trusted`] for a text file: an error when it is not UTF-8.
pub fn read_trusted_text(path: &Path, what: &str, max: u64) -> Result<Option<String>> {
    let Some(bytes) = read_trusted(path, what, max)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// Reads a secret file (not a symlink, owned by the user, readable by nobody else) of at
/// most `max` bytes. `Ok(None)` when it does not exist.
pub fn read_secret(path: &Path, what: &str, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(file) = open(path, true)? else {
        return Ok(None);
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    check_owner_and_mode(&meta, path, what, 0o077)?;
    read_checked(file, &meta, path, what, max).map(Some)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn files_writable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wasm");
        assert!(read_trusted(&path, "component", 10).unwrap().is_none());
        std::fs::write(&path, b"abc").unwrap();
        chmod(&path, 0o644);
        assert_eq!(
            read_trusted(&path, "component", 10).unwrap().unwrap(),
            b"abc"
        );
        for mode in [0o664, 0o646, 0o666] {
            chmod(&path, mode);
            let e = read_trusted(&path, "component", 10)
                .unwrap_err()
                .to_string();
            assert!(e.contains("chmod go-w"), "{e}");
        }
        chmod(&path, 0o644);
        assert!(read_trusted(&path, "component", 2).is_err(), "too big");
    }

    #[test]
    fn folders_writable_by_others_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        assert!(check_folder(dir.path()).is_ok());
        chmod(dir.path(), 0o1777);
        assert!(check_folder(dir.path()).is_err());
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_trusted(&path, "grant file", 10)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn secrets_must_be_private_and_not_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, b"k").unwrap();
        chmod(&path, 0o600);
        assert_eq!(read_secret(&path, "key", 10).unwrap().unwrap(), b"k");
        chmod(&path, 0o640);
        assert!(read_secret(&path, "key", 10).is_err());
        chmod(&path, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_secret(&link, "key", 10).is_err());
    }
}
