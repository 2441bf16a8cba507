//! What the interfaces that touch local files (`local-read`, `transfer`) share: the local
//! path policy of the configuration, and running blocking file system calls off the
//! async threads.

use std::path::PathBuf;

use crate::error::{HostError, HostResult};
use crate::local::LocalPolicy;
use crate::plugin::state::CallHost;

impl CallHost {
    /// The local path policy of the configuration. Blocking (it reads `~/.ssh/config` and
    /// its includes for the protected paths): call it inside [`blocking`].
    pub fn local_policy(&self) -> HostResult<LocalPolicy> {
        LocalPolicy::from_settings(&self.services.settings)
    }

    /// `path` resolved by `policy` (roots, protected paths, symlinks), then checked
    /// against the component's grant scope and the user's policy. Blocking file system
    /// work: call it inside [`blocking`].
    pub fn resolve_local(&self, policy: &LocalPolicy, path: &str) -> HostResult<PathBuf> {
        let resolved = policy.resolve(path)?;
        self.scope.check_local(&resolved)?;
        self.call.gate.check_local(&resolved)?;
        Ok(resolved)
    }
}

/// Runs blocking file system work (`what`, for the error when it cannot finish) off the
/// async threads.
pub async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> HostResult<T> + Send + 'static,
) -> HostResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Other(format!("{what} failed: {e}")))?
}
