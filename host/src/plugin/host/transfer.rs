//! The host side of `transfer`: uploads and downloads of whole files, streamed natively
//! by `sftp` (the bytes never pass through the guest), after checking the user's policy
//! and the component's grant scope on both the remote and the local path. A cancelled
//! transfer removes its temporary file before it returns.

use std::sync::Arc;

use super::local_files::blocking;
use super::remote_paths::Access;
use super::work::OnCancel;
use crate::error::HostResult;
use crate::plugin::bindings::WitError;
use crate::plugin::bindings::mcpssh::plugin::transfer;
use crate::plugin::state::{CallHost, CallState};
use crate::sftp::{self, TransferControl, TransferRequest, WriteMode};

/// Which way a transfer goes.
#[derive(Clone, Copy)]
enum Direction {
    Upload,
    Download,
}

impl CallHost {
    /// Checks a transfer against the policy and the grant scope, then makes it.
    async fn transfer(
        &self,
        mut request: transfer::TransferRequest,
        direction: Direction,
    ) -> HostResult<transfer::TransferReport> {
        let (what, access) = match direction {
            Direction::Upload => ("uploading a file", Access::WriteBeside),
            Direction::Download => ("downloading a file", Access::Follow),
        };
        let upload = matches!(direction, Direction::Upload);
        self.until_cancelled(self.call.gate.check_transfer(
            &self.services.pool,
            request.session.as_deref(),
            upload,
            &request.remote_path,
            &mut request.max_size,
        ))
        .await?;
        let [remote] = self
            .until_cancelled(self.in_scope(
                Some(what),
                &request.session,
                [(&request.remote_path, access)],
            ))
            .await?;
        request.remote_path = remote;
        self.checked_transfer(request, direction).await
    }

    /// Makes a transfer whose remote path is checked: resolves and checks the local path,
    /// then streams the file.
    async fn checked_transfer(
        &self,
        request: transfer::TransferRequest,
        direction: Direction,
    ) -> HostResult<transfer::TransferReport> {
        let (host, local_path) = (self.clone(), request.local_path.clone());
        let local = blocking("resolving the local path", move || {
            host.resolve_local(&host.local_policy()?, &local_path)
        })
        .await?;
        let session = self
            .until_cancelled(self.services.pool.session(request.session.as_deref()))
            .await?;
        let reconnected = session.take_reconnected();
        let (conn, channel) = (
            session.connection.clone(),
            self.until_cancelled(session.sftp()).await?,
        );
        let verb = match direction {
            Direction::Upload => "uploaded",
            Direction::Download => "downloaded",
        };
        let progress = self.call.progress.clone().map(|sink| {
            Arc::new(move |done: u64, total: u64| {
                sink(
                    done as f64,
                    Some(total as f64),
                    Some(format!("{verb} {done} of {total} bytes")),
                );
            }) as sftp::TransferProgress
        });
        let control = TransferControl {
            cancel: self.call.cancel.clone(),
            progress,
            stale_age: self.services.settings.stale_temp_age(),
            window: sftp::transfer::DEFAULT_WINDOW,
        };
        let req = TransferRequest {
            local,
            remote: request.remote_path,
            mode: match request.mode {
                transfer::WriteMode::CreateNew => WriteMode::CreateNew,
                transfer::WriteMode::Overwrite => WriteMode::Overwrite,
            },
            max_size: request.max_size,
        };
        let report = match direction {
            Direction::Upload => sftp::upload(conn, channel, req, control).await?,
            Direction::Download => sftp::download(conn, channel, req, control).await?,
        };
        Ok(transfer::TransferReport {
            local_path: report.local_path,
            remote_path: report.remote_path,
            bytes: report.bytes,
            duration_ms: report.duration.as_millis() as u64,
            replaced: report.replaced,
            reconnected,
        })
    }
}

impl transfer::Host for CallState {
    async fn upload(
        &mut self,
        request: transfer::TransferRequest,
    ) -> Result<transfer::TransferReport, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            host.transfer(request, Direction::Upload).await
        })
        .await
    }

    async fn download(
        &mut self,
        request: transfer::TransferRequest,
    ) -> Result<transfer::TransferReport, WitError> {
        self.host_work(OnCancel::LetFinish, |host| async move {
            host.transfer(request, Direction::Download).await
        })
        .await
    }
}
