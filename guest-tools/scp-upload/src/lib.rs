//! `scp_upload`: copy a local file to the remote host. Imports `mcpssh:plugin/transfer` and
//! `mcpssh:plugin/remote-read` (to find a free name for `RENAME`).

use mcpssh_sdk::bindings::mcpssh::plugin::types::Error as HostError;
use mcpssh_sdk::bindings::mcpssh::plugin::{remote_read, transfer};
use mcpssh_sdk::files::{self, FileTransferParams};
use mcpssh_sdk::transfer::{Direction, TransferOutput, run_transfer};
use mcpssh_sdk::{Tool, ToolError, ToolInfo, serde_json};

const DESCRIPTION: &str = "\
Upload a local file to the remote host over SFTP. The destination is written whole or not at \
all (temporary file, then rename); `on_conflict` decides about an existing one. Local paths \
must lie under the server's allowed folders.";

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
