//! `scp_download`: copy a remote file to the local machine. Imports `mcpssh:plugin/transfer`
//! and `mcpssh:plugin/local-read` (to find a free name for `RENAME`).

use mcpssh_sdk::bindings::mcpssh::plugin::types::Error as HostError;
use mcpssh_sdk::bindings::mcpssh::plugin::{local_read, transfer};
use mcpssh_sdk::files::{self, FileTransferParams};
use mcpssh_sdk::transfer::{Direction, TransferOutput, run_transfer};
use mcpssh_sdk::{Tool, ToolError, ToolInfo, serde_json};

const DESCRIPTION: &str = "\
Copy a file from the remote host to the machine running mcpssh over SFTP. `remote_path` is the \
source (relative to the remote home directory unless absolute), `local_path` the destination \
file (absolute or starting with `~`; relative paths are refused; name the file, not just its \
directory). The file is written to a temporary file next to the destination and renamed into \
place when complete, so the destination is never half-written. Files larger than `max_size` \
bytes (default 1 GiB) and files that do not fit in the local free space are refused before \
anything is written. `on_conflict` says what to do when the destination exists: `FAIL` \
(default: error `already-exists`, nothing written), `OVERWRITE` (replace it; the old file stays \
intact until the new one is complete) or `RENAME` (keep it and write to \
`<name>_<YYYYmmdd-HHMMSS><.ext>`, a UTC timestamp put before the last extension, e.g. \
`report_20261125-170416.pdf`, with `-2`, `-3`, ... appended to the timestamp if that name exists \
too). Returns the final `local_path`, `bytes`, `duration_ms`, `rate_bytes_per_second` and \
`conflict` (`none`, `overwritten` or `renamed`). With several SSH sessions open, `host` picks \
one (the `session` name returned by ssh_connect). Also accepts the arguments nested as \
{\"params\": {...}}.";

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
