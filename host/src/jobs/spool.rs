//! One output stream of a job, kept within fixed bounds: the first bytes in memory, and
//! once they outgrow the memory limit, everything in a ring file on disk holding the
//! latest `disk_limit` bytes. Memory stays flat however much a command prints. The file
//! is made in a fresh directory only this user may enter, then unlinked and the
//! directory removed at once: it lives only as an open handle, so nothing is left
//! behind, even after a crash, and no other local user can open it.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where one stream's bytes are kept.
enum Store {
    Memory(Vec<u8>),
    /// A ring: logical offset `o` lives at file position `o % disk_limit`.
    Disk(File),
    /// Writing to disk failed: further bytes are counted, not kept.
    Broken,
}

/// A bounded record of one output stream, addressed by logical byte offsets from the
/// start of the stream.
pub struct Spool {
    memory_limit: usize,
    disk_limit: u64,
    store: Store,
    /// Bytes the command wrote to this stream in all.
    total: u64,
    /// Bytes from this offset on are no longer kept (writing to disk failed there).
    broken_at: Option<u64>,
}

/// A slice read from a spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The offset of the first byte of `data`.
    pub offset: u64,
    pub data: Vec<u8>,
    /// The earliest offset still kept: bytes before it were overwritten by later output.
    pub first_kept: u64,
    /// Bytes the stream holds in all so far.
    pub total: u64,
}

impl Spool {
    /// An empty spool keeping up to `memory_limit` bytes in memory and, past that, the
    /// latest `disk_limit` bytes (at least `memory_limit`) in a file.
    pub fn new(memory_limit: usize, disk_limit: u64) -> Spool {
        Spool {
            memory_limit,
            disk_limit: disk_limit.max(memory_limit as u64).max(1),
            store: Store::Memory(Vec::new()),
            total: 0,
            broken_at: None,
        }
    }

    /// Bytes written in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The earliest offset still readable.
    pub fn first_kept(&self) -> u64 {
        self.total.saturating_sub(self.disk_limit)
    }

    /// Appends `data`; the spool file, when one is needed, is created under `dir`.
    pub fn push(&mut self, data: &[u8], dir: &Path) {
        if let Store::Memory(buf) = &mut self.store {
            if buf.len() + data.len() <= self.memory_limit {
                buf.extend_from_slice(data);
                self.total += data.len() as u64;
                return;
            }
            let held = std::mem::take(buf);
            self.store = match new_spool_file(dir) {
                Ok(file) => Store::Disk(file),
                Err(e) => {
                    tracing::warn!(error = %e, dir = %dir.display(), "cannot create a job's spool file; its further output is not kept");
                    self.broken_at = Some(0);
                    Store::Broken
                }
            };
            self.total = 0;
            self.write_disk(&held);
        }
        self.write_disk(data);
    }

    fn write_disk(&mut self, mut data: &[u8]) {
        let Store::Disk(file) = &self.store else {
            self.total += data.len() as u64;
            return;
        };
        // Only the last `disk_limit` bytes of a big write can survive it.
        if data.len() as u64 > self.disk_limit {
            let skip = data.len() - self.disk_limit as usize;
            self.total += skip as u64;
            data = &data[skip..];
        }
        let mut result = Ok(());
        let mut offset = self.total;
        while !data.is_empty() {
            let pos = offset % self.disk_limit;
            let n = ((self.disk_limit - pos) as usize).min(data.len());
            if let Err(e) = file.write_all_at(&data[..n], pos) {
                result = Err(e);
                break;
            }
            offset += n as u64;
            data = &data[n..];
        }
        self.total = offset;
        if let Err(e) = result {
            tracing::warn!(error = %e, "writing a job's spool file failed; its further output is not kept");
            self.broken_at = Some(self.total);
            self.total += data.len() as u64;
            self.store = Store::Broken;
        }
    }

    /// Up to `max` bytes from `offset` (moved up to the earliest byte kept).
    pub fn read(&self, offset: u64, max: usize) -> io::Result<Chunk> {
        let first_kept = self.first_kept();
        let readable_end = self.broken_at.unwrap_or(self.total);
        let offset = offset.max(first_kept).min(readable_end);
        let len = (readable_end - offset).min(max as u64) as usize;
        let mut data = vec![0; len];
        match &self.store {
            Store::Memory(buf) => {
                data.copy_from_slice(&buf[offset as usize..offset as usize + len])
            }
            Store::Disk(file) => {
                let mut done = 0;
                while done < len {
                    let pos = (offset + done as u64) % self.disk_limit;
                    let n = ((self.disk_limit - pos) as usize).min(len - done);
                    file.read_exact_at(&mut data[done..done + n], pos)?;
                    done += n;
                }
            }
            Store::Broken => data.clear(),
        }
        Ok(Chunk {
            offset,
            data,
            first_kept,
            total: self.total,
        })
    }
}

/// Creates a spool file readable and writable by this user only, in a fresh private
/// directory under `parent`, and removes both names at once: the file lives while the
/// handle does.
fn new_spool_file(parent: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = make_private_dir(parent)?;
    let path = dir.join("spool");
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    opened
}

/// Creates a fresh directory `mcpssh-spool-*` in `parent`, that only this user may enter.
fn make_private_dir(parent: &Path) -> io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    for _ in 0..16 {
        let path = parent.join(format!("mcpssh-spool-{:016x}", rand::random::<u64>()));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free directory name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(spool: &Spool) -> Vec<u8> {
        spool.read(0, usize::MAX).unwrap().data
    }

    #[test]
    fn small_output_stays_in_memory_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(100, 1000);
        s.push(b"hello ", dir.path());
        s.push(b"world", dir.path());
        assert!(matches!(s.store, Store::Memory(_)));
        assert_eq!(all(&s), b"hello world");
        let c = s.read(6, 3).unwrap();
        assert_eq!((c.offset, c.data.as_slice(), c.total), (6, &b"wor"[..], 11));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn big_output_moves_to_an_unlinked_file_and_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(64, 1 << 20);
        let mut expected = Vec::new();
        for i in 0..5000u32 {
            let line = format!("{i}\n");
            s.push(line.as_bytes(), dir.path());
            expected.extend_from_slice(line.as_bytes());
        }
        assert!(matches!(s.store, Store::Disk(_)));
        assert_eq!(all(&s), expected);
        assert_eq!(s.read(100, 7).unwrap().data, &expected[100..107]);
        // The file is unlinked: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn past_the_disk_limit_the_latest_bytes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(10, 100);
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(37) {
            s.push(piece, dir.path());
        }
        s.push(&data[..333], dir.path());
        let mut expected = data.clone();
        expected.extend_from_slice(&data[..333]);
        assert_eq!(s.total(), 1333);
        assert_eq!(s.first_kept(), 1233);
        let c = s.read(0, usize::MAX).unwrap();
        assert_eq!(c.offset, 1233);
        assert_eq!(c.data, &expected[1233..]);
        assert_eq!(s.read(1300, 10).unwrap().data, &expected[1300..1310]);
    }

    #[test]
    fn the_spool_directory_is_private_and_fresh() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let a = make_private_dir(parent.path()).unwrap();
        let b = make_private_dir(parent.path()).unwrap();
        assert_ne!(a, b);
        for dir in [a, b] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
        }
    }
}
