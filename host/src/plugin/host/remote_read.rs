//! The host side of `remote-read`: metadata of remote paths (stat, directory listings,
//! disk space, canonical paths) over SFTP, within the component's grant scope. Nothing
//! here changes anything, so a request whose SFTP channel died is made once more.

use super::remote_paths::Access;
use super::types::{wit_info, wit_space};
use super::work::OnCancel;
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::{remote_read, types};
use crate::plugin::state::CallState;
use crate::sftp;

impl remote_read::Host for CallState {
    async fn stat(
        &mut self,
        session: Option<String>,
        path: String,
        follow: bool,
    ) -> Result<types::FileInfo, WitError> {
        let access = if follow {
            Access::Follow
        } else {
            Access::Entry
        };
        self.host_work(OnCancel::Abandon, |host| async move {
            let [checked] = host.in_scope(None, &session, [(&path, access)]).await?;
            let checked = &checked;
            let mut info = host
                .with_sftp_retry(session, |_, s| async move {
                    sftp::stat(&s, checked, follow).await
                })
                .await?;
            info.name = path;
            Ok(wit_info(info))
        })
        .await
    }

    async fn list_dir(
        &mut self,
        session: Option<String>,
        path: String,
        limit: u32,
    ) -> Result<(Vec<types::FileInfo>, bool), WitError> {
        self.host_work(OnCancel::Abandon, |host| async move {
            let [path] = host
                .in_scope(None, &session, [(&path, Access::Follow)])
                .await?;
            let path = &path;
            let (entries, more) = host
                .with_sftp_retry(session, |_, s| async move {
                    sftp::list_dir(&s, path, limit).await
                })
                .await?;
            Ok((entries.into_iter().map(wit_info).collect(), more))
        })
        .await
    }

    async fn disk_space(
        &mut self,
        session: Option<String>,
        path: String,
    ) -> Result<types::Space, WitError> {
        self.host_work(OnCancel::Abandon, |host| async move {
            let [path] = host
                .in_scope(None, &session, [(&path, Access::Follow)])
                .await?;
            let path = &path;
            host.with_sftp_retry(
                session,
                |c, s| async move { sftp::space(&c, &s, path).await },
            )
            .await
            .map(wit_space)
        })
        .await
    }

    async fn canonicalize(
        &mut self,
        session: Option<String>,
        path: String,
    ) -> Result<String, WitError> {
        self.host_work(OnCancel::Abandon, |host| async move {
            let [path] = host
                .in_scope(None, &session, [(&path, Access::Follow)])
                .await?;
            let path = &path;
            host.with_sftp_retry(
                session,
                |_, s| async move { sftp::canonicalize(&s, path).await },
            )
            .await
        })
        .await
    }
}
