//! Temporary files of transfers: their names (`.NAME.mcpssh-TOKEN.part`, a hidden sibling
//! of the destination; `.NAME.mcpssh-TOKEN.old` for an old file moved aside), recognising
//! them, and remembering which ones this process is writing right now so that the cleanup
//! of crash leftovers never touches them.
//!
//! A leftover is a file whose name matches the pattern, that this process is not
//! writing, and that was last modified longer ago than the configured age
//! (`MCP_SSH_STALE_TEMP_AGE`): a transfer in progress modifies its file continuously.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use rand::Rng;

/// What every temporary name has between the destination name and the token.
const MARKER: &str = ".mcpssh-";
/// The suffix of every temporary name.
const SUFFIX: &str = ".part";
/// The suffix of an old file moved aside (see [`aside_name`]).
const ASIDE_SUFFIX: &str = ".old";
/// Characters in the random token.
const TOKEN_LEN: usize = 12;
/// Longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

/// Names of the temporary files this process is writing.
static ACTIVE: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// A fresh temporary name for a destination file named `name`. The destination's name is
/// shortened (at a character boundary) when the result would be too long.
pub fn temp_name(name: &str) -> String {
    temp_name_with_token(name, &random_token())
}

/// A fresh name for an old destination file moved aside while a new file takes its
/// place (`.NAME.mcpssh-TOKEN.old`). It is deliberately not a temporary name: the cleanup of
/// crash leftovers never removes it, because it may hold the only copy of the old file.
pub fn aside_name(name: &str) -> String {
    with_token(name, &random_token(), ASIDE_SUFFIX)
}

fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(TOKEN_LEN)
        .map(|b| (b as char).to_ascii_lowercase())
        .collect()
}

fn temp_name_with_token(name: &str, token: &str) -> String {
    with_token(name, token, SUFFIX)
}

/// `.NAME.mcpssh-TOKEN{suffix}`, the name shortened (at a character boundary) to fit.
fn with_token(name: &str, token: &str, suffix: &str) -> String {
    let room = NAME_MAX - 1 - MARKER.len() - TOKEN_LEN - suffix.len();
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{MARKER}{token}{suffix}", &name[..cut])
}

/// True when `name` is a temporary name made by [`temp_name`].
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(SUFFIX) else {
        return false;
    };
    if rest.len() < MARKER.len() + TOKEN_LEN || !rest.is_char_boundary(rest.len() - TOKEN_LEN) {
        return false;
    }
    let (head, token) = rest.split_at(rest.len() - TOKEN_LEN);
    head.ends_with(MARKER)
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Marks a temporary name as being written by this process until the guard drops.
pub struct ActiveTemp {
    name: String,
}

impl ActiveTemp {
    pub fn register(name: &str) -> ActiveTemp {
        ACTIVE.lock().unwrap().insert(name.to_string());
        ActiveTemp {
            name: name.to_string(),
        }
    }
}

impl Drop for ActiveTemp {
    fn drop(&mut self) {
        ACTIVE.lock().unwrap().remove(&self.name);
    }
}

/// True when this process is writing the temporary file `name`.
pub fn is_active(name: &str) -> bool {
    ACTIVE.lock().unwrap().contains(name)
}

/// True when the file `name`, last modified at `modified` (seconds since the epoch, when
/// known), is a temporary file left by a crash: a temporary name nobody here is writing,
/// older than `max_age_secs` at time `now`.
pub fn is_stale(name: &str, modified: Option<u64>, now: u64, max_age_secs: u64) -> bool {
    is_temp_name(name)
        && !is_active(name)
        && modified.is_some_and(|m| now.saturating_sub(m) >= max_age_secs && m <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_siblings() {
        let n = temp_name("report.pdf");
        assert!(n.starts_with(".report.pdf.mcpssh-"), "{n}");
        assert!(n.ends_with(".part"));
        assert_eq!(n.len(), ".report.pdf.mcpssh-".len() + 12 + ".part".len());
        assert!(is_temp_name(&n));
        assert_ne!(temp_name("x"), temp_name("x"));
    }

    #[test]
    fn long_names_are_cut_at_a_char_boundary() {
        let long = "é".repeat(200); // 400 bytes
        let n = temp_name(&long);
        assert!(n.len() <= NAME_MAX, "{}", n.len());
        assert!(is_temp_name(&n));
        let ascii = "a".repeat(300);
        assert_eq!(temp_name(&ascii).len(), NAME_MAX);
    }

    #[test]
    fn aside_names_are_hidden_and_never_taken_for_leftovers() {
        let n = aside_name("report.pdf");
        assert!(n.starts_with(".report.pdf.mcpssh-"), "{n}");
        assert!(n.ends_with(".old"), "{n}");
        assert!(!is_temp_name(&n));
        assert!(aside_name(&"a".repeat(300)).len() <= NAME_MAX);
    }

    #[test]
    fn only_our_pattern_is_recognised() {
        assert!(is_temp_name(".a.mcpssh-0123456789ab.part"));
        assert!(is_temp_name(&temp_name_with_token("", "abcdefghijkl")));
        assert!(!is_temp_name("a.mcpssh-0123456789ab.part")); // not hidden
        assert!(!is_temp_name(".a.mcpssh-0123456789a.part")); // short token
        assert!(!is_temp_name(".a.mcpssh-0123456789AB.part")); // upper case
        assert!(!is_temp_name(".a.mcpssh-0123456789ab.partial"));
        assert!(!is_temp_name(".a.other-0123456789ab.part"));
        assert!(!is_temp_name(".part"));
        assert!(!is_temp_name(".x.mcpssh-ééééééé.part"));
    }

    #[test]
    fn staleness_needs_age_and_no_writer() {
        let name = ".f.mcpssh-zzzzzzzzzzzz.part";
        assert!(is_stale(name, Some(1000), 1100, 60));
        assert!(!is_stale(name, Some(1050), 1100, 60));
        assert!(!is_stale(name, None, 1100, 60));
        assert!(!is_stale(name, Some(2000), 1100, 0)); // from the future: leave it
        assert!(!is_stale("f.txt", Some(0), 1100, 60));
        let guard = ActiveTemp::register(name);
        assert!(!is_stale(name, Some(1000), 1100, 0));
        drop(guard);
        assert!(is_stale(name, Some(1000), 1100, 0));
    }
}
