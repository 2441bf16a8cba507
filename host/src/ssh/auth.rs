//! Client authentication, in OpenSSH's order: the ssh-agent (`SSH_AUTH_SOCK`), then key
//! files (each with its OpenSSH certificate `<key>-cert.pub` when present), then a
//! password only when the user set `MCP_SSH_PASSWORD` and named this host (see
//! [`Credentials`]). One error lists everything tried. Secrets stay here: they are never
//! logged and never leave the host.

use std::path::PathBuf;
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};

use super::handler::ClientHandler;
use super::key_file;
use super::russh_error::describe_russh_error;
use super::target::Target;
use crate::config::{Secret, Settings, home_dir};
use crate::error::{HostError, HostResult};

/// The secrets authentication may use for one target. The caller leaves out what the
/// target may not have: the password goes only to hosts the user named, and the
/// passphrase opens only key files the user configured.
pub struct Credentials<'a> {
    pub passphrase: Option<&'a Secret>,
    pub password: Option<&'a Secret>,
    /// Why a configured password was not offered to this target, for the error.
    pub password_withheld: Option<String>,
}

impl<'a> Credentials<'a> {
    /// What the user's settings allow `target` to use.
    pub fn for_target(target: &Target, settings: &'a Settings) -> Credentials<'a> {
        Credentials {
            passphrase: settings
                .key_passphrase
                .as_ref()
                .filter(|_| !target.key_from_request),
            password: settings
                .password
                .as_ref()
                .filter(|_| target.password_allowed),
            password_withheld: (settings.password.is_some() && !target.password_allowed).then(
                || {
                    format!(
                        "MCP_SSH_PASSWORD was not offered: {}:{} is neither the configured host \
                         (MCP_SSH_HOSTNAME) nor listed in MCP_SSH_PASSWORD_HOSTS, and the password \
                         goes only to hosts the user named",
                        target.host, target.port
                    )
                },
            ),
        }
    }
}

/// The key files to try: the target's own, else the default `~/.ssh/id_*` that exist.
pub fn key_files(target: &Target) -> Vec<PathBuf> {
    if !target.identity_files.is_empty() {
        return target.identity_files.clone();
    }
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| home_dir().join(".ssh").join(name))
        .filter(|p| p.exists())
        .collect()
}

/// Authenticates `target.username`, trying every method in turn.
pub async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    target: &Target,
    creds: Credentials<'_>,
) -> HostResult<()> {
    let user = target.username.clone();
    let failed = |e: russh::Error| {
        HostError::Connection(format!(
            "authentication failed: {}",
            describe_russh_error(&e)
        ))
    };
    let rsa_hash: Option<HashAlg> = handle
        .best_supported_rsa_hash()
        .await
        .map_err(failed)?
        .flatten();
    let files = key_files(target);
    let mut tried: Vec<String> = Vec::new();
    // Key files not used, with why (as OpenSSH skips a key others can read).
    let mut unusable: Vec<String> = Vec::new();

    // 1. The agent, limited to the configured keys under IdentitiesOnly.
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(mut agent) => {
                let identities = agent.request_identities().await.unwrap_or_default();
                let mut wanted: Vec<PublicKey> = Vec::new();
                for file in &files {
                    wanted.extend(key_file::load_public_key(file).await);
                }
                for identity in identities {
                    let public = identity.public_key().into_owned();
                    if target.identities_only
                        && !wanted.iter().any(|w| w.key_data() == public.key_data())
                    {
                        continue;
                    }
                    let result = match &identity {
                        AgentIdentity::Certificate { certificate, .. } => {
                            handle
                                .authenticate_certificate_with(
                                    user.clone(),
                                    certificate.clone(),
                                    rsa_hash,
                                    &mut agent,
                                )
                                .await
                        }
                        AgentIdentity::PublicKey { key, .. } => {
                            handle
                                .authenticate_publickey_with(
                                    user.clone(),
                                    key.clone(),
                                    rsa_hash,
                                    &mut agent,
                                )
                                .await
                        }
                    };
                    match result {
                        Ok(r) if r.success() => return Ok(()),
                        Ok(_) => {}
                        Err(e) => tracing::debug!("agent signing failed: {e:?}"),
                    }
                    tried.push(format!(
                        "agent key {} ({})",
                        known(&public),
                        public.algorithm()
                    ));
                }
                if tried.is_empty() {
                    tried.push("ssh-agent (no usable key)".into());
                }
            }
            Err(e) => tracing::debug!("ssh-agent not usable: {e:?}"),
        }
    }

    // 2. Key files, with their certificates.
    for path in &files {
        if let Some(refused) = key_file::unprotected(path).await {
            unusable.push(refused.message().to_string());
            continue;
        }
        let key = Arc::new(key_file::load_private_key(path, creds.passphrase).await?);
        let algorithm = key.algorithm().to_string();
        if let Some(cert) = key_file::load_certificate(path).await {
            let result = handle
                .authenticate_openssh_cert(user.clone(), key.clone(), cert)
                .await
                .map_err(failed)?;
            if result.success() {
                return Ok(());
            }
            tried.push(format!("{}-cert.pub (certificate)", path.display()));
        }
        let signer = PrivateKeyWithHashAlg::new(key, rsa_hash);
        let result = handle
            .authenticate_publickey(user.clone(), signer)
            .await
            .map_err(failed)?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!("{} ({algorithm})", path.display()));
    }

    // 3. A password, only when the user configured one.
    if let Some(password) = creds.password {
        let result = handle
            .authenticate_password(user.clone(), password.0.clone())
            .await
            .map_err(failed)?;
        if result.success() {
            return Ok(());
        }
        tried.push("password (MCP_SSH_PASSWORD)".into());
    }

    let withheld = creds
        .password_withheld
        .map(|why| format!(" {why}"))
        .unwrap_or_default();
    if tried.is_empty() && !unusable.is_empty() {
        return Err(HostError::Auth(format!(
            "no key could be used: {}.{withheld}",
            unusable.join("; ")
        )));
    }
    let unusable = if unusable.is_empty() {
        String::new()
    } else {
        format!(" Not used: {}.", unusable.join("; "))
    };
    if tried.is_empty() {
        return Err(HostError::Auth(format!(
            "no way to authenticate: no ssh-agent, no key file (set MCP_SSH_KEY_FILENAME, pass key_filename, or create \
             ~/.ssh/id_ed25519) and no MCP_SSH_PASSWORD.{withheld}"
        )));
    }
    Err(HostError::Auth(format!(
        "the server refused authentication for user '{}' on {}:{}; tried: {}. \
         Check the username and that the public key is in the server's authorized_keys.{unusable}{withheld}",
        target.username,
        target.host,
        target.port,
        tried.join(", ")
    )))
}

/// A short name for an agent key: its fingerprint.
fn known(key: &PublicKey) -> String {
    super::known_hosts::fingerprint(key)
}

/// Whether a way to authenticate is there to be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// It will be offered.
    Ready,
    /// Not configured or not present: nothing to fix unless it was meant to be there.
    Absent,
    /// Configured but unusable (an unreadable key file, an agent that does not answer).
    Broken,
}

/// One way [`authenticate`] would try, described without any secret.
#[derive(Debug, Clone)]
pub struct PlannedIdentity {
    pub availability: Availability,
    pub description: String,
}

/// The ways [`authenticate`] would try for `target`, in its order, without connecting:
/// the agent and how many keys it holds, each key file (opened with the configured
/// passphrase, as a login would) and its certificate, and whether a password would be
/// offered. Fingerprints and paths only: no secret is part of a description.
pub async fn planned_identities(target: &Target, creds: &Credentials<'_>) -> Vec<PlannedIdentity> {
    let entry = |availability, description: String| PlannedIdentity {
        availability,
        description,
    };
    let mut plan = Vec::new();
    match std::env::var_os("SSH_AUTH_SOCK") {
        None => plan.push(entry(
            Availability::Absent,
            "ssh-agent: none (SSH_AUTH_SOCK is not set)".into(),
        )),
        Some(socket) => {
            let socket = PathBuf::from(socket);
            match russh::keys::agent::client::AgentClient::connect_env().await {
                Ok(mut agent) => {
                    let keys = agent.request_identities().await.map_or(0, |i| i.len());
                    let only = if target.identities_only {
                        ", only those matching the configured key files (IdentitiesOnly)"
                    } else {
                        ""
                    };
                    plan.push(entry(
                        if keys > 0 {
                            Availability::Ready
                        } else {
                            Availability::Absent
                        },
                        format!("ssh-agent at {}: {keys} key(s){only}", socket.display()),
                    ));
                }
                Err(e) => plan.push(entry(
                    Availability::Broken,
                    format!(
                        "ssh-agent at {}: not reachable ({e}); check SSH_AUTH_SOCK",
                        socket.display()
                    ),
                )),
            }
        }
    }
    let files = key_files(target);
    if files.is_empty() {
        plan.push(entry(
            Availability::Absent,
            "key files: none (no MCP_SSH_KEY_FILENAME or IdentityFile, and no \
             ~/.ssh/id_ed25519, id_ecdsa or id_rsa)"
                .into(),
        ));
    }
    for path in &files {
        match key_file::load_private_key(path, creds.passphrase).await {
            Ok(key) => {
                let certificate = match key_file::load_certificate(path).await {
                    Some(_) => format!(", with the certificate {}-cert.pub", path.display()),
                    None => String::new(),
                };
                plan.push(entry(
                    Availability::Ready,
                    format!(
                        "key file {} ({} {}){certificate}",
                        path.display(),
                        key.algorithm(),
                        known(key.public_key())
                    ),
                ));
            }
            Err(e) => plan.push(entry(
                Availability::Broken,
                format!("key file {}: {}", path.display(), e.message()),
            )),
        }
    }
    plan.push(match (creds.password, &creds.password_withheld) {
        (Some(_), _) => entry(
            Availability::Ready,
            "password: MCP_SSH_PASSWORD is set and is offered to this host".into(),
        ),
        (None, Some(why)) => entry(Availability::Absent, format!("password: {why}")),
        (None, None) => entry(
            Availability::Absent,
            "password: none (MCP_SSH_PASSWORD is not set)".into(),
        ),
    });
    plan
}
