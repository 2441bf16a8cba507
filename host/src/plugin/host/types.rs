//! The host side of `types`, the data the other interfaces share: it has no functions;
//! this file turns the host's file metadata into its WIT records.

use crate::files::{FileInfo, FileKind, Space};
use crate::plugin::bindings::mcpssh::plugin::types;
use crate::plugin::state::CallState;

impl types::Host for CallState {}

fn wit_kind(kind: FileKind) -> types::FileKind {
    match kind {
        FileKind::File => types::FileKind::File,
        FileKind::Directory => types::FileKind::Directory,
        FileKind::Symlink => types::FileKind::Symlink,
        FileKind::Other => types::FileKind::Other,
    }
}

/// A file system entry's metadata as WIT data.
pub fn wit_info(info: FileInfo) -> types::FileInfo {
    types::FileInfo {
        name: info.name,
        kind: wit_kind(info.kind),
        size: info.size,
        mode: info.mode,
        modified: info.modified,
        uid: info.uid,
        gid: info.gid,
    }
}

/// A file system's size and free space as WIT data.
pub fn wit_space(s: Space) -> types::Space {
    types::Space {
        total: s.total,
        free: s.free,
        available: s.available,
    }
}
