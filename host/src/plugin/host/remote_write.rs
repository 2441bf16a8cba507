//! The host side of `remote-write`: removing files, making directories and renaming on
//! the remote host over SFTP, within the component's grant scope (read-only scopes refuse
//! them all) and the user's policy.

use super::remote_paths::Access;
use super::work::OnCancel;
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::remote_write;
use crate::plugin::state::CallState;
use crate::sftp;

impl remote_write::Host for CallState {
    async fn remove_file(&mut self, session: Option<String>, path: String) -> Result<(), WitError> {
        let what = "removing a file";
        self.host_work(OnCancel::Abandon, |host| async move {
            let [path] = host
                .in_scope(Some(what), &session, [(&path, Access::Entry)])
                .await?;
            host.with_sftp(what, session, |_, s| async move {
                sftp::remove_file(&s, &path).await
            })
            .await
        })
        .await
    }

    async fn make_dir(&mut self, session: Option<String>, path: String) -> Result<(), WitError> {
        let what = "creating a directory";
        self.host_work(OnCancel::Abandon, |host| async move {
            let [path] = host
                .in_scope(Some(what), &session, [(&path, Access::Entry)])
                .await?;
            host.with_sftp(what, session, |_, s| async move {
                sftp::make_dir(&s, &path).await
            })
            .await
        })
        .await
    }

    async fn rename(
        &mut self,
        session: Option<String>,
        source: String,
        destination: String,
        overwrite: bool,
    ) -> Result<(), WitError> {
        let what = "renaming a file";
        self.host_work(OnCancel::Abandon, |host| async move {
            let [source, destination] = host
                .in_scope(
                    Some(what),
                    &session,
                    [(&source, Access::Entry), (&destination, Access::Entry)],
                )
                .await?;
            host.with_sftp(what, session, |_, s| async move {
                sftp::rename(&s, &source, &destination, overwrite).await
            })
            .await
        })
        .await
    }
}
