//! Jobs as MCP resources: `mcpssh://jobs/{id}/stdout` (and `/stderr`), read in pages of
//! at most [`PAGE_BYTES`] with `?offset=N`, and the resource link added to a tool result
//! that names a kept job (a command still running, or one whose output was cut).

use base64::Engine as _;
use rmcp::model::{ContentBlock, MetaObject, Resource, ResourceContents};
use serde_json::{Value, json};

use crate::jobs::{Jobs, OutputStream};

/// The URI template, for `resources/templates/list`.
pub const URI_TEMPLATE: &str = "mcpssh://jobs/{id}/{stream}{?offset}";

/// The most bytes one read returns.
pub const PAGE_BYTES: usize = 1024 * 1024;

const PREFIX: &str = "mcpssh://jobs/";

/// The URI of a job's stream.
pub fn uri(id: &str, stream: &str) -> String {
    format!("{PREFIX}{id}/{stream}")
}

/// True for a URI this module serves.
pub fn is_job_uri(uri: &str) -> bool {
    uri.starts_with(PREFIX)
}

/// Splits `mcpssh://jobs/ID/STREAM[?offset=N]`.
fn parse(uri: &str) -> Result<(&str, OutputStream, u64), String> {
    let rest = uri.strip_prefix(PREFIX).unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (id, stream) = path
        .split_once('/')
        .ok_or_else(|| format!("{uri}: expected {PREFIX}JOB_ID/stdout or /stderr"))?;
    let stream = match stream {
        "stdout" => OutputStream::Stdout,
        "stderr" => OutputStream::Stderr,
        other => {
            return Err(format!(
                "{uri}: unknown stream {other:?}; use stdout or stderr"
            ));
        }
    };
    let mut offset = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("offset", n)) => {
                offset = n
                    .parse()
                    .map_err(|_| format!("{uri}: offset must be a byte count, got {n:?}"))?
            }
            _ => return Err(format!("{uri}: unknown parameter {pair:?}; only offset=N")),
        }
    }
    Ok((id, stream, offset))
}

/// Reads a page of a job's stream: text when it is UTF-8 (never ending inside a
/// character), else base64. `_meta` says where the next page starts and whether the
/// job ended with this page.
pub fn read(jobs: &Jobs, uri: &str) -> Result<ResourceContents, String> {
    let (id, stream, offset) = parse(uri)?;
    let job = jobs.get(id).map_err(|e| e.message().to_string())?;
    let chunk = job
        .read(stream, offset, None, PAGE_BYTES)
        .map_err(|e| e.message().to_string())?;
    let text_len = match std::str::from_utf8(&chunk.data) {
        Ok(_) => Some(chunk.data.len()),
        // Only a character cut by the page end: end the page before it.
        Err(e) if e.error_len().is_none() => Some(e.valid_up_to()),
        Err(_) => None,
    };
    let next_offset = chunk.offset + text_len.unwrap_or(chunk.data.len()) as u64;
    let meta = json!({
        "offset": chunk.offset,
        "next_offset": next_offset,
        "first_kept": chunk.first_kept,
        "total_bytes": chunk.total,
        "complete": job.is_finished() && next_offset >= chunk.total,
        "next_page": uri_at(uri, next_offset),
    });
    let meta = MetaObject(meta.as_object().cloned().unwrap_or_default());
    let contents = match text_len {
        Some(n) => ResourceContents::TextResourceContents {
            uri: uri.to_string(),
            mime_type: Some("text/plain".into()),
            text: String::from_utf8_lossy(&chunk.data[..n]).into_owned(),
            meta: None,
        },
        None => ResourceContents::BlobResourceContents {
            uri: uri.to_string(),
            mime_type: Some("application/octet-stream".into()),
            blob: base64::engine::general_purpose::STANDARD.encode(&chunk.data),
            meta: None,
        },
    };
    Ok(contents.with_meta(meta))
}

/// `uri` with its offset set to `offset`.
fn uri_at(uri: &str, offset: u64) -> String {
    let base = uri.split_once('?').map_or(uri, |(b, _)| b);
    format!("{base}?offset={offset}")
}

/// A link to the stdout of the job a successful result names in `job_id`, if it is kept.
pub fn link_for(jobs: &Jobs, result: &Value) -> Option<ContentBlock> {
    let id = result.get("job_id")?.as_str()?;
    let job = jobs.get(id).ok()?;
    let info = job.info();
    Some(ContentBlock::resource_link(
        Resource::new(uri(id, "stdout"), format!("{id} stdout"))
            .with_description(format!(
                "The full stdout of `{}`, in pages (`?offset=N`)",
                info.command
            ))
            .with_mime_type("text/plain"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_and_bad_ones_say_why() {
        let (id, s, o) = parse("mcpssh://jobs/job-3/stderr?offset=42").unwrap();
        assert_eq!((id, s, o), ("job-3", OutputStream::Stderr, 42));
        assert_eq!(parse("mcpssh://jobs/job-3/stdout").unwrap().2, 0);
        for bad in [
            "mcpssh://jobs/job-3",
            "mcpssh://jobs/job-3/both",
            "mcpssh://jobs/job-3/stdout?offset=-1",
            "mcpssh://jobs/job-3/stdout?limit=5",
        ] {
            assert!(parse(bad).unwrap_err().starts_with(bad), "{bad}");
        }
        assert_eq!(
            uri_at("mcpssh://jobs/job-3/stdout?offset=1", 9),
            "mcpssh://jobs/job-3/stdout?offset=9"
        );
    }
}
