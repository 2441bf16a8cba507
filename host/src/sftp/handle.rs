//! An open remote file handle that is closed even when its owner forgets or is dropped
//! (a cancelled transfer): closing then happens in the background.

use std::sync::Arc;
use std::time::Duration;

use super::SftpChannel;
use crate::error::HostResult;

/// How long a background close may take before it is abandoned.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Closes a remote handle when dropped (in the background).
pub(super) struct RemoteHandle {
    sftp: Arc<SftpChannel>,
    handle: Option<String>,
}

impl RemoteHandle {
    pub(super) fn new(sftp: Arc<SftpChannel>, handle: String) -> Self {
        RemoteHandle {
            sftp,
            handle: Some(handle),
        }
    }

    pub(super) fn get(&self) -> &str {
        self.handle.as_deref().unwrap_or_default()
    }

    /// Closes the handle now, reporting a failure.
    pub(super) async fn close(mut self, path: &str) -> HostResult<()> {
        let handle = self.handle.take().unwrap_or_default();
        self.sftp
            .raw()
            .close(handle)
            .await
            .map(drop)
            .map_err(|e| self.sftp.fail("cannot close", path, e))
    }
}

impl Drop for RemoteHandle {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let sftp = self.sftp.clone();
            crate::cleanup::spawn(async move {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sftp.raw().close(handle)).await;
            });
        }
    }
}
