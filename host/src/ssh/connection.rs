//! One authenticated SSH connection: connecting with a timeout (directly or through
//! ProxyJump hops, each verified), checking the host key (`handler`; a new one asked
//! about first under `ask`, see `host_key_prompt`), authenticating
//! (`auth`), describing the result (`SessionInfo`), and opening channels on it within
//! the server's `MaxSessions` (`ChannelSlot`), one kept open ahead of need
//! (`ready_channel`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::client::{self, Handle};
use tokio::sync::Semaphore;

use super::auth;
pub use super::channel_slot::ChannelSlot;
use super::channel_slot::SlottedChannel;
use super::handler::{ClientHandler, HandshakeFacts, Recording};
use super::host_key_prompt::{HostKeyPrompt, NewHostKey, PendingQuestion, PromptAnswer};
use super::known_hosts::{self, Verdict};
use super::ready_channel::ReadyChannel;
use super::russh_error::describe_russh_error;
use super::shell::LoginShell;
use super::target::Target;
use crate::config::Settings;
use crate::error::{HostError, HostResult};

/// Channels opened at once on one connection: OpenSSH's default `MaxSessions`.
pub const MAX_CHANNELS_PER_CONNECTION: usize = 10;

/// Channel slots that optional channels leave free for commands and other calls.
pub const SPARE_CHANNELS_KEPT: usize = 4;

/// How long the server may take to open the channel kept ready.
const READY_CHANNEL_OPEN_LIMIT: Duration = Duration::from_secs(30);

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
    /// The remote user's login shell, detected once when the session opened (by the
    /// pool, see `shell_probe`).
    pub shell: LoginShell,
}

/// What [`Connection::probe`] found.
pub enum Probe {
    Connected(Box<Connection>),
    /// Under `ask`, a host key nobody confirmed yet (the target's or a jump host's): the
    /// probe stopped before logging in.
    NewKeyToConfirm(Box<NewHostKey>),
}

/// An open, authenticated connection.
pub struct Connection {
    pub target: Target,
    pub info: SessionInfo,
    /// True when this connection recorded a new host key.
    pub new_host_key_recorded: bool,
    /// What host key verification concluded.
    pub host_key_verdict: Verdict,
    handle: Arc<Handle<ClientHandler>>,
    channel_slots: Arc<Semaphore>,
    /// The channel opened ahead of the next one asked for.
    ready: Arc<ReadyChannel>,
    /// The jump host connection this one runs through, kept open with it.
    _jump: Option<Arc<Connection>>,
}

impl Connection {
    /// Connects, verifies the host key and authenticates, each attempt within the connect
    /// timeout. Under `MCP_SSH_STRICT_HOST_KEY_CHECKING=ask`, a new host key (the target's
    /// or a jump host's) is put to the user through `prompt` between attempts, and
    /// recorded if they accept; without a prompt it is refused.
    pub async fn open(
        target: Target,
        settings: &Settings,
        prompt: Option<Arc<dyn HostKeyPrompt>>,
    ) -> HostResult<Connection> {
        Box::pin(Self::open_asking(target, settings, prompt)).await
    }

    /// As [`Connection::open`], but a new host key is not recorded (the verdict says
    /// [`Verdict::WouldRecord`] instead) and nobody is asked: for checking a
    /// configuration without changing it. Under `ask`, a new key stops the probe before
    /// any login: it is returned for the caller to show.
    pub async fn probe(target: Target, settings: &Settings) -> HostResult<Probe> {
        let pending = PendingQuestion::default();
        let opened = Box::pin(Self::open_timed(
            target,
            settings,
            Recording::DryRun,
            pending.clone(),
        ))
        .await;
        match pending.lock().unwrap().take() {
            Some(new_key) => Ok(Probe::NewKeyToConfirm(Box::new(new_key))),
            None => opened.map(|c| Probe::Connected(Box::new(c))),
        }
    }

    async fn open_asking(
        target: Target,
        settings: &Settings,
        prompt: Option<Arc<dyn HostKeyPrompt>>,
    ) -> HostResult<Connection> {
        let pending = PendingQuestion::default();
        let mut accepted_for_target = false;
        // Each accepted key lets the next attempt past it: the jump hosts' and the
        // target's may all be new, one question each.
        for _ in 0..=target.proxy_jump.len() + 1 {
            let opened =
                Self::open_timed(target.clone(), settings, Recording::Record, pending.clone())
                    .await;
            let Some(new_key) = pending.lock().unwrap().take() else {
                return opened.map(|mut connection| {
                    if accepted_for_target {
                        connection.new_host_key_recorded = true;
                        connection.host_key_verdict = Verdict::Recorded;
                    }
                    connection
                });
            };
            let answer = match &prompt {
                Some(prompt) => prompt.ask(new_key.question()).await,
                None => PromptAnswer::Unavailable(
                    "nobody can be asked here (no MCP client: `mcpssh call` or `doctor`)".into(),
                ),
            };
            tracing::info!(host = %new_key.host, port = new_key.port, answer = ?answer, "asked about a new host key");
            let verdict = new_key.settle(answer)?;
            accepted_for_target |= verdict == Verdict::Recorded
                && new_key.host == target.host
                && new_key.port == target.port;
            pending.lock().unwrap().accepted(new_key);
        }
        Err(HostError::HostKey(format!(
            "connecting to {} asked about more new host keys than it has hops; try again",
            target.name
        )))
    }

    async fn open_timed(
        target: Target,
        settings: &Settings,
        recording: Recording,
        pending: PendingQuestion,
    ) -> HostResult<Connection> {
        let timeout = target.connect_timeout;
        match tokio::time::timeout(
            timeout,
            Self::open_inner(target.clone(), settings, recording, pending),
        )
        .await
        {
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

    async fn open_inner(
        target: Target,
        settings: &Settings,
        recording: Recording,
        pending: PendingQuestion,
    ) -> HostResult<Connection> {
        known_hosts::check_host_name(&target.host)?;
        let facts = Arc::new(Mutex::new(HandshakeFacts::default()));
        let handler = ClientHandler::new(
            target.host_key_policy,
            recording,
            &target,
            facts.clone(),
            pending.clone(),
        );
        let config = Arc::new(client::Config {
            keepalive_interval: Some(target.keepalive),
            keepalive_max: 3,
            nodelay: true,
            window_size: 16 * 1024 * 1024,
            preferred: preferred_algorithms(known_hosts::covered_by_authority(
                &target.known_hosts,
                &target.host,
                target.port,
            )),
            ..Default::default()
        });
        let unreachable = |e: &dyn std::fmt::Display| {
            HostError::Connection(format!(
                "cannot connect to {}:{}: {e}",
                target.host, target.port
            ))
        };
        // Directly, or through the last jump host (whose own hops are opened first).
        let (connected, jump) = match target.proxy_jump.split_last() {
            None => {
                let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
                    .await
                    .map_err(|e| unreachable(&e))?;
                let stream = super::socket::ssh_stream(tcp);
                (client::connect_stream(config, stream, handler).await, None)
            }
            Some((last, before)) => {
                let mut hop = last.clone();
                hop.proxy_jump = before.to_vec();
                let jump = Arc::new(
                    Box::pin(Connection::open_inner(hop, settings, recording, pending))
                        .await
                        .map_err(|e| e.context(&format!("via jump host {}", last.name)))?,
                );
                let channel = jump
                    .handle
                    .channel_open_direct_tcpip(
                        target.host.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| {
                        unreachable(&format!(
                            "the jump host {} refused to forward: {}",
                            last.name,
                            describe_russh_error(&e)
                        ))
                    })?;
                (
                    client::connect_stream(config, channel.into_stream(), handler).await,
                    Some(jump),
                )
            }
        };
        let mut handle = match connected {
            Ok(h) => h,
            Err(e) => {
                let refused = facts.lock().unwrap().refusal.take();
                return Err(refused.unwrap_or_else(|| unreachable(&describe_russh_error(&e))));
            }
        };
        let creds = auth::Credentials::for_target(&target, settings);
        auth::authenticate(&mut handle, &target, creds).await?;
        let facts = facts.lock().unwrap().clone();
        let key = facts
            .server_key
            .ok_or_else(|| HostError::Connection("the server sent no host key".into()))?;
        let info = SessionInfo {
            name: target.name.clone(),
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
            shell: LoginShell::unknown(),
        };
        tracing::info!(session = %info.name, user = %info.username, fingerprint = %info.host_key_fingerprint, "SSH session open");
        Ok(Connection {
            target,
            info,
            new_host_key_recorded: facts.verdict == Some(Verdict::Recorded),
            host_key_verdict: facts.verdict.unwrap_or(Verdict::Unchecked),
            handle: Arc::new(handle),
            ready: Arc::default(),
            _jump: jump,
            channel_slots: Arc::new(Semaphore::new(MAX_CHANNELS_PER_CONNECTION)),
        })
    }

    /// True once the connection has dropped.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// A session channel: the one kept ready if there is one, otherwise a new one,
    /// waiting for a free slot when `MaxSessions` channels are already open. The slot is
    /// held until the returned guard is dropped. A caller that runs commands calls
    /// [`Connection::open_channel_ahead`] once its request is on its way, so that the
    /// next channel is opened while the command runs, not before the request.
    pub async fn open_channel(&self) -> HostResult<SlottedChannel> {
        match self.ready.take() {
            Some(ready) => Ok(ready),
            None => self.open_new_channel().await,
        }
    }

    async fn open_new_channel(&self) -> HostResult<SlottedChannel> {
        // Wait for a free slot, or for a channel kept ready meanwhile: it holds a slot
        // that would otherwise stay out of reach.
        let permit = loop {
            let kept = self.ready.kept();
            tokio::pin!(kept);
            kept.as_mut().enable();
            if let Some(ready) = self.ready.take() {
                return Ok(ready);
            }
            tokio::select! {
                permit = self.channel_slots.clone().acquire_owned() => break permit
                    .map_err(|_| HostError::Connection("the session is closing".into()))?,
                _ = kept => {}
            }
        };
        // The server frees a session slot only once it has processed our close, so
        // an open right after one finished can be refused: wait and try again (or take
        // the channel kept ready, if its opening took the server's last slot).
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        let channel = loop {
            match self.handle.channel_open_session().await {
                Ok(channel) => break channel,
                Err(russh::Error::ChannelOpenFailure(reason))
                    if started.elapsed() < Duration::from_secs(10) =>
                {
                    if let Some(ready) = self.ready.take() {
                        return Ok(ready);
                    }
                    attempt += 1;
                    tracing::debug!(session = %self.info.name, ?reason, attempt, "channel refused; retrying");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(10)) * 20))
                        .await;
                }
                Err(e) => {
                    return Err(HostError::Connection(format!(
                        "cannot open a channel on {}: {}; the connection may have dropped, try again",
                        self.info.name,
                        describe_russh_error(&e)
                    )));
                }
            }
        };
        Ok((channel, ChannelSlot::new(permit)))
    }

    /// Opens the channel kept ready for the next caller, in the background, unless one is
    /// kept or being opened, or the connection has no more than [`SPARE_CHANNELS_KEPT`]
    /// free slots.
    pub fn open_channel_ahead(&self) {
        if self.channel_slots.available_permits() <= SPARE_CHANNELS_KEPT
            || self.handle.is_closed()
            || !self.ready.claim_opening()
        {
            return;
        }
        let Ok(permit) = self.channel_slots.clone().try_acquire_owned() else {
            self.ready.opening_failed();
            return;
        };
        let (handle, ready, name) = (
            self.handle.clone(),
            self.ready.clone(),
            self.info.name.clone(),
        );
        tokio::spawn(async move {
            // Bounded: a server that never answers must not keep the connection alive.
            let opened =
                tokio::time::timeout(READY_CHANNEL_OPEN_LIMIT, handle.channel_open_session());
            match opened.await {
                Ok(Ok(channel)) => ready.keep((channel, ChannelSlot::new(permit))),
                Ok(Err(e)) => {
                    ready.opening_failed();
                    tracing::debug!(session = %name, "channel kept ready refused: {}", describe_russh_error(&e));
                }
                Err(_) => {
                    ready.opening_failed();
                    tracing::debug!(session = %name, "channel kept ready: no answer from the server");
                }
            }
        });
    }

    /// A channel now if more than [`SPARE_CHANNELS_KEPT`] of the connection's slots are
    /// free and the server accepts it at once; `None` otherwise (never waits for a slot,
    /// never retries). For optional extra channels, such as the additional lanes of a
    /// large transfer, which must not make commands wait.
    pub async fn try_open_spare_channel(&self) -> Option<SlottedChannel> {
        if self.channel_slots.available_permits() <= SPARE_CHANNELS_KEPT {
            return None;
        }
        let permit = self.channel_slots.clone().try_acquire_owned().ok()?;
        match self.handle.channel_open_session().await {
            Ok(channel) => Some((channel, ChannelSlot::new(permit))),
            Err(e) => {
                tracing::debug!(session = %self.info.name, "optional channel refused: {}", describe_russh_error(&e));
                None
            }
        }
    }

    /// Says goodbye to the server and closes the connection.
    pub async fn close(&self) {
        self.ready.clear();
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "mcpssh disconnect", "en")
            .await;
    }
}

/// russh's default algorithms, with AES-256-GCM first where the CPU has AES instructions:
/// as safe as ChaCha20-Poly1305 and several times cheaper per byte, which is what bounds
/// transfer speed on a loaded machine (for both ends). With `host_certificates` (a
/// `@cert-authority` entry covers the host), host certificates are asked for first.
fn preferred_algorithms(host_certificates: bool) -> russh::Preferred {
    let mut preferred = russh::Preferred::default();
    if host_certificates {
        preferred.host_key_certificates = preferred.key.clone();
    }
    #[cfg(target_arch = "x86_64")]
    let hardware_aes = std::arch::is_x86_feature_detected!("aes");
    #[cfg(target_arch = "aarch64")]
    let hardware_aes = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let hardware_aes = false;
    if hardware_aes {
        let mut ciphers = vec![russh::cipher::AES_256_GCM];
        ciphers.extend(
            preferred
                .cipher
                .iter()
                .filter(|c| **c != russh::cipher::AES_256_GCM),
        );
        preferred.cipher = ciphers.into();
    }
    preferred
}
