//! The host side of `local-read`: metadata and disk space of local paths (never file
//! contents), resolved by the configuration's local path policy and checked against the
//! component's grant scope and the user's policy.

use super::local_files::blocking;
use super::types::{wit_info, wit_space};
use super::work::OnCancel;
use crate::local;
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::{local_read, types};
use crate::plugin::state::CallState;

/// What the error says when a local call cannot finish.
const LOCAL_CALL: &str = "a local file system call";

impl local_read::Host for CallState {
    async fn stat(&mut self, path: String) -> Result<types::FileInfo, WitError> {
        self.host_work(OnCancel::Abandon, |host| async move {
            blocking(LOCAL_CALL, move || {
                local::stat(&host.resolve_local(&host.local_policy()?, &path)?, &path)
            })
            .await
        })
        .await
        .map(wit_info)
    }

    async fn disk_space(&mut self, path: String) -> Result<types::Space, WitError> {
        self.host_work(OnCancel::Abandon, |host| async move {
            blocking(LOCAL_CALL, move || {
                local::space(&host.resolve_local(&host.local_policy()?, &path)?)
            })
            .await
        })
        .await
        .map(wit_space)
    }
}
