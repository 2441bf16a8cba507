//! Remote files as MCP resources: `sftp://{session}/{path}` reads the start of a remote
//! file (at most [`MAX_RESOURCE_BYTES`]) as text, or as a base64 blob when it is not UTF-8.
//! `{session}` is a session name, or `_` for the default session; `{path}` is absolute
//! (`sftp://web/etc/os-release`) or `~/...` for the remote home. Only regular files are
//! read: a FIFO or device is refused before it is opened (see
//! [`crate::sftp::read_head`]), and a path with a NUL byte (`%00`) never reaches
//! the server.
//!
//! Reading one is the download of a file's start, and is treated as one: the server takes
//! a call slot for it, the policy decides it as [`POLICY_TOOL`] (its transfer cap
//! included), and the audit log records it.

use base64::Engine;

use crate::error::{HostError, HostResult};
use crate::policy::Gate;
use crate::sessions::SessionPool;

/// The tool the policy decides a remote file read as: a host whose rules refuse
/// `scp_download` refuses these reads too.
pub const POLICY_TOOL: &str = "scp_download";

/// The URI template advertised to clients.
pub const URI_TEMPLATE: &str = "sftp://{session}/{+path}";

/// The most bytes of a file a resource returns.
pub const MAX_RESOURCE_BYTES: u64 = 1024 * 1024;

/// What a read returned: the contents, and the bytes read of how many the file has.
pub struct Read {
    pub contents: Contents,
    pub bytes: u64,
    pub size: u64,
}

/// A file's contents as a resource carries them.
pub enum Contents {
    Text(String),
    /// Base64.
    Blob(String),
}

/// Whether `uri` names a remote file (whatever its form: a malformed one is refused
/// when read).
pub fn is_remote_file_uri(uri: &str) -> bool {
    uri.starts_with("sftp://")
}

/// Splits `sftp://session/path` into the session (none for `_`) and the remote path.
pub fn parse_uri(uri: &str) -> Option<(Option<String>, String)> {
    let rest = uri.strip_prefix("sftp://")?;
    let (session, path) = rest.split_once('/')?;
    let path = percent_decode(path)?;
    let path = if path.starts_with("~/") || path == "~" {
        path
    } else {
        format!("/{path}")
    };
    let session = percent_decode(session)?;
    if session.is_empty() {
        return None;
    }
    Some(((session != "_").then_some(session), path))
}

/// Decodes `%XX` escapes; none for malformed ones or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads the file `uri` names, once `gate` allows it: at most [`MAX_RESOURCE_BYTES`], or
/// the policy's transfer cap if that is lower.
pub async fn read(pool: &SessionPool, uri: &str, gate: &Gate) -> HostResult<Read> {
    let (session, path) = parse_uri(uri).ok_or_else(|| {
        HostError::Invalid(format!(
            "{uri} is not of the form {URI_TEMPLATE} (session `_` = the default one)"
        ))
    })?;
    // The session is found once, and the policy decides on that very session: `_` could
    // name another one by the time a second lookup ran.
    let session = pool.session(session.as_deref()).await?;
    let name = session.connection.info.name.clone();
    let mut limit = Some(MAX_RESOURCE_BYTES);
    gate.check_transfer(pool, Some(&name), false, &path, &mut limit)
        .await?;
    let limit = limit.unwrap_or(MAX_RESOURCE_BYTES);
    let sftp = session.sftp().await?;
    let (data, size) = crate::sftp::read_head(&sftp, &path, limit).await?;
    let bytes = data.len() as u64;
    let contents = match String::from_utf8(data) {
        Ok(mut text) => {
            if size > bytes {
                text.push_str(&format!(
                    "\n[... truncated: the file has {size} bytes; only the first {bytes} are shown ...]\n"
                ));
            }
            Contents::Text(text)
        }
        Err(e) => Contents::Blob(base64::engine::general_purpose::STANDARD.encode(e.into_bytes())),
    };
    Ok(Read {
        contents,
        bytes,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        assert_eq!(
            parse_uri("sftp://web/etc/os-release"),
            Some((Some("web".into()), "/etc/os-release".into()))
        );
        assert_eq!(
            parse_uri("sftp://_/~/notes.txt"),
            Some((None, "~/notes.txt".into()))
        );
        assert_eq!(
            parse_uri("sftp://h:2222/tmp/a%20b"),
            Some((Some("h:2222".into()), "/tmp/a b".into()))
        );
        assert_eq!(parse_uri("sftp://h"), None);
        assert_eq!(parse_uri("http://h/x"), None);
        assert_eq!(parse_uri("sftp://h/%zz"), None);
    }
}
