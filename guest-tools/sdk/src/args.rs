//! Parsing a tool's JSON arguments into its `Args` type, with errors that name the field.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;

use crate::error::{ToolError, kind};

/// Parses `json` (the `arguments` of an MCP `tools/call`) into `T`.
///
/// - An empty string or `null` counts as `{}` (a call without arguments).
/// - Anything but a JSON object is an `invalid-argument` error without a field.
/// - A missing required field, an unknown field (with `#[serde(deny_unknown_fields)]`) or a
///   value of the wrong type is an `invalid-argument` error whose `field` is the top-level
///   argument concerned and whose message names the full path (e.g. `` `env.PATH` ``).
///
/// ```
/// use mcpssh_sdk::parse_args;
/// use serde::Deserialize;
///
/// #[derive(Debug, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Args { command: String, #[serde(default)] pty: bool }
///
/// let args: Args = parse_args(r#"{"command": "ls"}"#).unwrap();
/// assert_eq!(args.command, "ls");
/// assert!(!args.pty);
///
/// let err = parse_args::<Args>(r#"{"pty": true}"#).unwrap_err();
/// assert_eq!(err.field(), Some("command"));
/// assert_eq!(err.message(), "`command` is required");
///
/// let err = parse_args::<Args>(r#"{"command": "ls", "shell": "zsh"}"#).unwrap_err();
/// assert_eq!(err.field(), Some("shell"));
///
/// let err = parse_args::<Args>(r#"{"command": 5}"#).unwrap_err();
/// assert_eq!(err.field(), Some("command"));
/// ```
pub fn parse_args<T: DeserializeOwned>(json: &str) -> Result<T, ToolError> {
    parse_value(arguments_object(json)?)
}

/// Parses `json` (the `arguments` of an MCP `tools/call`) into a JSON object value, without
/// deserializing it further: an empty string or `null` gives `{}`, anything but an object is an
/// `invalid-argument` error. [`parse_args`] is this followed by [`parse_value`].
pub fn arguments_object(json: &str) -> Result<Value, ToolError> {
    let trimmed = json.trim();
    let value = if trimmed.is_empty() {
        Value::Null
    } else {
        serde_json::from_str::<Value>(trimmed).map_err(|e| {
            ToolError::new(
                kind::INVALID_ARGUMENT,
                format!("The arguments are not valid JSON: {e}."),
            )
        })?
    };
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        other => Err(ToolError::new(
            kind::INVALID_ARGUMENT,
            format!(
                "The arguments must be a JSON object, not {}.",
                json_type_name(&other)
            ),
        )),
    }
}

/// Deserializes an arguments object into `T`, with the field-naming errors described at
/// [`parse_args`].
pub fn parse_value<T: DeserializeOwned>(value: Value) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(value).map_err(|e| field_error(&e))
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns a deserialization error into an `invalid-argument` error naming the field.
fn field_error(err: &serde_path_to_error::Error<serde_json::Error>) -> ToolError {
    let mut path: Vec<String> = err
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect();
    let inner = err.inner().to_string();

    if let Some((name, _)) = backticked_after(&inner, "missing field `") {
        path.push(name.to_owned());
        let full = path.join(".");
        return ToolError::invalid_argument(path[0].clone(), format!("`{full}` is required"));
    }

    if let Some((name, rest)) = backticked_after(&inner, "unknown field `") {
        // serde_path_to_error may or may not have pushed the unknown key already.
        if path.last().map(String::as_str) != Some(name) {
            path.push(name.to_owned());
        }
        let full = path.join(".");
        let hint = if rest.contains("there are no fields") {
            if path.len() == 1 {
                "; this tool takes no arguments".to_owned()
            } else {
                "; this object takes no fields".to_owned()
            }
        } else if let Some(expected) = rest.strip_prefix(", expected ") {
            format!("; expected {expected}")
        } else {
            String::new()
        };
        return ToolError::invalid_argument(
            path[0].clone(),
            format!("unknown argument `{full}`{hint}"),
        );
    }

    let message = friendlier(&inner);
    match path.first() {
        Some(first) => {
            let full = path.join(".");
            ToolError::invalid_argument(
                first.clone(),
                format!("invalid value for `{full}`: {message}"),
            )
        }
        None => ToolError::new(
            kind::INVALID_ARGUMENT,
            format!("invalid arguments: {message}"),
        ),
    }
}

/// If `text` contains `prefix` followed by a name and a closing backtick, returns the name and
/// what follows the backtick.
fn backticked_after<'a>(text: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let end = rest.find('`')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// Rewrites serde's Rust-flavoured type names into JSON ones.
fn friendlier(message: &str) -> String {
    let mut message = message
        .replace("invalid type: map", "invalid type: object")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: unit value", "invalid type: null");
    if let Some(pos) = message.rfind(", expected ") {
        let expected = &message[pos + ", expected ".len()..];
        let replacement = match expected {
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64"
            | "u128" | "usize" => Some("an integer"),
            "f32" | "f64" => Some("a number"),
            "a map" => Some("an object"),
            "a sequence" => Some("an array"),
            _ => None,
        };
        if let Some(replacement) = replacement {
            message.truncate(pos + ", expected ".len());
            message.push_str(replacement);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        command: String,
        port: Option<u16>,
        timeout_seconds: Option<f64>,
        env: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pty: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Empty {}

    fn err(json: &str) -> ToolError {
        parse_args::<Args>(json).unwrap_err()
    }

    #[test]
    fn parses_valid_arguments() {
        let args: Args =
            parse_args(r#"{"command":"ls","port":22,"env":{"A":"b"},"pty":true}"#).unwrap();
        assert_eq!(args.command, "ls");
        assert_eq!(args.port, Some(22));
        assert!(args.pty);
        assert_eq!(args.env.unwrap()["A"], "b");
    }

    #[test]
    fn integer_accepted_for_float() {
        let args: Args = parse_args(r#"{"command":"ls","timeout_seconds":5}"#).unwrap();
        assert_eq!(args.timeout_seconds, Some(5.0));
    }

    #[test]
    fn missing_field_names_it() {
        let e = err(r#"{"pty": false}"#);
        assert_eq!(e.kind(), "invalid-argument");
        assert_eq!(e.field(), Some("command"));
        assert_eq!(e.message(), "`command` is required");
    }

    #[test]
    fn unknown_field_names_it() {
        let e = err(r#"{"command":"ls","shell":"bash"}"#);
        assert_eq!(e.kind(), "invalid-argument");
        assert_eq!(e.field(), Some("shell"));
        assert!(
            e.message()
                .starts_with("unknown argument `shell`; expected one of `command`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn unknown_field_when_none_accepted() {
        let e = parse_args::<Empty>(r#"{"force": true}"#).unwrap_err();
        assert_eq!(e.field(), Some("force"));
        assert_eq!(
            e.message(),
            "unknown argument `force`; this tool takes no arguments"
        );
    }

    #[test]
    fn empty_and_null_arguments_are_an_empty_object() {
        parse_args::<Empty>("").unwrap();
        parse_args::<Empty>("  ").unwrap();
        parse_args::<Empty>("null").unwrap();
        parse_args::<Empty>("{}").unwrap();
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = err(r#"{"command": 5}"#);
        assert_eq!(e.field(), Some("command"));
        assert_eq!(
            e.message(),
            "invalid value for `command`: invalid type: integer `5`, expected a string"
        );

        let e = err(r#"{"command": "ls", "port": "22"}"#);
        assert_eq!(e.field(), Some("port"));
        assert_eq!(
            e.message(),
            "invalid value for `port`: invalid type: string \"22\", expected an integer"
        );

        let e = err(r#"{"command": "ls", "pty": "yes"}"#);
        assert_eq!(e.field(), Some("pty"));
        assert!(
            e.message().contains("expected a boolean"),
            "{}",
            e.message()
        );

        let e = err(r#"{"command": "ls", "env": []}"#);
        assert_eq!(e.field(), Some("env"));
        assert_eq!(
            e.message(),
            "invalid value for `env`: invalid type: array, expected an object"
        );
    }

    #[test]
    fn out_of_range_names_the_field() {
        let e = err(r#"{"command": "ls", "port": 70000}"#);
        assert_eq!(e.field(), Some("port"));
        assert!(e.message().contains("70000"), "{}", e.message());
    }

    #[test]
    fn nested_errors_name_the_top_level_field_and_the_path() {
        let e = err(r#"{"command": "ls", "env": {"A": 1}}"#);
        assert_eq!(e.field(), Some("env"));
        assert_eq!(
            e.message(),
            "invalid value for `env.A`: invalid type: integer `1`, expected a string"
        );
    }

    #[test]
    fn not_an_object() {
        let e = err("[1, 2]");
        assert_eq!(e.kind(), "invalid-argument");
        assert_eq!(e.field(), None);
        assert_eq!(
            e.message(),
            "The arguments must be a JSON object, not an array."
        );
        assert!(!e.to_json().contains("field"));
    }

    #[test]
    fn malformed_json() {
        let e = err("{\"command\": ");
        assert_eq!(e.kind(), "invalid-argument");
        assert_eq!(e.field(), None);
        assert!(
            e.message().starts_with("The arguments are not valid JSON"),
            "{}",
            e.message()
        );
    }
}
