//! The host's error type: one case per kind of failure a tool can act on.
//!
//! It mirrors the WIT `error` variant one to one, so that every host power can hand its
//! failure to a guest as data (see `plugin::host`).

use std::fmt;

/// A failure of a host operation, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    NotConnected(String),
    Connection(String),
    Auth(String),
    HostKey(String),
    NotFound(String),
    PermissionDenied(String),
    AlreadyExists(String),
    NoSpace(String),
    TooLarge(String),
    TimedOut(String),
    Cancelled,
    Denied(String),
    Invalid(String),
    Other(String),
}

impl HostError {
    /// The kebab-case name of this kind of error, as used in tool results.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::NotConnected(_) => "not-connected",
            HostError::Connection(_) => "connection",
            HostError::Auth(_) => "auth",
            HostError::HostKey(_) => "host-key",
            HostError::NotFound(_) => "not-found",
            HostError::PermissionDenied(_) => "permission-denied",
            HostError::AlreadyExists(_) => "already-exists",
            HostError::NoSpace(_) => "no-space",
            HostError::TooLarge(_) => "too-large",
            HostError::TimedOut(_) => "timed-out",
            HostError::Cancelled => "cancelled",
            HostError::Denied(_) => "denied",
            HostError::Invalid(_) => "invalid",
            HostError::Other(_) => "other",
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            HostError::Cancelled => "the call was cancelled by the client",
            HostError::NotConnected(m)
            | HostError::Connection(m)
            | HostError::Auth(m)
            | HostError::HostKey(m)
            | HostError::NotFound(m)
            | HostError::PermissionDenied(m)
            | HostError::AlreadyExists(m)
            | HostError::NoSpace(m)
            | HostError::TooLarge(m)
            | HostError::TimedOut(m)
            | HostError::Denied(m)
            | HostError::Invalid(m)
            | HostError::Other(m) => m,
        }
    }

    /// The same kind of error, with `prefix` put in front of its message.
    pub fn context(self, prefix: &str) -> Self {
        let m = |m: String| format!("{prefix}: {m}");
        match self {
            HostError::NotConnected(x) => HostError::NotConnected(m(x)),
            HostError::Connection(x) => HostError::Connection(m(x)),
            HostError::Auth(x) => HostError::Auth(m(x)),
            HostError::HostKey(x) => HostError::HostKey(m(x)),
            HostError::NotFound(x) => HostError::NotFound(m(x)),
            HostError::PermissionDenied(x) => HostError::PermissionDenied(m(x)),
            HostError::AlreadyExists(x) => HostError::AlreadyExists(m(x)),
            HostError::NoSpace(x) => HostError::NoSpace(m(x)),
            HostError::TooLarge(x) => HostError::TooLarge(m(x)),
            HostError::TimedOut(x) => HostError::TimedOut(m(x)),
            HostError::Cancelled => HostError::Cancelled,
            HostError::Denied(x) => HostError::Denied(m(x)),
            HostError::Invalid(x) => HostError::Invalid(m(x)),
            HostError::Other(x) => HostError::Other(m(x)),
        }
    }

    /// Maps a local I/O error about `what` to the matching kind.
    pub fn from_io(what: &str, err: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let msg = format!("{what}: {err}");
        match err.kind() {
            NotFound => HostError::NotFound(msg),
            PermissionDenied => HostError::PermissionDenied(msg),
            AlreadyExists => HostError::AlreadyExists(msg),
            StorageFull | QuotaExceeded => HostError::NoSpace(msg),
            TimedOut => HostError::TimedOut(msg),
            InvalidInput | InvalidFilename => HostError::Invalid(msg),
            _ => HostError::Other(msg),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for HostError {}

/// Shorthand for results of host operations.
pub type HostResult<T> = Result<T, HostError>;
