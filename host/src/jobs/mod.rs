//! Jobs: remote commands that run on after the call that started them, with their
//! output kept in a bounded spool per stream ([`spool`]) so it can be read in pages
//! while the command runs and for a while after it ended ([`registry`]).

pub mod detached;
pub mod registry;
pub mod spool;

pub use registry::{Job, JobEnd, JobInfo, JobSettings, Jobs, OutputStream};
