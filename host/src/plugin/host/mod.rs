//! The host side of the WIT package: one file per interface (`session`, `exec`,
//! `remote_read`, `remote_write`, `transfer`, `local_read`, `host_log`, and `types` for
//! the data they share), each turning a guest's request into a call on the host's
//! services after checking the component's grant scope and the user's policy, and the
//! outcome back into WIT data. Every wait goes through `work` (host time, cancellation);
//! `remote_paths` and `local_files` hold what several interfaces share. Which
//! interfaces exist and how they are linked is the catalogue's (`capability`).

mod exec;
mod host_log;
mod local_files;
mod local_read;
mod remote_paths;
mod remote_read;
mod remote_write;
mod session;
mod transfer;
mod types;
mod work;
