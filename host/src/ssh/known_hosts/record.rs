//! Recording a new host's key: one line appended to a user known_hosts file, `name key`
//! or, under `HashKnownHosts yes`, `|1|salt|hash key`. The file and its folder are
//! created if needed, and the entry starts on a line of its own.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use russh::keys::PublicKey;

use super::entries::hashed_name;

/// Appends the entry for `name` (a lowercased host or `[host]:port`, already checked to
/// be a plain name) to `file` in one write.
pub fn append(file: &Path, name: &str, key: &PublicKey, hashed: bool) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(file)?;
    let mut line = String::new();
    // Only a file with something in it can lack its last newline (`/dev/null` has none).
    if f.metadata()?.len() > 0 && f.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            line.push('\n');
        }
    }
    let host_field = if hashed {
        hashed_name(name, &rand::random::<[u8; 20]>())
    } else {
        name.to_string()
    };
    let openssh = key.to_openssh().map_err(std::io::Error::other)?;
    line.push_str(&format!("{host_field} {openssh}\n"));
    f.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    use super::*;

    fn key() -> PublicKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[3; 32]))
            .public_key()
            .clone()
    }

    #[test]
    fn a_record_goes_on_a_line_of_its_own_and_dev_null_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, "[a]:22 ssh-ed25519 AAAA").unwrap();
        append(&file, "b", &key(), false).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("[a]:22 ssh-ed25519 AAAA\nb ssh-ed25519 "),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        // `UserKnownHostsFile /dev/null`: recorded nowhere, and no error.
        append(Path::new("/dev/null"), "b", &key(), false).unwrap();
    }
}
