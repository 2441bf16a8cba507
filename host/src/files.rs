//! What the host says about files, local or remote: kind, metadata and free space.

/// What kind of file system entry a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Other,
}

impl FileKind {
    /// The kind encoded in the `S_IFMT` bits of a Unix mode.
    pub fn from_mode(mode: u32) -> FileKind {
        match mode & 0o170000 {
            0o100000 => FileKind::File,
            0o040000 => FileKind::Directory,
            0o120000 => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }
}

/// Metadata of one file system entry, remote or local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The entry's name (for listings) or the path as given (for stat).
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Permission bits: `0o777` plus setuid, setgid and sticky.
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub modified: Option<u64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Size and free space of a file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    /// Free bytes, including those reserved for the superuser.
    pub free: u64,
    /// Free bytes available to the user.
    pub available: u64,
}
