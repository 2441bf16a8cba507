//! The optional `host` argument every remote tool takes: which open session to use.
//!
//! Put a `host: Option<HostArg>` field in a tool's arguments (no doc comment needed: the schema
//! gets [`HOST_DESCRIPTION`]; a doc comment on the field replaces it) and turn it into the WIT
//! `session` with [`session`], which checks it (non-empty, no whitespace or control characters;
//! errors name the field `host`). Left out, it is `None`: the host's default session (the only
//! open one, or the configured host).
//!
//! ```
//! use mcpssh_sdk::target::{self, HostArg};
//! use mcpssh_sdk::{JsonSchema, parse_args};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize, JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! struct Args {
//!     /// The command line.
//!     command: String,
//!     host: Option<HostArg>,
//! }
//!
//! let args: Args = parse_args(r#"{"command": "ls", "host": "web1"}"#).unwrap();
//! assert_eq!(target::session(args.host).unwrap().as_deref(), Some("web1"));
//!
//! let args: Args = parse_args(r#"{"command": "ls"}"#).unwrap();
//! assert_eq!(target::session(args.host).unwrap(), None);
//!
//! let args: Args = parse_args(r#"{"command": "ls", "host": "two words"}"#).unwrap();
//! assert_eq!(target::session(args.host).unwrap_err().field(), Some("host"));
//!
//! let schema = mcpssh_sdk::input_schema::<Args>();
//! assert_eq!(schema["properties"]["host"]["type"], "string");
//! assert_eq!(schema["properties"]["host"]["description"], target::HOST_DESCRIPTION);
//! ```

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use crate::error::ToolError;
use crate::validate;

/// The argument's name.
pub const HOST_FIELD: &str = "host";

/// What the schema tells the model about `host`.
pub const HOST_DESCRIPTION: &str = "Session to use (`session` from ssh_connect). Default: the only open one, or the configured host.";

/// The `host` argument as given: the name of an open session (as returned by `ssh_connect`'s
/// `session`) or a host / `~/.ssh/config` alias. Unchecked until [`session`] turns it into the
/// WIT `session`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct HostArg(String);

impl HostArg {
    /// The value as given, unchecked.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for HostArg {
    fn from(value: &str) -> Self {
        HostArg(value.to_owned())
    }
}

impl From<String> for HostArg {
    fn from(value: String) -> Self {
        HostArg(value)
    }
}

impl JsonSchema for HostArg {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "HostArg".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "description": HOST_DESCRIPTION,
        })
    }
}

/// Checks a `host` argument and converts it into the WIT `session` (`None` when left out).
pub fn session(host: Option<HostArg>) -> Result<Option<String>, ToolError> {
    host.map(|HostArg(name)| {
        validate::session_name(HOST_FIELD, &name)?;
        Ok(name)
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{input_schema, parse_args};
    use serde_json::json;

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        path: Option<String>,
        host: Option<HostArg>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Overridden {
        /// Which session to close.
        host: Option<HostArg>,
    }

    fn session_of(json: &str) -> Result<Option<String>, ToolError> {
        session(parse_args::<Args>(json)?.host)
    }

    #[test]
    fn absent_is_the_default_session() {
        assert_eq!(session_of("{}").unwrap(), None);
        assert_eq!(session_of(r#"{"host": null}"#).unwrap(), None);
        assert_eq!(session(None).unwrap(), None);
    }

    #[test]
    fn names_pass_through() {
        for name in [
            "default",
            "web1",
            "deploy@db.example.org:2222",
            "10.0.0.1",
            "[::1]:22",
        ] {
            assert_eq!(
                session(Some(name.into())).unwrap().as_deref(),
                Some(name),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_names_name_the_field() {
        for bad in [
            r#"{"host": ""}"#,
            r#"{"host": "  "}"#,
            r#"{"host": "a b"}"#,
            r#"{"host": "a\tb"}"#,
            r#"{"host": "a\nb"}"#,
            r#"{"host": "a\u0000b"}"#,
            r#"{"host": "a\u007fb"}"#,
            r#"{"host": 5}"#,
            r#"{"host": ["a"]}"#,
        ] {
            let e = session_of(bad).unwrap_err();
            assert_eq!(e.kind(), "invalid-argument", "{bad}");
            assert_eq!(e.field(), Some("host"), "{bad}: {e}");
        }
        assert_eq!(
            session(Some("".into())).unwrap_err().message(),
            "`host` must not be empty"
        );
        assert_eq!(
            session(Some("a b".into())).unwrap_err().message(),
            "`host` must not contain spaces or control characters"
        );
    }

    #[test]
    fn schema() {
        let s = input_schema::<Args>();
        assert_eq!(
            s["properties"]["host"],
            json!({"type": "string", "minLength": 1, "description": HOST_DESCRIPTION})
        );
        assert!(s.get("required").is_none());
        let s = input_schema::<Overridden>();
        assert_eq!(
            s["properties"]["host"]["description"],
            "Which session to close."
        );
        assert_eq!(s["properties"]["host"]["type"], "string");
    }
}
