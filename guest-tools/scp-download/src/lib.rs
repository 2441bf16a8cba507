//! `scp_download`: copy a remote file to the local machine. Imports `mcpssh:plugin/transfer`
//! and `mcpssh:plugin/local-read` (to find a free name for `RENAME`).

use mcpssh_sdk::bindings::mcpssh::plugin::types::Error as HostError;
use mcpssh_sdk::bindings::mcpssh::plugin::{local_read, transfer};
use mcpssh_sdk::files::{self, FileTransferParams};
use mcpssh_sdk::transfer::{Direction, TransferOutput, run_transfer};
use mcpssh_sdk::{Tool, ToolError, ToolInfo, serde_json};

const DESCRIPTION: &str = "\
Download a remote file to the machine running mcpssh over SFTP. The destination is written \
whole or not at all (temporary file, then rename); `on_conflict` decides about an existing one. \
Local paths must lie under the server's allowed folders.";

/// The `scp_download` tool.
pub struct DownloadTool;

impl Tool for DownloadTool {
    type Args = FileTransferParams;
    type Output = TransferOutput;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("scp_download", DESCRIPTION)
            .title("Download a file over SFTP")
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
        run_transfer(
            &params,
            Direction::Download,
            files::now_unix_seconds(),
            local_exists,
            transfer::download,
        )
    }
}

/// Whether a local path exists.
fn local_exists(path: &str) -> Result<bool, ToolError> {
    match local_read::stat(path) {
        Ok(_) => Ok(true),
        Err(HostError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

mcpssh_sdk::export_tools!(DownloadTool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_is_valid() {
        mcpssh_sdk::testing::assert_transfer_descriptor::<DownloadTool>("scp_download");
    }

    #[test]
    fn bad_arguments_name_the_field_flat_and_nested() {
        mcpssh_sdk::testing::assert_refuses_bad_transfer_arguments::<DownloadTool>();
    }
}
