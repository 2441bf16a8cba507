//! Turning SFTP failures into [`HostError`]s with messages a person can act on.
//!
//! SFTP status codes are coarse (OpenSSH reports a full disk, an existing rename target
//! and many other conditions as plain `failure`), so callers that know more (a rename,
//! a write) look at the situation themselves and refine the kind; this module gives the
//! default reading.

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;

use super::SftpChannel;
use crate::error::HostError;

/// The status code of an SFTP failure, when the server sent one.
pub fn status_code(err: &SftpError) -> Option<StatusCode> {
    match err {
        SftpError::Status(s) => Some(s.status_code),
        _ => None,
    }
}

/// True when the failure means the SFTP channel (or the connection under it) is gone.
pub fn is_transport_failure(err: &SftpError) -> bool {
    match err {
        SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => true,
        SftpError::Status(s) => matches!(
            s.status_code,
            StatusCode::NoConnection | StatusCode::ConnectionLost
        ),
        _ => false,
    }
}

/// True when the channel must not serve another request after this failure: it is gone,
/// or a request went unanswered for the whole request timeout.
pub fn needs_new_channel(err: &SftpError) -> bool {
    is_transport_failure(err) || matches!(err, SftpError::Timeout)
}

/// The default reading of an SFTP failure of `action` (e.g. "cannot open") on `path`.
pub fn describe(action: &str, path: &str, err: &SftpError) -> HostError {
    let server_says = |s: &russh_sftp::protocol::Status| {
        let m = s.error_message.trim();
        if m.is_empty() || m.eq_ignore_ascii_case(&s.status_code.to_string()) {
            String::new()
        } else {
            format!(" (the server says: {m})")
        }
    };
    match err {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => HostError::NotFound(format!(
                "{action} {path}: no such file or directory on the remote host{}; check the path (list its parent directory to see what is there)",
                server_says(s)
            )),
            StatusCode::PermissionDenied => HostError::PermissionDenied(format!(
                "{action} {path}: permission denied on the remote host{}; check the owner and permissions of the path and its directory",
                server_says(s)
            )),
            StatusCode::Failure => HostError::Other(format!(
                "{action} {path}: the remote server reported a failure{}",
                server_says(s)
            )),
            StatusCode::Eof => HostError::Other(format!("{action} {path}: unexpected end of file")),
            StatusCode::BadMessage => HostError::Invalid(format!(
                "{action} {path}: the server rejected the request as malformed{} (an invalid or too long path?)",
                server_says(s)
            )),
            StatusCode::OpUnsupported => HostError::Other(format!(
                "{action} {path}: the remote SFTP server does not support this operation{}",
                server_says(s)
            )),
            StatusCode::NoConnection | StatusCode::ConnectionLost => {
                HostError::Connection(format!(
                    "{action} {path}: the SFTP connection was lost; try again (the session reconnects)"
                ))
            }
            StatusCode::Ok => HostError::Other(format!("{action} {path}: unexpected status")),
        },
        SftpError::Timeout => HostError::TimedOut(format!(
            "{action} {path}: the remote SFTP server did not answer within {} s",
            super::REQUEST_TIMEOUT_SECS
        )),
        SftpError::IO(m) => HostError::Connection(format!(
            "{action} {path}: the SFTP channel failed ({m}); try again (the session reconnects)"
        )),
        SftpError::UnexpectedBehavior(m) => HostError::Connection(format!(
            "{action} {path}: the SFTP channel closed ({m}); the connection may have dropped, try again"
        )),
        SftpError::Limited(m) => {
            HostError::Invalid(format!("{action} {path}: over the server's limits ({m})"))
        }
        SftpError::UnexpectedPacket => HostError::Other(format!(
            "{action} {path}: the server sent an unexpected SFTP reply"
        )),
    }
}

impl SftpChannel {
    /// Reads a failure of `action` on `path`, marking the channel dead when it is gone or
    /// when a request went unanswered: a server stuck on one request (e.g. opening a FIFO
    /// that no one writes) answers none of the later ones, so the next call must open a
    /// fresh session rather than queue behind it.
    pub fn fail(&self, action: &str, path: &str, err: SftpError) -> HostError {
        if needs_new_channel(&err) {
            self.mark_dead();
        }
        describe(action, path, &err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::Status;

    fn status(code: StatusCode, message: &str) -> SftpError {
        SftpError::Status(Status {
            id: 1,
            status_code: code,
            error_message: message.into(),
            language_tag: "en".into(),
        })
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let cases = [
            (StatusCode::NoSuchFile, "not-found"),
            (StatusCode::PermissionDenied, "permission-denied"),
            (StatusCode::Failure, "other"),
            (StatusCode::BadMessage, "invalid"),
            (StatusCode::OpUnsupported, "other"),
            (StatusCode::ConnectionLost, "connection"),
            (StatusCode::NoConnection, "connection"),
        ];
        for (code, kind) in cases {
            let e = describe("cannot open", "/x/y", &status(code, ""));
            assert_eq!(e.kind(), kind, "{code:?}");
            assert!(e.message().contains("/x/y"), "{e}");
        }
    }

    #[test]
    fn transport_failures_are_recognised() {
        assert!(is_transport_failure(&SftpError::UnexpectedBehavior(
            "session closed".into()
        )));
        assert!(is_transport_failure(&SftpError::IO("broken pipe".into())));
        assert!(is_transport_failure(&status(
            StatusCode::ConnectionLost,
            ""
        )));
        assert!(!is_transport_failure(&status(StatusCode::NoSuchFile, "")));
        assert!(!is_transport_failure(&SftpError::Timeout));
        assert!(needs_new_channel(&SftpError::Timeout));
        assert!(needs_new_channel(&SftpError::IO("broken pipe".into())));
        assert!(!needs_new_channel(&status(StatusCode::NoSuchFile, "")));
        assert_eq!(describe("x", "p", &SftpError::Timeout).kind(), "timed-out");
        assert_eq!(
            describe("x", "p", &SftpError::UnexpectedBehavior("c".into())).kind(),
            "connection"
        );
    }

    #[test]
    fn the_servers_message_is_kept_unless_it_says_nothing() {
        let e = describe(
            "cannot stat",
            "/p",
            &status(StatusCode::Failure, "Disk quota exceeded"),
        );
        assert!(e.message().contains("Disk quota exceeded"), "{e}");
        let e = describe(
            "cannot stat",
            "/p",
            &status(StatusCode::NoSuchFile, "No such file"),
        );
        assert!(!e.message().contains("server says"), "{e}");
    }
}
