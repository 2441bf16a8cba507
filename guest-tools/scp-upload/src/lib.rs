//! `scp_upload`: copy a local file to the remote host. Imports `mcpssh:plugin/transfer` and
//! `mcpssh:plugin/remote-read` (to find a free name for `RENAME`).

use mcpssh_sdk::bindings::mcpssh::plugin::types::Error as HostError;
use mcpssh_sdk::bindings::mcpssh::plugin::{remote_read, transfer};
use mcpssh_sdk::files::{self, FileTransferParams};
use mcpssh_sdk::transfer::{Direction, TransferOutput, run_transfer};
use mcpssh_sdk::{Tool, ToolError, ToolInfo, serde_json};

const DESCRIPTION: &str = "\
Copy a file from the machine running mcpssh to the remote host over SFTP. `local_path` is the \
source (absolute or starting with `~`; relative paths are refused), `remote_path` the \
destination file (relative to the remote home directory unless absolute; name the file, not \
just its directory). The file is written to a temporary file next to the destination and \
renamed into place when complete, so the destination is never half-written. Files larger than \
`max_size` bytes (default 1 GiB) and files that do not fit in the remote free space are \
refused before anything is written. `on_conflict` says what to do when the destination exists: \
`FAIL` (default: error `already-exists`, nothing written), `OVERWRITE` (replace it; the old file \
stays intact until the new one is complete) or `RENAME` (keep it and write to \
`<name>_<YYYYmmdd-HHMMSS><.ext>`, a UTC timestamp put before the last extension, e.g. \
`report_20261125-170416.pdf`, with `-2`, `-3`, ... appended to the timestamp if that name exists \
too). Returns the final `remote_path`, `bytes`, `duration_ms`, `rate_bytes_per_second` and \
`conflict` (`none`, `overwritten` or `renamed`). With several SSH sessions open, `host` picks \
one (the `session` name returned by ssh_connect). Also accepts the arguments nested as \
{\"params\": {...}}.";

/// The `scp_upload` tool.
pub struct UploadTool;

impl Tool for UploadTool {
    type Args = FileTransferParams;
    type Output = TransferOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("scp_upload", DESCRIPTION)
            .title("Upload a file over SFTP")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true)
    }

    fn normalize_arguments(arguments: serde_json::Value) -> serde_json::Value {
        files::unwrap_nested_params(arguments)
    }

    fn run(args: FileTransferParams) -> Result<TransferOutput, ToolError> {
        let params = args.check()?;
        let session = params.session.clone();
        run_transfer(
            &params,
            Direction::Upload,
            files::now_unix_seconds(),
            |path| remote_exists(session.as_deref(), path),
            transfer::upload,
        )
    }
}

/// Whether a remote path exists in `session` (a dangling symlink counts).
fn remote_exists(session: Option<&str>, path: &str) -> Result<bool, ToolError> {
    match remote_read::stat(session, path, false) {
        Ok(_) => Ok(true),
        Err(HostError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

mcpssh_sdk::export_tools!(UploadTool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_is_valid() {
        mcpssh_sdk::testing::assert_transfer_descriptor::<UploadTool>("scp_upload");
    }

    #[test]
    fn bad_arguments_name_the_field_flat_and_nested() {
        mcpssh_sdk::testing::assert_refuses_bad_transfer_arguments::<UploadTool>();
    }
}
