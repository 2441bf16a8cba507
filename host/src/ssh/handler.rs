//! russh's callback object for one connection ([`ClientHandler`]): it verifies the host
//! key against known_hosts under the user's policy and collects what the handshake
//! revealed (`HandshakeFacts`) for the connection to report.

use std::sync::{Arc, Mutex};

use russh::client;
use russh::keys::PublicKey;

use super::host_key_prompt::{NewHostKey, PendingQuestion};
use super::known_hosts::{self, KnownHostsFiles, Verdict};
use super::target::Target;
use crate::config::HostKeyPolicy;
use crate::error::HostError;

/// What the handshake revealed, collected by the handler's callbacks.
#[derive(Default, Clone)]
pub(super) struct HandshakeFacts {
    pub(super) server_version: String,
    pub(super) server_key: Option<PublicKey>,
    pub(super) verdict: Option<Verdict>,
    /// Why the host key was refused, when it was.
    pub(super) refusal: Option<HostError>,
}

/// Whether a new host's key is written to known_hosts when the policy accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recording {
    Record,
    DryRun,
}

/// russh's callback object: checks the host key and records handshake facts.
pub struct ClientHandler {
    policy: HostKeyPolicy,
    recording: Recording,
    known_hosts: KnownHostsFiles,
    host: String,
    port: u16,
    facts: Arc<Mutex<HandshakeFacts>>,
    /// Under `ask`: where a new host's key is left for the user to be asked about.
    pending: PendingQuestion,
}

impl ClientHandler {
    /// A handler that verifies `target`'s host key under `policy` and reports what the
    /// handshake revealed into `facts`; under `ask`, a new key stops the handshake and is
    /// left in `pending`.
    pub(super) fn new(
        policy: HostKeyPolicy,
        recording: Recording,
        target: &Target,
        facts: Arc<Mutex<HandshakeFacts>>,
        pending: PendingQuestion,
    ) -> Self {
        ClientHandler {
            policy,
            recording,
            known_hosts: target.known_hosts.clone(),
            host: target.host.clone(),
            port: target.port,
            facts,
            pending,
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let check = match self.recording {
            Recording::Record => known_hosts::verify,
            Recording::DryRun => known_hosts::verify_without_recording,
        };
        let verdict = check(
            self.policy,
            &self.known_hosts,
            &self.host,
            self.port,
            server_public_key,
        );
        let verdict = match verdict {
            // Under `ask`, not even a dry run logs in on a key nobody confirmed.
            Ok(Verdict::WouldRecord) if self.policy == HostKeyPolicy::Ask => {
                let new_key = NewHostKey {
                    host: self.host.clone(),
                    port: self.port,
                    key: server_public_key.public_key(),
                    files: self.known_hosts.clone(),
                };
                if self.pending.lock().unwrap().ask_about(new_key) {
                    Err(HostError::HostKey(
                        "the host key is new: the user is asked about it first".into(),
                    ))
                } else {
                    Ok(Verdict::Recorded)
                }
            }
            other => other,
        };
        let mut facts = self.facts.lock().unwrap();
        facts.server_key = Some(server_public_key.public_key());
        match verdict {
            Ok(v) => {
                facts.verdict = Some(v);
                Ok(true)
            }
            Err(e) => {
                facts.refusal = Some(e);
                Ok(false)
            }
        }
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        _names: &russh::Names,
        session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        let mut facts = self.facts.lock().unwrap();
        if facts.server_version.is_empty() {
            facts.server_version = String::from_utf8_lossy(session.remote_sshid())
                .trim()
                .to_string();
        }
        Ok(())
    }
}
