//! The resources the server serves natively, never through a tool: open sessions
//! (`mcpssh://sessions/{name}`, in [`sessions`]), remote files (`sftp://{session}/{path}`,
//! in [`remote_files`]) and jobs' output (`mcpssh://jobs/{id}/{stream}`, in [`jobs`]).
//! This module lists them and sends a read to the one that owns the URI.

use rmcp::ErrorData as McpError;
use rmcp::model::{Resource, ResourceContents, ResourceTemplate};

use crate::error::{HostError, HostResult};
use crate::jobs::Jobs;
use crate::sessions::SessionPool;

pub mod jobs;
pub mod remote_files;
pub mod sessions;

/// The resources listed to clients: the open sessions (files and jobs are reached through
/// their templates or result links).
pub async fn list(pool: &SessionPool) -> Vec<Resource> {
    sessions::list(pool).await
}

/// The URI templates, for `resources/templates/list`.
pub fn templates() -> Vec<ResourceTemplate> {
    let mut remote_file = ResourceTemplate::new(remote_files::URI_TEMPLATE, "remote_file");
    remote_file.title = Some("A remote file".into());
    remote_file.description = Some(format!(
        "The start (at most {} bytes) of a file on the remote host, over SFTP: text, or base64 when \
         it is not UTF-8. `session` is a session name (`_` for the default one); `path` is absolute \
         or starts with `~/`.",
        remote_files::MAX_RESOURCE_BYTES
    ));
    let mut job_output = ResourceTemplate::new(jobs::URI_TEMPLATE, "job_output");
    job_output.title = Some("A job's output".into());
    job_output.description = Some(format!(
        "A page (at most {} bytes) of a job's stdout or stderr from `offset`; `_meta.next_page` is the next.",
        jobs::PAGE_BYTES
    ));
    vec![remote_file, job_output]
}

/// Reads a resource the server holds itself (a session or a job's output); one that does
/// not exist is "resource not found", saying why. Remote files are read by the MCP
/// handler, which gives them a call slot, a policy gate and an audit line, and turns
/// the outcome into contents with [`remote_file_contents`].
pub async fn read(
    pool: &SessionPool,
    job_registry: &Jobs,
    uri: &str,
) -> Result<ResourceContents, McpError> {
    if jobs::is_job_uri(uri) {
        return jobs::read(job_registry, uri)
            .map_err(|message| McpError::resource_not_found(message, None));
    }
    sessions::read(pool, uri).await.ok_or_else(|| {
        McpError::resource_not_found(
            format!("no such resource: {uri}; resources/list shows the open sessions"),
            None,
        )
    })
}

/// The answer to a remote file read: its contents; a policy refusal as an invalid
/// request; any other failure as "resource not found", saying why.
pub fn remote_file_contents(
    uri: &str,
    read: HostResult<remote_files::Read>,
) -> Result<ResourceContents, McpError> {
    match read {
        Ok(read) => Ok(match read.contents {
            remote_files::Contents::Text(text) => ResourceContents::text(text, uri),
            remote_files::Contents::Blob(blob) => ResourceContents::BlobResourceContents {
                uri: uri.to_owned(),
                mime_type: Some("application/octet-stream".into()),
                blob,
                meta: None,
            },
        }),
        Err(e @ HostError::Denied(_)) => Err(McpError::invalid_request(
            format!("{uri}: {}", e.message()),
            None,
        )),
        Err(e) => Err(McpError::resource_not_found(
            format!("{uri}: {}", e.message()),
            None,
        )),
    }
}
