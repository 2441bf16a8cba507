//! The resources the server serves natively, never through a tool: open sessions
//! (`mcpssh://sessions/{name}`), remote files (`sftp://{session}/{path}`, in
//! [`remote_files`]) and jobs' output (`mcpssh://jobs/{id}/{stream}`, in [`jobs`]).

pub mod jobs;
pub mod remote_files;
