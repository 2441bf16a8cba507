//! `ssh_job_list`: the jobs the server keeps, running and recently finished. Imports
//! only `mcpssh:plugin/exec`.

use mcpssh_sdk::bindings::mcpssh::plugin::exec;
use mcpssh_sdk::jobs::JobSummary;
use mcpssh_sdk::{JsonSchema, NoArgs, Tool, ToolError, ToolInfo};
use serde::Serialize;

const DESCRIPTION: &str = "List jobs: running and recently finished commands.";

/// The jobs.
#[derive(Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ListResult {
    /// Always true.
    pub success: bool,
    /// Oldest first.
    pub jobs: Vec<JobSummary>,
}

/// The `ssh_job_list` tool.
pub struct JobListTool;

impl Tool for JobListTool {
    type Args = NoArgs;
    type Output = ListResult;

    fn descriptor() -> ToolInfo {
        ToolInfo::new("ssh_job_list", DESCRIPTION)
            .title("List jobs")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false)
    }

    fn run(_: NoArgs) -> Result<ListResult, ToolError> {
        let jobs = exec::list_jobs()?;
        Ok(ListResult {
            success: true,
            jobs: jobs.into_iter().map(JobSummary::from).collect(),
        })
    }
}

mcpssh_sdk::export_tools!(JobListTool);

#[cfg(test)]
mod tests {
    #[test]
    fn descriptor_is_valid() {
        mcpssh_sdk::check_tool::<super::JobListTool>().unwrap();
    }
}
