//! [`ToolError`]: the structured error a tool returns.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::bindings::mcpssh::plugin::types::Error as HostError;

/// The `error_kind` values used by tools and the host (see `docs/tool-contract.md`).
pub mod kind {
    /// A bad or missing argument; the error's `field` names it when there is one.
    pub const INVALID_ARGUMENT: &str = "invalid-argument";
    /// No SSH session is open (and none could be opened from the configuration).
    pub const NOT_CONNECTED: &str = "not-connected";
    /// The connection could not be made or was lost.
    pub const CONNECTION: &str = "connection";
    /// Authentication was refused.
    pub const AUTH: &str = "auth";
    /// The server's host key is unknown (under strict checking) or changed.
    pub const HOST_KEY: &str = "host-key";
    /// A file or directory does not exist.
    pub const NOT_FOUND: &str = "not-found";
    /// The remote or local system refused access.
    pub const PERMISSION_DENIED: &str = "permission-denied";
    /// The destination exists and the request asked not to replace it.
    pub const ALREADY_EXISTS: &str = "already-exists";
    /// Not enough free space on the destination file system.
    pub const NO_SPACE: &str = "no-space";
    /// The file is larger than the size limit.
    pub const TOO_LARGE: &str = "too-large";
    /// The operation did not finish within its time limit.
    pub const TIMED_OUT: &str = "timed-out";
    /// The MCP client cancelled the call.
    pub const CANCELLED: &str = "cancelled";
    /// The operation is outside what the component was granted.
    pub const DENIED: &str = "denied";
    /// The request was malformed.
    pub const INVALID: &str = "invalid";
    /// Anything else.
    pub const OTHER: &str = "other";
}

/// The message used for [`HostError::Cancelled`], which carries none.
pub(crate) const CANCELLED_MESSAGE: &str =
    "The call was cancelled by the client before it finished; run it again if it is still needed.";

/// Shorthand for `Result<T, ToolError>`.
pub type ToolResult<T> = Result<T, ToolError>;

/// A failed tool call: a kind, a message a person or a model can act on, and optionally the
/// argument it is about.
///
/// It becomes the JSON object
/// `{"success": false, "error_kind": KIND, "error": MESSAGE, "field": FIELD}` (without `field`
/// when there is none), which the host returns with `isError: true`.
///
/// Host errors convert with `?` (or [`From`]): each WIT `error` case becomes its kebab-case kind
/// with the host's message.
///
/// ```
/// use mcpssh_sdk::{kind, ToolError};
///
/// let err = ToolError::invalid_argument("port", "`port` must be between 1 and 65535");
/// assert_eq!(err.kind(), kind::INVALID_ARGUMENT);
/// assert_eq!(err.field(), Some("port"));
/// assert_eq!(
///     err.to_json(),
///     r#"{"success":false,"error_kind":"invalid-argument","error":"`port` must be between 1 and 65535","field":"port"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    kind: Cow<'static, str>,
    message: String,
    field: Option<String>,
}

impl ToolError {
    /// An error of any kind (preferably one of the [`kind`] constants) with a message.
    pub fn new(kind: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ToolError {
            kind: kind.into(),
            message: message.into(),
            field: None,
        }
    }

    /// An [`invalid-argument`](kind::INVALID_ARGUMENT) error about the argument `field`.
    pub fn invalid_argument(field: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError::new(kind::INVALID_ARGUMENT, message).with_field(field)
    }

    /// Sets the argument the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Puts `context` in front of the message: `"{context}: {message}"`.
    ///
    /// ```
    /// # use mcpssh_sdk::ToolError;
    /// let err = ToolError::new("not-found", "no such file").context("Could not read `/etc/x`");
    /// assert_eq!(err.message(), "Could not read `/etc/x`: no such file");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The `error_kind`, e.g. `"not-found"`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The argument the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The error as a JSON value (see the type's documentation for the shape).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self.wire()).expect("an error always serializes")
    }

    /// The error as a JSON string (see the type's documentation for the shape).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.wire()).expect("an error always serializes")
    }

    fn wire(&self) -> WireError<'_> {
        WireError {
            success: false,
            error_kind: &self.kind,
            error: &self.message,
            field: self.field.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct WireError<'a> {
    success: bool,
    error_kind: &'a str,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({}, field `{field}`)", self.message, self.kind),
            None => write!(f, "{} ({})", self.message, self.kind),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<HostError> for ToolError {
    fn from(err: HostError) -> Self {
        let (kind, message) = match err {
            HostError::NotConnected(m) => (kind::NOT_CONNECTED, m),
            HostError::Connection(m) => (kind::CONNECTION, m),
            HostError::Auth(m) => (kind::AUTH, m),
            HostError::HostKey(m) => (kind::HOST_KEY, m),
            HostError::NotFound(m) => (kind::NOT_FOUND, m),
            HostError::PermissionDenied(m) => (kind::PERMISSION_DENIED, m),
            HostError::AlreadyExists(m) => (kind::ALREADY_EXISTS, m),
            HostError::NoSpace(m) => (kind::NO_SPACE, m),
            HostError::TooLarge(m) => (kind::TOO_LARGE, m),
            HostError::TimedOut(m) => (kind::TIMED_OUT, m),
            HostError::Cancelled => (kind::CANCELLED, CANCELLED_MESSAGE.to_owned()),
            HostError::Denied(m) => (kind::DENIED, m),
            HostError::Invalid(m) => (kind::INVALID, m),
            HostError::Other(m) => (kind::OTHER, m),
        };
        let message = if message.trim().is_empty() {
            format!("The host reported an error of kind `{kind}` without details.")
        } else {
            message
        };
        ToolError::new(kind, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_shape_with_field() {
        let err = ToolError::invalid_argument("command", "`command` is required");
        assert_eq!(
            err.to_value(),
            json!({"success": false, "error_kind": "invalid-argument",
                   "error": "`command` is required", "field": "command"})
        );
    }

    #[test]
    fn json_shape_without_field() {
        let err = ToolError::new(kind::NOT_FOUND, "no such file");
        assert_eq!(
            err.to_value(),
            json!({"success": false, "error_kind": "not-found", "error": "no such file"})
        );
        assert!(!err.to_json().contains("field"));
    }

    #[test]
    fn host_errors_map_to_kebab_case_kinds() {
        let cases = [
            (HostError::NotConnected("m".into()), "not-connected"),
            (HostError::Connection("m".into()), "connection"),
            (HostError::Auth("m".into()), "auth"),
            (HostError::HostKey("m".into()), "host-key"),
            (HostError::NotFound("m".into()), "not-found"),
            (HostError::PermissionDenied("m".into()), "permission-denied"),
            (HostError::AlreadyExists("m".into()), "already-exists"),
            (HostError::NoSpace("m".into()), "no-space"),
            (HostError::TooLarge("m".into()), "too-large"),
            (HostError::TimedOut("m".into()), "timed-out"),
            (HostError::Denied("m".into()), "denied"),
            (HostError::Invalid("m".into()), "invalid"),
            (HostError::Other("m".into()), "other"),
        ];
        for (host, expected) in cases {
            let err = ToolError::from(host);
            assert_eq!(err.kind(), expected);
            assert_eq!(err.message(), "m");
            assert_eq!(err.field(), None);
        }
    }

    #[test]
    fn cancelled_gets_a_helpful_message() {
        let err = ToolError::from(HostError::Cancelled);
        assert_eq!(err.kind(), "cancelled");
        assert!(err.message().contains("cancelled"));
    }

    #[test]
    fn empty_host_message_is_replaced() {
        let err = ToolError::from(HostError::Other(String::new()));
        assert_eq!(
            err.message(),
            "The host reported an error of kind `other` without details."
        );
    }

    #[test]
    fn context_prefixes_the_message() {
        let err = ToolError::new(kind::AUTH, "publickey refused").context("Could not log in");
        assert_eq!(err.message(), "Could not log in: publickey refused");
        assert_eq!(err.kind(), "auth");
    }
}
