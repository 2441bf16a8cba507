//! One session: an authenticated SSH connection and the SFTP channel opened on it on
//! first use. The channel is shared by every call on the session (SFTP multiplexes
//! requests by id, so many can be in flight at once) and reopened when it failed. The
//! extra SFTP channels a large transfer spreads over (its lanes) are opened by the
//! transfer itself on the same connection (see `crate::sftp`), within the channel slots
//! the connection keeps free for commands. A session that replaced one whose connection
//! dropped carries that news until the first call on it reports it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use crate::error::HostResult;
use crate::sftp::SftpChannel;
use crate::ssh::Connection;

/// An open session of the pool.
pub struct Session {
    pub connection: Arc<Connection>,
    /// The SFTP channel, once opened.
    sftp: Mutex<Option<Arc<SftpChannel>>>,
    /// Set when this session replaced one whose connection dropped, until a call
    /// reports it.
    reconnected: AtomicBool,
}

impl Session {
    /// A session on `connection`, with no SFTP channel yet.
    pub fn new(connection: Arc<Connection>) -> Self {
        Session {
            connection,
            sftp: Mutex::new(None),
            reconnected: AtomicBool::new(false),
        }
    }

    /// Marks this session as the replacement of one whose connection dropped.
    pub fn mark_reconnected(&self) {
        self.reconnected.store(true, Ordering::SeqCst);
    }

    /// True (once) when this session replaced one whose connection dropped: the first
    /// call to use it reports the reconnection.
    pub fn take_reconnected(&self) -> bool {
        self.reconnected.swap(false, Ordering::SeqCst)
    }

    /// The session's SFTP channel: opened on first use, shared by every call, and
    /// reopened when the previous one failed.
    pub async fn sftp(&self) -> HostResult<Arc<SftpChannel>> {
        let mut slot = self.sftp.lock().await;
        if let Some(open) = slot.as_ref().filter(|s| s.is_alive()) {
            return Ok(open.clone());
        }
        *slot = None;
        let opened = Arc::new(SftpChannel::open(&self.connection).await?);
        *slot = Some(opened.clone());
        Ok(opened)
    }

    /// Says goodbye to the server and closes the connection (and with it the SFTP
    /// channel).
    pub async fn close(&self) {
        self.connection.close().await;
    }
}
