//! How a russh error is told to the user: one short sentence, shared by every part of
//! the SSH client (connecting, authenticating, opening channels) and by SFTP.

/// A short, user-facing description of a russh error.
pub fn describe_russh_error(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::Disconnect => "the server closed the connection".into(),
        russh::Error::ConnectionTimeout => "the connection timed out".into(),
        other => other.to_string(),
    }
}
