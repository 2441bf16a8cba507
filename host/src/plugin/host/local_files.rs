//! What the interfaces that touch local files (`local-read`, `transfer`) share: the local
//! path policy of the configuration, and running blocking file system calls off the
//! async threads.

use crate::error::{HostError, HostResult};
use crate::local::LocalPolicy;
use crate::plugin::state::CallHost;

impl CallHost {
    /// The local path policy of the configuration.
    pub fn local_policy(&self) -> HostResult<LocalPolicy> {
        LocalPolicy::from_settings(&self.services.settings)
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
