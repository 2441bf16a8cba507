//! One authenticated SSH connection: connecting with a timeout, checking the host key,
//! authenticating with a key file, and describing the result (`SessionInfo`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use tokio::sync::Semaphore;

use super::known_hosts::{self, Verdict};
use crate::config::{HostKeyPolicy, Secret, Settings, expand_tilde, home_dir};
use crate::error::{HostError, HostResult};

/// Channels opened at once on one connection: OpenSSH's default `MaxSessions`.
pub const MAX_CHANNELS_PER_CONNECTION: usize = 10;

/// Where to connect, fully resolved from a request and the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// The key file; none means the default `~/.ssh/id_*` files.
    pub key_file: Option<PathBuf>,
}

impl Target {
    /// The name sessions to this target go by: `host`, or `host:port` off port 22.
    pub fn session_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A description of an open session. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub server_version: String,
    pub host_key_algorithm: String,
    pub host_key_fingerprint: String,
    pub connected_at: u64,
}

/// An open, authenticated connection.
pub struct Connection {
    pub target: Target,
    pub info: SessionInfo,
    /// True when this connection recorded a new host key.
    pub new_host_key_recorded: bool,
    handle: Handle<ClientHandler>,
    channel_slots: Arc<Semaphore>,
    /// The SFTP session on its own channel, opened on first use (see `crate::sftp`).
    sftp: tokio::sync::Mutex<Option<Arc<crate::sftp::SftpChannel>>>,
}

impl Connection {
    /// Connects, verifies the host key and authenticates, all within the connect timeout.
    pub async fn open(target: Target, settings: &Settings) -> HostResult<Connection> {
        let timeout = settings.connect_timeout();
        match tokio::time::timeout(timeout, Self::open_inner(target.clone(), settings)).await {
            Ok(result) => result,
            Err(_) => Err(HostError::TimedOut(format!(
                "connecting to {}@{}:{} took longer than {:.0} s (MCP_SSH_CONNECT_TIMEOUT); check that the host is up and reachable",
                target.username,
                target.host,
                target.port,
                timeout.as_secs_f64()
            ))),
        }
    }

    async fn open_inner(target: Target, settings: &Settings) -> HostResult<Connection> {
        let keys = load_keys(&target, settings.key_passphrase.as_ref())?;
        let facts = Arc::new(Mutex::new(HandshakeFacts::default()));
        let handler = ClientHandler {
            policy: settings.strict_host_key_checking,
            known_hosts: settings.known_hosts_path(),
            host: target.host.clone(),
            port: target.port,
            facts: facts.clone(),
        };
        let config = Arc::new(client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            window_size: 16 * 1024 * 1024,
            ..Default::default()
        });
        let address = (target.host.as_str(), target.port);
        let connected = client::connect(config, address, handler).await;
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                let refused = facts.lock().unwrap().refusal.take();
                return Err(refused.unwrap_or_else(|| {
                    HostError::Connection(format!(
                        "cannot connect to {}:{}: {}",
                        target.host,
                        target.port,
                        describe_russh_error(&e)
                    ))
                }));
            }
        };
        authenticate(&mut handle, &target, keys).await?;
        let facts = facts.lock().unwrap().clone();
        let key = facts
            .server_key
            .ok_or_else(|| HostError::Connection("the server sent no host key".into()))?;
        let info = SessionInfo {
            name: target.session_name(),
            host: target.host.clone(),
            port: target.port,
            username: target.username.clone(),
            server_version: facts.server_version,
            host_key_algorithm: key.algorithm().to_string(),
            host_key_fingerprint: known_hosts::fingerprint(&key),
            connected_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        tracing::info!(session = %info.name, user = %info.username, fingerprint = %info.host_key_fingerprint, "SSH session open");
        Ok(Connection {
            target,
            info,
            new_host_key_recorded: facts.verdict == Some(Verdict::Recorded),
            handle,
            channel_slots: Arc::new(Semaphore::new(MAX_CHANNELS_PER_CONNECTION)),
            sftp: tokio::sync::Mutex::new(None),
        })
    }

    /// True once the connection has dropped.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Opens a session channel, waiting for a free slot when `MaxSessions` channels are
    /// already open. The slot is held until the returned guard is dropped.
    pub async fn open_channel(&self) -> HostResult<(russh::Channel<client::Msg>, ChannelSlot)> {
        let permit = self
            .channel_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HostError::Connection("the session is closing".into()))?;
        let channel = self.handle.channel_open_session().await.map_err(|e| {
            HostError::Connection(format!(
                "cannot open a channel on {}: {}; the connection may have dropped, try again",
                self.info.name,
                describe_russh_error(&e)
            ))
        })?;
        Ok((channel, ChannelSlot { _permit: permit }))
    }

    /// The connection's SFTP session: opened on first use, shared by every call, and
    /// reopened when the previous one failed.
    pub async fn sftp(&self) -> HostResult<Arc<crate::sftp::SftpChannel>> {
        let mut slot = self.sftp.lock().await;
        if let Some(open) = slot.as_ref().filter(|s| s.is_alive()) {
            return Ok(open.clone());
        }
        *slot = None;
        let opened = Arc::new(crate::sftp::SftpChannel::open(self).await?);
        *slot = Some(opened.clone());
        Ok(opened)
    }

    /// Says goodbye to the server and closes the connection.
    pub async fn close(&self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "mcpssh disconnect", "en")
            .await;
    }
}

/// Holds one of the connection's channel slots while a channel is open.
pub struct ChannelSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// What the handshake revealed, collected by the handler's callbacks.
#[derive(Default, Clone)]
struct HandshakeFacts {
    server_version: String,
    server_key: Option<PublicKey>,
    verdict: Option<Verdict>,
    refusal: Option<HostError>,
}

/// russh's callback object: checks the host key and records handshake facts.
struct ClientHandler {
    policy: HostKeyPolicy,
    known_hosts: PathBuf,
    host: String,
    port: u16,
    facts: Arc<Mutex<HandshakeFacts>>,
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        let verdict =
            known_hosts::verify(self.policy, &self.known_hosts, &self.host, self.port, &key);
        let mut facts = self.facts.lock().unwrap();
        facts.server_key = Some(key);
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

/// Private keys to try, loaded from the configured file or the default ones.
fn load_keys(
    target: &Target,
    passphrase: Option<&Secret>,
) -> HostResult<Vec<(PathBuf, russh::keys::PrivateKey)>> {
    let candidates: Vec<PathBuf> = match &target.key_file {
        Some(path) => vec![path.clone()],
        None => ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| home_dir().join(".ssh").join(name))
            .filter(|p| p.exists())
            .collect(),
    };
    if candidates.is_empty() {
        return Err(HostError::Auth(
            "no private key: set MCP_SSH_KEY_FILENAME, pass key_filename, or create ~/.ssh/id_ed25519".into(),
        ));
    }
    let mut keys = Vec::new();
    for path in candidates {
        let key = russh::keys::load_secret_key(&path, passphrase.map(|s| s.0.as_str())).map_err(|e| {
            let shown = path.display();
            match e {
                russh::keys::Error::KeyIsEncrypted => HostError::Auth(format!(
                    "the key {shown} is encrypted: set MCP_SSH_KEY_PASSPHRASE to its passphrase"
                )),
                russh::keys::Error::IO(io) => HostError::from_io(&format!("cannot read the key {shown}"), &io),
                other => HostError::Auth(format!(
                    "cannot load the key {shown}: {other} (wrong passphrase, or not a private key?)"
                )),
            }
        })?;
        keys.push((path, key));
    }
    Ok(keys)
}

/// Public-key authentication with each key in turn; one clear error listing what was tried.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    target: &Target,
    keys: Vec<(PathBuf, russh::keys::PrivateKey)>,
) -> HostResult<()> {
    let rsa_hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|e| HostError::Connection(describe_russh_error(&e)))?
        .flatten();
    let mut tried = Vec::new();
    for (path, key) in keys {
        let algorithm = key.algorithm().to_string();
        let signer = PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash);
        let result = handle
            .authenticate_publickey(target.username.clone(), signer)
            .await
            .map_err(|e| {
                HostError::Connection(format!(
                    "authentication failed: {}",
                    describe_russh_error(&e)
                ))
            })?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!("{} ({algorithm})", path.display()));
    }
    Err(HostError::Auth(format!(
        "the server refused public-key authentication for user '{}' on {}:{}; tried: {}. \
         Check the username and that the public key is in the server's authorized_keys.",
        target.username,
        target.host,
        target.port,
        tried.join(", ")
    )))
}

/// A short, user-facing description of a russh error.
pub fn describe_russh_error(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::Disconnect => "the server closed the connection".into(),
        russh::Error::ConnectionTimeout => "the connection timed out".into(),
        other => other.to_string(),
    }
}

/// Resolves the key file path given by a request or the configuration.
pub fn key_path(path: &str) -> PathBuf {
    expand_tilde(path)
}
