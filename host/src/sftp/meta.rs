//! Remote metadata and changes over SFTP: stat, directory listings, canonical paths,
//! free space (the `statvfs@openssh.com` extension, else `df` over an exec channel),
//! removing files, making directories and renaming.
//!
//! Remote paths are used as given, except that `~` and `~/...` mean the home directory;
//! relative paths are relative to the home directory.

use std::sync::Arc;
use std::time::Duration;

use russh_sftp::protocol::{FileAttributes, StatusCode};
use tokio_util::sync::CancellationToken;

use super::error::status_code;
use super::{FromAttrs, POSIX_RENAME, SftpChannel, remote_arg};
use crate::error::{HostError, HostResult};
use crate::files::{FileInfo, FileKind, Space};
use crate::ssh::Connection;
use crate::ssh::exec::{self, ExecRequest};
use crate::ssh::shell::shell_quote;

/// Metadata of `path`, following a final symlink when `follow` is true. The name is the
/// path as given.
pub async fn stat(sftp: &SftpChannel, path: &str, follow: bool) -> HostResult<FileInfo> {
    let arg = remote_arg(path)?;
    let attrs = if follow {
        sftp.raw().stat(arg).await
    } else {
        sftp.raw().lstat(arg).await
    };
    let attrs = attrs.map_err(|e| sftp.fail("cannot stat", path, e))?.attrs;
    Ok(FileInfo::from_attrs(path.to_string(), &attrs))
}

/// Metadata of `path` (not following a final symlink), or none when it does not exist.
pub async fn lstat_opt(sftp: &SftpChannel, path: &str) -> HostResult<Option<FileAttributes>> {
    match sftp.raw().lstat(remote_arg(path)?).await {
        Ok(a) => Ok(Some(a.attrs)),
        Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) => Ok(None),
        Err(e) => Err(sftp.fail("cannot stat", path, e)),
    }
}

/// Metadata of `path` following symlinks, or none when it (or its target) does not exist.
pub async fn stat_opt(sftp: &SftpChannel, path: &str) -> HostResult<Option<FileAttributes>> {
    match sftp.raw().stat(remote_arg(path)?).await {
        Ok(a) => Ok(Some(a.attrs)),
        Err(e) if status_code(&e) == Some(StatusCode::NoSuchFile) => Ok(None),
        Err(e) => Err(sftp.fail("cannot stat", path, e)),
    }
}

/// The refusal of a remote path that is not a regular file (a FIFO or a device could
/// block the server or never end).
pub(super) fn not_regular(remote: &str) -> HostError {
    HostError::Invalid(format!(
        "the remote path {remote} is not a regular file (a FIFO, socket or device); only regular files can be read"
    ))
}

/// Refuses attributes of anything but a regular file (attributes without a mode pass:
/// nothing is known). `path` names it in the error.
pub(super) fn require_regular(attrs: &FileAttributes, path: &str) -> HostResult<()> {
    match attrs.permissions.map(FileKind::from_mode) {
        None | Some(FileKind::File) => Ok(()),
        Some(FileKind::Directory) => Err(HostError::Invalid(format!(
            "{path} is a directory on the remote host, not a file"
        ))),
        Some(_) => Err(not_regular(path)),
    }
}

/// Most entries a listing returns, whatever `limit` the caller asked for.
pub const MAX_LIST_ENTRIES: u32 = 100_000;

/// Most bytes of names a listing holds (each entry counted with `ENTRY_OVERHEAD` more):
/// room for 10,000 names of 255 bytes, the longest Linux allows, but a hostile server may
/// send names up to its packet size.
pub const MAX_LIST_NAME_BYTES: usize = 8 * 1024 * 1024;

/// Bytes counted per entry besides its name (the entry's own fields), for
/// [`MAX_LIST_NAME_BYTES`].
const ENTRY_OVERHEAD: usize = 64;

/// The entries of directory `path` (without `.` and `..`), in the server's order, at
/// most `limit` of them (and never more than [`MAX_LIST_ENTRIES`] or
/// [`MAX_LIST_NAME_BYTES`] of names); the flag says whether more were left out. The
/// entries read are bounded too, `.` and `..` included: a server sending endless `.`
/// entries ends the listing.
pub async fn list_dir(
    sftp: &SftpChannel,
    path: &str,
    limit: u32,
) -> HostResult<(Vec<FileInfo>, bool)> {
    let raw = sftp.raw();
    let handle = match raw.opendir(remote_arg(path)?).await {
        Ok(h) => h.handle,
        Err(e) => {
            // OpenSSH reports "not a directory" as no-such-file: say which it is.
            if status_code(&e) == Some(StatusCode::NoSuchFile)
                && let Ok(Some(attrs)) = stat_opt(sftp, path).await
                && !attrs.is_dir()
            {
                return Err(HostError::Invalid(format!(
                    "{path} is not a directory on the remote host; only directories can be listed"
                )));
            }
            return Err(sftp.fail("cannot list", path, e));
        }
    };
    let mut listing = Listing::new(limit);
    let result = loop {
        match raw.readdir(handle.as_str()).await {
            Ok(name) => {
                if !listing.take(name.files) {
                    break Ok(());
                }
            }
            Err(e) if status_code(&e) == Some(StatusCode::Eof) => break Ok(()),
            Err(e) => break Err(sftp.fail("cannot list", path, e)),
        }
    };
    let _ = raw.close(handle).await;
    result.map(|()| (listing.entries, listing.more))
}

/// A directory listing being read, within its bounds.
struct Listing {
    entries: Vec<FileInfo>,
    more: bool,
    limit: usize,
    /// Entries read so far, `.` and `..` included.
    read: usize,
    /// Bytes held so far (names plus [`ENTRY_OVERHEAD`] each).
    bytes: usize,
}

impl Listing {
    fn new(limit: u32) -> Self {
        Listing {
            entries: Vec::new(),
            more: false,
            limit: limit.min(MAX_LIST_ENTRIES) as usize,
            read: 0,
            bytes: 0,
        }
    }

    /// Adds the entries of one answer; false once the listing is full (then `more` is
    /// set).
    fn take(&mut self, files: Vec<russh_sftp::protocol::File>) -> bool {
        for file in files {
            self.read += 1;
            let is_dot = file.filename == "." || file.filename == "..";
            let size = file.filename.len() + ENTRY_OVERHEAD;
            // Two entries more than the limit: room for `.` and `..`, and one to see
            // whether more follow.
            if self.read > self.limit + 2
                || (!is_dot
                    && (self.entries.len() >= self.limit
                        || self.bytes + size > MAX_LIST_NAME_BYTES))
            {
                self.more = true;
                return false;
            }
            if !is_dot {
                self.bytes += size;
                self.entries
                    .push(FileInfo::from_attrs(file.filename, &file.attrs));
            }
        }
        true
    }
}

/// The absolute, canonical form of `path` (`.`, `~` and an empty path give the home
/// directory). The path must exist.
pub async fn canonicalize(sftp: &SftpChannel, path: &str) -> HostResult<String> {
    let name = sftp
        .raw()
        .realpath(remote_arg(path)?)
        .await
        .map_err(|e| sftp.fail("cannot resolve", path, e))?;
    name.files
        .into_iter()
        .next()
        .map(|f| f.filename)
        .ok_or_else(|| {
            HostError::Other(format!(
                "cannot resolve {path}: the server returned no name"
            ))
        })
}

/// Size and free space of the file system holding `path`: from the server's
/// `statvfs@openssh.com` extension, else from `df -Pk` run over an exec channel.
pub async fn space(conn: &Arc<Connection>, sftp: &SftpChannel, path: &str) -> HostResult<Space> {
    if sftp.has_extension(russh_sftp::extensions::STATVFS, "2") {
        match sftp.raw().statvfs(remote_arg(path)?).await {
            Ok(v) => {
                let unit = if v.fragment_size > 0 {
                    v.fragment_size
                } else {
                    v.block_size
                };
                return Ok(Space {
                    total: v.blocks.saturating_mul(unit),
                    free: v.blocks_free.saturating_mul(unit),
                    available: v.blocks_avail.saturating_mul(unit),
                });
            }
            // Refused by the server's configuration (sftp-server -P): ask `df`.
            Err(e) if refused(&e) => {}
            Err(e) => return Err(sftp.fail("cannot read the free space of", path, e)),
        }
    }
    space_from_df(conn, path).await
}

/// `df -Pk -- PATH`, the path shell-quoted (never interpreted); a NUL in it is refused.
fn df_command(path: &str) -> HostResult<String> {
    Ok(format!("df -Pk -- {}", shell_quote(&remote_arg(path)?)))
}

/// Free space from [`df_command`] run over an exec channel.
pub async fn space_from_df(conn: &Arc<Connection>, path: &str) -> HostResult<Space> {
    let request = ExecRequest {
        command: df_command(path)?,
        stdin: None,
        env: vec![("LC_ALL".into(), "C".into())],
        working_directory: None,
        timeout: Duration::from_secs(20),
        output_limit: 64 * 1024,
        pty: false,
        idle_timeout: None,
    };
    let out = exec::run(conn.clone(), request, CancellationToken::new(), None).await?;
    let stdout = String::from_utf8_lossy(&[out.stdout.head, out.stdout.tail].concat()).into_owned();
    if out.exit_code != Some(0) {
        let stderr =
            String::from_utf8_lossy(&[out.stderr.head, out.stderr.tail].concat()).into_owned();
        let detail = stderr.trim();
        if detail.contains("No such file") {
            return Err(HostError::NotFound(format!(
                "cannot read the free space of {path}: no such file or directory on the remote host"
            )));
        }
        return Err(HostError::Other(format!(
            "cannot read the free space of {path}: the server has no statvfs extension and `df` failed{}",
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            }
        )));
    }
    parse_df(&stdout).ok_or_else(|| {
        HostError::Other(format!(
            "cannot read the free space of {path}: unexpected `df -Pk` output: {}",
            stdout.trim()
        ))
    })
}

/// Parses POSIX `df -Pk` output: a header line, then `FS 1024-blocks used available
/// capacity% mount`, where the file system and mount point may contain spaces.
pub fn parse_df(output: &str) -> Option<Space> {
    let line = output.lines().skip(1).find(|l| !l.trim().is_empty())?;
    let tokens: Vec<&str> = line.split_whitespace().collect();
    (1..tokens.len().saturating_sub(3)).find_map(|i| {
        let total: u64 = tokens[i].parse().ok()?;
        let used: u64 = tokens[i + 1].parse().ok()?;
        let available: u64 = tokens[i + 2].parse().ok()?;
        let capacity = tokens[i + 3].strip_suffix('%')?;
        if capacity != "-" {
            capacity.parse::<u64>().ok()?;
        }
        Some(Space {
            total: total.saturating_mul(1024),
            free: total.saturating_sub(used).saturating_mul(1024),
            available: available.saturating_mul(1024),
        })
    })
}

/// Removes the file or symlink `path`. A directory is refused; nothing is ever removed
/// recursively.
pub async fn remove_file(sftp: &SftpChannel, path: &str) -> HostResult<()> {
    let attrs = lstat_opt(sftp, path).await?.ok_or_else(|| {
        HostError::NotFound(format!(
            "nothing to remove: {path} does not exist on the remote host"
        ))
    })?;
    if attrs
        .permissions
        .is_some_and(|m| FileKind::from_mode(m) == FileKind::Directory)
    {
        return Err(HostError::Invalid(format!(
            "{path} is a directory; only files and symlinks can be removed (directories are never removed)"
        )));
    }
    sftp.raw()
        .remove(remote_arg(path)?)
        .await
        .map(drop)
        .map_err(|e| sftp.fail("cannot remove", path, e))
}

/// Creates the directory `path` (its parent must exist).
pub async fn make_dir(sftp: &SftpChannel, path: &str) -> HostResult<()> {
    match sftp
        .raw()
        .mkdir(remote_arg(path)?, FileAttributes::empty())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = status_code(&e);
            if code == Some(StatusCode::Failure)
                && let Ok(Some(attrs)) = lstat_opt(sftp, path).await
            {
                let what = if attrs.is_dir() {
                    "a directory"
                } else {
                    "a file"
                };
                return Err(HostError::AlreadyExists(format!(
                    "{path} already exists ({what})"
                )));
            }
            if code == Some(StatusCode::NoSuchFile) {
                let (parent, _) = super::split_remote(path);
                return Err(HostError::NotFound(format!(
                    "cannot create {path}: its parent directory {parent} does not exist; create it first"
                )));
            }
            Err(sftp.fail("cannot create the directory", path, e))
        }
    }
}

/// Renames `source` to `destination`. Without `overwrite` it fails with
/// `already-exists` when the destination exists (checked by the server at the moment of
/// the rename); with it, the destination is replaced atomically
/// (`posix-rename@openssh.com`; when the server lacks or refuses that extension, see
/// `replace_by_steps`).
pub async fn rename(
    sftp: &SftpChannel,
    source: &str,
    destination: &str,
    overwrite: bool,
) -> HostResult<()> {
    let (src, dst) = (remote_arg(source)?, remote_arg(destination)?);
    if !overwrite {
        return match sftp.raw().rename(src, dst).await {
            Ok(_) => Ok(()),
            Err(e) => Err(rename_failure(sftp, source, destination, false, e).await),
        };
    }
    if sftp.has_extension(POSIX_RENAME, "1") {
        match posix_rename(sftp, &src, &dst).await {
            Ok(()) => return Ok(()),
            // Refused by the server's configuration (sftp-server -P): fall back.
            Err(e) if refused(&e) => {
                tracing::debug!(session = %sftp.session, "{POSIX_RENAME} refused: {e}");
            }
            Err(e) => return Err(rename_failure(sftp, source, destination, true, e).await),
        }
    }
    replace_by_steps(sftp, source, destination).await
}

/// Renames `source` over `destination` without `posix-rename@openssh.com`, never losing
/// either file:
/// 1. a plain rename (which OpenSSH refuses when the destination exists);
/// 2. if the destination exists and is the same directory entry as the source (the same
///    path, or one reached through a symlinked directory), there is nothing to do;
/// 3. otherwise the old destination is moved aside (`.NAME.mcpssh-TOKEN.old`), the source
///    renamed into place, and only then the old file removed. If the second rename fails
///    (e.g. the source was another name of the destination), the old file is moved back.
///
/// Not atomic: for a moment the destination does not exist. A hard link of the
/// destination given as the source is renamed over it (the other name disappears, the
/// content stays): SFTP version 3 cannot tell hard links apart.
async fn replace_by_steps(sftp: &SftpChannel, source: &str, destination: &str) -> HostResult<()> {
    let (src, dst) = (remote_arg(source)?, remote_arg(destination)?);
    let err = match sftp.raw().rename(src.clone(), dst.clone()).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if status_code(&err) != Some(StatusCode::Failure) {
        return Err(rename_failure(sftp, source, destination, true, err).await);
    }
    let Some(old) = lstat_opt(sftp, destination).await? else {
        return Err(rename_failure(sftp, source, destination, true, err).await);
    };
    if same_entry(sftp, source, destination).await? {
        tracing::debug!(session = %sftp.session, "{source} and {destination} are the same file: nothing to rename");
        return Ok(());
    }
    if old.is_dir() {
        return Err(HostError::Invalid(format!(
            "cannot rename {source} to {destination}: the destination is a directory; only files are replaced"
        )));
    }
    tracing::warn!(session = %sftp.session, "the server lacks {POSIX_RENAME}: replacing {destination} in steps (not atomic)");
    let (dir, name) = super::split_remote(&dst);
    let aside = super::join_remote(&dir, &super::temp::aside_name(&name));
    sftp.raw()
        .rename(dst.clone(), aside.clone())
        .await
        .map_err(|e| sftp.fail("cannot move aside the old file", destination, e))?;
    match sftp.raw().rename(src, dst.clone()).await {
        Ok(_) => {
            if let Err(e) = sftp.raw().remove(aside.clone()).await {
                tracing::warn!(session = %sftp.session, %aside, "the replaced file could not be removed: {e}");
            }
            Ok(())
        }
        Err(e) => match sftp.raw().rename(aside.clone(), dst).await {
            Ok(_) => Err(rename_failure(sftp, source, destination, true, e).await),
            Err(back) => Err(HostError::Other(format!(
                "cannot rename {source} to {destination} ({e}); the old {destination} was moved to {aside} \
                 and could not be moved back ({back}): rename it back by hand"
            ))),
        },
    }
}

/// True when `a` and `b` name the same directory entry: the same final name in the same
/// directory once symlinks in the directories are resolved (the final names themselves
/// are not followed: a rename acts on them).
async fn same_entry(sftp: &SftpChannel, a: &str, b: &str) -> HostResult<bool> {
    let (dir_a, name_a) = super::split_remote(&remote_arg(a)?);
    let (dir_b, name_b) = super::split_remote(&remote_arg(b)?);
    if name_a != name_b {
        return Ok(false);
    }
    Ok(canonicalize(sftp, &dir_a).await? == canonicalize(sftp, &dir_b).await?)
}

/// True when an extension request was refused as such (unsupported, or denied by the
/// server's configuration, as `sftp-server -P` does) rather than failing on the path.
pub fn refused(err: &russh_sftp::client::error::Error) -> bool {
    matches!(
        status_code(err),
        Some(StatusCode::OpUnsupported | StatusCode::PermissionDenied)
    )
}

/// Sends `posix-rename@openssh.com`: rename, replacing the destination atomically.
pub async fn posix_rename(
    sftp: &SftpChannel,
    src: &str,
    dst: &str,
) -> Result<(), russh_sftp::client::error::Error> {
    use russh_sftp::client::error::Error as E;
    use russh_sftp::protocol::Packet;
    let mut data = Vec::with_capacity(src.len() + dst.len() + 8);
    for s in [src, dst] {
        data.extend_from_slice(&(s.len() as u32).to_be_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    match sftp.raw().extended(POSIX_RENAME, data).await? {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(E::Status(s)),
        _ => Err(E::UnexpectedPacket),
    }
}

/// Explains a failed rename: an existing destination, a missing source, or the server's
/// reading.
pub async fn rename_failure(
    sftp: &SftpChannel,
    source: &str,
    destination: &str,
    overwrite: bool,
    err: russh_sftp::client::error::Error,
) -> HostError {
    if status_code(&err) == Some(StatusCode::Failure)
        || status_code(&err) == Some(StatusCode::NoSuchFile)
    {
        if !overwrite && matches!(lstat_opt(sftp, destination).await, Ok(Some(_))) {
            return HostError::AlreadyExists(format!(
                "{destination} already exists on the remote host; nothing was replaced (ask to overwrite, or pick another name)"
            ));
        }
        if matches!(lstat_opt(sftp, source).await, Ok(None)) {
            return HostError::NotFound(format!(
                "cannot rename {source}: it does not exist on the remote host"
            ));
        }
        if status_code(&err) == Some(StatusCode::NoSuchFile) {
            let (parent, _) = super::split_remote(destination);
            return HostError::NotFound(format!(
                "cannot rename {source} to {destination}: the directory {parent} does not exist"
            ));
        }
    }
    sftp.fail(&format!("cannot rename {source} to"), destination, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<russh_sftp::protocol::File> {
        names
            .iter()
            .map(|n| russh_sftp::protocol::File::new(*n, FileAttributes::empty()))
            .collect()
    }

    #[test]
    fn listings_stop_at_the_limit_and_skip_the_dots() {
        let mut l = Listing::new(2);
        assert!(l.take(files(&[".", "..", "a"])));
        assert!(!l.take(files(&["b", "c"])));
        let names: Vec<_> = l.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(l.more);
        let mut exact = Listing::new(2);
        assert!(exact.take(files(&["a", ".", "b", ".."])));
        assert!(!exact.more);
    }

    #[test]
    fn endless_dots_end_the_listing() {
        let mut l = Listing::new(10);
        let mut answers = 0;
        while l.take(files(&["."; 100])) {
            answers += 1;
            assert!(answers < 10, "never ended");
        }
        assert!(l.entries.is_empty() && l.more);
    }

    #[test]
    fn huge_names_end_the_listing_at_the_byte_bound() {
        let name = "x".repeat(1024 * 1024);
        let mut l = Listing::new(u32::MAX);
        let mut answers = 0;
        while l.take(files(&[name.as_str()])) {
            answers += 1;
            assert!(answers <= 8, "never ended");
        }
        assert!(l.more);
        assert!(l.bytes <= MAX_LIST_NAME_BYTES);
        assert_eq!(l.entries.len(), 7);
        assert_eq!(Listing::new(u32::MAX).limit, MAX_LIST_ENTRIES as usize);
    }

    #[test]
    fn df_output_is_parsed() {
        let out = "Filesystem     1024-blocks    Used Available Capacity Mounted on\n\
                   /dev/sda1         41152736 9663416  29375896      25% /\n";
        let s = parse_df(out).unwrap();
        assert_eq!(s.total, 41152736 * 1024);
        assert_eq!(s.free, (41152736 - 9663416) * 1024);
        assert_eq!(s.available, 29375896 * 1024);
    }

    #[test]
    fn df_names_with_spaces_are_parsed() {
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                   my fs 2000 500 1400 27% /mnt/with space\n";
        let s = parse_df(out).unwrap();
        assert_eq!(
            (s.total, s.free, s.available),
            (2000 * 1024, 1500 * 1024, 1400 * 1024)
        );
        let out = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                   tmpfs 0 0 0 -% /proc/x\n";
        assert_eq!(parse_df(out).unwrap().total, 0);
    }

    #[test]
    fn bad_df_output_is_refused() {
        assert!(parse_df("").is_none());
        assert!(parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n").is_none());
        assert!(parse_df("header\nfs a b c d% /\n").is_none());
        assert!(parse_df("header\nfs 1 2 3 /\n").is_none());
    }

    #[test]
    fn df_paths_are_quoted() {
        let evil = "x'; touch /tmp/pwned #";
        assert_eq!(
            df_command(evil).unwrap(),
            r"df -Pk -- 'x'\''; touch /tmp/pwned #'"
        );
        assert_eq!(df_command("a\0b").unwrap_err().kind(), "invalid");
    }
}
