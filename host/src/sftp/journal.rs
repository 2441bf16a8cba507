//! A record on local disk of the temporary files transfers are writing, so that what a
//! crash leaves behind (of `mcpssh`, or of the connection while a transfer ran) is removed
//! by the next transfer, without waiting for it to age.
//!
//! Each temporary file gets one small JSON file in `$XDG_STATE_HOME/mcpssh/temp-files`
//! (default `~/.local/state/mcpssh/temp-files`) naming its owner process, the remote
//! target (none for a local file) and its path. The entry is removed once the temporary
//! file is published or removed. An entry is a leftover when its owner process is gone,
//! or when it is this process's and no transfer of this process is writing it (its
//! removal failed, e.g. because the connection dropped). Leftovers are removed, but only
//! paths that look like our temporary names. If the directory cannot be used, transfers
//! still work and only the age-based cleanup (see [`super::temp`]) applies.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::temp;

/// Entries older than this are dropped whatever they say.
const MAX_ENTRY_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What one entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
    /// The owner's start time (clock ticks after boot), to tell a reused PID apart.
    pub start: u64,
    /// `user@host:port` of the remote side, or none for a local file.
    pub target: Option<String>,
    pub path: String,
}

/// This process, as entries name it.
static SELF: LazyLock<(u32, u64)> = LazyLock::new(|| {
    let pid = std::process::id();
    (pid, process_start(pid).unwrap_or(0))
});

/// The directory of entries, created on first use; none when unusable.
static DIR: LazyLock<Option<PathBuf>> = LazyLock::new(|| {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| crate::config::home_dir().join(".local").join("state"));
    let dir = base.join("mcpssh").join("temp-files");
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), "no temporary-file journal: {e}");
            None
        }
    }
});

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), where known.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// True when the process an entry names is still running.
fn owner_alive(entry: &Entry) -> bool {
    if cfg!(target_os = "linux") {
        process_start(entry.pid).is_some_and(|s| s == entry.start)
    } else {
        process_exists(entry.pid)
    }
}

/// True when a process `pid` exists that this user may signal (`kill(pid, 0)`).
fn process_exists(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// True when `entry` names a temporary file nobody is writing any more.
pub fn is_leftover(entry: &Entry) -> bool {
    let ours = (entry.pid, entry.start) == *SELF;
    let name = Path::new(&entry.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if ours {
        !temp::is_active(name)
    } else {
        !owner_alive(entry)
    }
}

/// A recorded temporary file; [`Record::done`] forgets it.
#[derive(Debug)]
pub struct Record {
    file: Option<PathBuf>,
}

impl Record {
    /// Records that this process is about to create the temporary file `path` (on
    /// `target`, or locally when none).
    pub fn new(target: Option<&str>, path: &str) -> Record {
        match DIR.as_ref() {
            Some(dir) => Record::new_in(dir, target, path),
            None => Record { file: None },
        }
    }

    fn new_in(dir: &Path, target: Option<&str>, path: &str) -> Record {
        let entry = Entry {
            pid: SELF.0,
            start: SELF.1,
            target: target.map(str::to_string),
            path: path.to_string(),
        };
        // Temporary names end with a unique token: name the entry after it.
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let token = match name.strip_suffix(".part") {
            Some(stem) if temp::is_temp_name(name) => stem[stem.len() - 12..].to_string(),
            _ => temp::temp_name("x"),
        };
        let file = dir.join(format!("{token}.json"));
        let written = serde_json::to_vec(&entry)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&file, bytes));
        match written {
            Ok(()) => Record { file: Some(file) },
            Err(e) => {
                tracing::debug!(file = %file.display(), "cannot record a temporary file: {e}");
                Record { file: None }
            }
        }
    }

    /// The temporary file is gone (published or removed): forget it.
    pub fn done(mut self) {
        if let Some(file) = self.file.take() {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The leftover entries for `target` (none: local files), with their entry files.
pub fn leftovers(target: Option<&str>) -> Vec<(PathBuf, Entry)> {
    match DIR.as_ref() {
        Some(dir) => leftovers_in(dir, target),
        None => Vec::new(),
    }
}

fn leftovers_in(dir: &Path, target: Option<&str>) -> Vec<(PathBuf, Entry)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::now();
    let mut found = Vec::new();
    for item in read.flatten() {
        let file = item.path();
        if file.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let too_old = item
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > MAX_ENTRY_AGE);
        let entry = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
        let Some(entry) = entry.filter(|_| !too_old) else {
            let _ = std::fs::remove_file(&file);
            continue;
        };
        let name = Path::new(&entry.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if entry.target.as_deref() == target && temp::is_temp_name(name) && is_leftover(&entry) {
            found.push((file, entry));
        }
    }
    found
}

/// Forgets the entry in `file` (its temporary file is gone).
pub fn forget(file: &Path) {
    let _ = std::fs::remove_file(file);
}

/// Removes the local leftovers of crashed transfers.
pub fn clean_local() {
    if let Some(dir) = DIR.as_ref() {
        clean_local_in(dir);
    }
}

fn clean_local_in(dir: &Path) {
    for (file, entry) in leftovers_in(dir, None) {
        match std::fs::remove_file(&entry.path) {
            Ok(()) => {
                tracing::info!(path = %entry.path, "removed a temporary file left by an interrupted transfer");
                forget(&file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => forget(&file),
            Err(e) => {
                tracing::debug!(path = %entry.path, "cannot remove a leftover temporary file: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time() {
        assert!(SELF.1 > 0 || !cfg!(target_os = "linux"));
        let me = Entry {
            pid: SELF.0,
            start: SELF.1,
            target: None,
            path: "/x/.f.mcpssh-aaaaaaaaaaaa.part".into(),
        };
        assert!(owner_alive(&me));
        let reused = Entry {
            start: SELF.1 + 1,
            ..me.clone()
        };
        assert!(!owner_alive(&reused) || !cfg!(target_os = "linux"));
        // Ours and not being written: a leftover; being written: not.
        assert!(is_leftover(&me));
        let guard = temp::ActiveTemp::register(".f.mcpssh-aaaaaaaaaaaa.part");
        assert!(!is_leftover(&me));
        drop(guard);
    }

    #[test]
    fn leftovers_are_found_and_removed_but_live_files_kept() {
        let journal = tempfile::tempdir().unwrap();
        let files = tempfile::tempdir().unwrap();
        let (j, f) = (journal.path(), files.path());
        let mine = f.join(".a.mcpssh-cccccccccccc.part");
        let written = f.join(".b.mcpssh-dddddddddddd.part");
        let dead = f.join(".c.mcpssh-eeeeeeeeeeee.part");
        let not_ours = f.join("precious.txt");
        for p in [&mine, &written, &dead, &not_ours] {
            std::fs::write(p, "x").unwrap();
        }
        // This process's entry whose transfer ended without removing the file.
        let _kept = Record::new_in(j, None, mine.to_str().unwrap());
        // One still being written.
        let _writing = temp::ActiveTemp::register(".b.mcpssh-dddddddddddd.part");
        let live = Record::new_in(j, None, written.to_str().unwrap());
        // A dead process's entry (no process has start time u64::MAX).
        let dead_entry = |path: &Path, target: Option<&str>| Entry {
            pid: SELF.0,
            start: u64::MAX,
            target: target.map(str::to_string),
            path: path.display().to_string(),
        };
        let put = |name: &str, e: &Entry| {
            std::fs::write(j.join(name), serde_json::to_vec(e).unwrap()).unwrap()
        };
        put("eeeeeeeeeeee.json", &dead_entry(&dead, None));
        // An entry naming something that is not a temporary file is never acted on.
        put("zzzzzzzzzzzz.json", &dead_entry(&not_ours, None));
        // A remote entry is not a local leftover.
        put(
            "ffffffffffff.json",
            &dead_entry(Path::new("/r/.x.mcpssh-ffffffffffff.part"), Some("u@h:22")),
        );

        assert_eq!(leftovers_in(j, Some("u@h:22")).len(), 1);
        assert_eq!(leftovers_in(j, Some("v@h:22")).len(), 0);
        clean_local_in(j);
        assert!(!mine.exists() && !dead.exists(), "leftovers removed");
        assert!(
            written.exists() && not_ours.exists(),
            "live and foreign files kept"
        );
        // Left: the live one, the foreign one, the remote one.
        assert_eq!(std::fs::read_dir(j).unwrap().count(), 3);
        live.done();
        assert_eq!(std::fs::read_dir(j).unwrap().count(), 2);
    }

    #[test]
    fn a_process_exists_only_while_it_runs() {
        assert!(process_exists(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // Reaped: no process has its id (until the id is reused, which takes a while).
        assert!(!process_exists(pid));
        // Ids that name no single process are never taken for an owner.
        assert!(!process_exists(0));
        assert!(!process_exists(u32::MAX));
    }

    #[test]
    fn entries_round_trip_as_json() {
        let e = Entry {
            pid: 1,
            start: 2,
            target: Some("u@h:22".into()),
            path: "/p".into(),
        };
        let back: Entry = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
