//! `ssh_job_cancel`: stop a job's command and everything it started. Imports only
//! `mcpssh:plugin/exec`.

use mcpssh_sdk::bindings::mcpssh::plugin::exec;
use mcpssh_sdk::jobs::{JobSummary, check_job_id};
use mcpssh_sdk::{JsonSchema, Tool, ToolError, ToolInfo};
use serde::{Deserialize, Serialize};

const DESCRIPTION: &str = "Stop a job's command and the processes it started.";

/// Which job.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelArgs {
    /// From ssh_execute or ssh_job_list.
    pub job_id: String,
}

/// The job after cancelling.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CancelResult {
    /// Always true.
    pub success: bool,
    /// The job's state (its output stays readable for a while).
    pub job: JobSummary,
}

/// The `ssh_job_cancel` tool.
pub struct JobCancelTool;

impl Tool for JobCancelTool {
    type Args = CancelArgs;
    type Output = CancelResult;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_job_cancel", DESCRIPTION)
            .title("Stop a job")
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(true)
    }

    fn run(args: CancelArgs) -> Result<CancelResult, ToolError> {
        check_job_id("job_id", &args.job_id)?;
        let job = exec::cancel_job(&args.job_id)?;
        Ok(CancelResult {
            success: true,
            job: job.into(),
        })
    }
}

mcpssh_sdk::export_tools!(JobCancelTool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_is_valid() {
        mcpssh_sdk::check_tool::<JobCancelTool>().unwrap();
    }

    #[test]
    fn a_bad_id_names_the_field() {
        let e = mcpssh_sdk::testing::refusal::<JobCancelTool>(r#"{"job_id": "x"}"#);
        assert_eq!(e["field"], "job_id");
    }
}
