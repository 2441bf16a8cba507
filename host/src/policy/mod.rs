//! What the user lets the model do, and the record of what it did: the policy file and
//! its decisions (`rules`, with command patterns in `command`), the per-call gate every
//! host function asks before acting (`gate`), and the audit log (`audit`, checked by
//! `verify`, read back for people by `audit_view`). The policy is read from disk at start-up; no request can change it.

pub mod audit;
pub mod audit_view;
pub mod command;
pub mod gate;
pub mod rules;
pub mod verify;

pub use audit::AuditLog;
pub use gate::{Approval, Approver, CallRecord, Gate, READONLY_EXEC_TOOL};
pub use rules::Policy;
