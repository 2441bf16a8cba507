//! Asking the user before trusting a new host's key (`MCP_SSH_STRICT_HOST_KEY_CHECKING=ask`,
//! OpenSSH's own default): the first connection to a host whose key no known_hosts file
//! holds is stopped after the key exchange, the user is shown the host and the key's
//! fingerprint, and only an accepted key is recorded before connecting again (the second
//! connection must present the recorded key, so nothing can be swapped in between).
//! Waiting for the answer does not count against the connect timeout, and no
//! connection is held open meanwhile (the server's login grace time cannot expire).
//!
//! Who asks is the caller's business: [`HostKeyPrompt`] is implemented by the MCP layer
//! (an elicitation); without one, an unknown host is refused, naming the fix.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use russh::keys::{PublicKey, PublicKeyOrCertificate};

use super::known_hosts::{self, KnownHostsFiles, Verdict};
use crate::config::HostKeyPolicy;
use crate::error::{HostError, HostResult};

/// The user's answer to a question about a new host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptAnswer {
    Accepted,
    Declined,
    /// Nobody can be asked (the client cannot, or asking failed), and why.
    Unavailable(String),
}

/// Shows the user a question (plain text) and returns their answer.
pub trait HostKeyPrompt: Send + Sync {
    fn ask(&self, question: String) -> BoxFuture<'static, PromptAnswer>;
}

/// A key the handshake stopped at because the user must be asked about it first.
#[derive(Debug, Clone)]
pub struct NewHostKey {
    pub host: String,
    pub port: u16,
    pub key: PublicKey,
    pub files: KnownHostsFiles,
}

/// One connect's questions, shared by its handshakes (its jump hosts' included): the key
/// the user must be asked about next, and the keys they accepted, which its later
/// attempts trust even where the known_hosts file keeps nothing (`UserKnownHostsFile
/// /dev/null`), so an accepted key is never asked about twice.
#[derive(Debug, Default)]
pub struct Questions {
    pending: Option<NewHostKey>,
    accepted: Vec<NewHostKey>,
}

/// [`Questions`], shared by the handlers of one connect.
pub type PendingQuestion = Arc<Mutex<Questions>>;

impl Questions {
    /// `key` stopped the handshake: the user is to be asked about it. False when the user
    /// already accepted it during this connect (the handshake goes on).
    pub fn ask_about(&mut self, key: NewHostKey) -> bool {
        if self.accepted.iter().any(|a| a.same(&key)) {
            return false;
        }
        self.pending = Some(key);
        true
    }

    /// The key to ask about, if a handshake stopped at one.
    pub fn take(&mut self) -> Option<NewHostKey> {
        self.pending.take()
    }

    /// The user accepted `key`.
    pub fn accepted(&mut self, key: NewHostKey) {
        self.accepted.push(key);
    }
}

impl NewHostKey {
    /// The same key for the same host and port.
    fn same(&self, other: &NewHostKey) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && self.key.key_data() == other.key.key_data()
    }

    /// The question the user sees, in OpenSSH's words.
    pub fn question(&self) -> String {
        let pattern = known_hosts::host_pattern(&self.host.to_ascii_lowercase(), self.port);
        let file = self
            .files
            .user
            .first()
            .map_or("known_hosts".into(), |f| f.display().to_string());
        format!(
            "The authenticity of host {pattern} can't be established: it is not in your known_hosts \
             files, and mcpssh is connecting to it for the first time.\n\n\
             {} key fingerprint: {}\n\n\
             Accept only if this is the fingerprint you expect (ask the host's administrator, or \
             compare with `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host). Accepting \
             records the key in {file} and connects; declining refuses the connection \
             (MCP_SSH_STRICT_HOST_KEY_CHECKING=ask).",
            self.key.algorithm(),
            known_hosts::fingerprint(&self.key)
        )
    }

    /// Acts on the user's answer: an accepted key is recorded (and must still be new:
    /// one recorded meanwhile is compared as any other), anything else is refused.
    pub fn settle(&self, answer: PromptAnswer) -> HostResult<Verdict> {
        let pattern = known_hosts::host_pattern(&self.host.to_ascii_lowercase(), self.port);
        let fingerprint = known_hosts::fingerprint(&self.key);
        match answer {
            PromptAnswer::Accepted => known_hosts::verify(
                HostKeyPolicy::AcceptNew,
                &self.files,
                &self.host,
                self.port,
                &PublicKeyOrCertificate::PublicKey {
                    key: self.key.clone(),
                    hash_alg: None,
                },
            ),
            PromptAnswer::Declined => Err(HostError::HostKey(format!(
                "you declined to trust the host key of {pattern} ({fingerprint}); nothing was \
                 recorded and no connection was made"
            ))),
            PromptAnswer::Unavailable(why) => Err(HostError::HostKey(format!(
                "the host key of {pattern} ({} {fingerprint}) is new, and \
                 MCP_SSH_STRICT_HOST_KEY_CHECKING=ask needs you to confirm it, but {why}. Verify \
                 the fingerprint and add the key yourself (`ssh-keyscan -p {} {} >> ~/.ssh/known_hosts`), \
                 or use a client that supports elicitation",
                self.key.algorithm(),
                self.port,
                self.host
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    use super::*;

    fn new_key(dir: &tempfile::TempDir) -> NewHostKey {
        NewHostKey {
            host: "Web.Example".into(),
            port: 2222,
            key: PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
                .public_key()
                .clone(),
            files: KnownHostsFiles {
                user: vec![dir.path().join("known_hosts")],
                global: Vec::new(),
                hash_new_entries: false,
            },
        }
    }

    fn recorded(dir: &tempfile::TempDir) -> String {
        std::fs::read_to_string(dir.path().join("known_hosts")).unwrap_or_default()
    }

    #[test]
    fn ask_never_records_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let new = new_key(&dir);
        let presented = PublicKeyOrCertificate::PublicKey {
            key: new.key.clone(),
            hash_alg: None,
        };
        let verdict =
            known_hosts::verify(HostKeyPolicy::Ask, &new.files, &new.host, 2222, &presented);
        assert_eq!(verdict.unwrap(), Verdict::WouldRecord);
        assert_eq!(recorded(&dir), "");
    }

    #[test]
    fn the_question_shows_host_and_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let new = new_key(&dir);
        let question = new.question();
        assert!(
            question.contains("[web.example]:2222")
                && question.contains(&known_hosts::fingerprint(&new.key))
                && question.contains(&dir.path().join("known_hosts").display().to_string()),
            "{question}"
        );
    }

    #[test]
    fn only_an_accepted_key_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let new = new_key(&dir);
        let declined = new.settle(PromptAnswer::Declined).unwrap_err();
        assert!(declined.message().contains("declined"), "{declined:?}");
        let unavailable = new
            .settle(PromptAnswer::Unavailable("this client cannot ask".into()))
            .unwrap_err();
        assert!(
            unavailable.message().contains("this client cannot ask")
                && unavailable.message().contains("ssh-keyscan -p 2222"),
            "{unavailable:?}"
        );
        assert_eq!(recorded(&dir), "", "nothing recorded unless accepted");
        assert_eq!(
            new.settle(PromptAnswer::Accepted).unwrap(),
            Verdict::Recorded
        );
        assert!(recorded(&dir).starts_with("[web.example]:2222 ssh-ed25519 "));
        // Accepted twice (two connections asked at once): the second finds it known.
        assert_eq!(new.settle(PromptAnswer::Accepted).unwrap(), Verdict::Known);
    }
}
