//! JSON Schemas of a tool's arguments and result, derived with schemars.

use schemars::generate::SchemaSettings;
use schemars::transform::RestrictFormats;
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value};

fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .with_transform(RestrictFormats::default())
}

/// The JSON Schema of a tool's arguments, as sent in the MCP `inputSchema`.
///
/// It describes how `T` is *deserialized*: `Option` fields and fields with `#[serde(default)]`
/// are not required, and `#[serde(deny_unknown_fields)]` gives `"additionalProperties": false`.
/// Subschemas are inlined (no `$ref`/`$defs` for non-recursive types), non-standard `format`s
/// such as `uint16` are dropped, and so are the root `$schema`, `title` and `description` (the
/// tool's description is [`ToolInfo::description`](crate::ToolInfo::description)). An object
/// schema always has `properties`, possibly empty.
///
/// ```
/// use mcpssh_sdk::{input_schema, JsonSchema};
/// use serde::Deserialize;
///
/// #[derive(Deserialize, JsonSchema)]
/// #[serde(deny_unknown_fields)]
/// struct Args {
///     /// The command line.
///     command: String,
///     port: Option<u16>,
/// }
///
/// let schema = input_schema::<Args>();
/// assert_eq!(schema["type"], "object");
/// assert_eq!(schema["additionalProperties"], false);
/// assert_eq!(schema["required"], serde_json::json!(["command"]));
/// assert_eq!(schema["properties"]["port"]["type"], "integer");
/// ```
pub fn input_schema<T: JsonSchema>() -> Value {
    let mut schema = finish(
        settings()
            .for_deserialize()
            .into_generator()
            .into_root_schema_for::<T>(),
    );
    drop_null_from_optional_properties(&mut schema);
    schema
}

/// The JSON Schema of a tool's result (its success value), as sent in the MCP `outputSchema`.
///
/// It describes how `T` is *serialized*: every field that is always written is required, and
/// `Option` fields allow `null`. Otherwise shaped like [`input_schema`].
pub fn output_schema<T: JsonSchema>() -> Value {
    finish(
        settings()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<T>(),
    )
}

fn finish(schema: Schema) -> Value {
    let mut value = schema.to_value();
    unwrap_descriptions(&mut value);
    if let Value::Object(map) = &mut value {
        map.remove("$schema");
        map.remove("title");
        map.remove("description");
        if map.get("type").and_then(Value::as_str) == Some("object")
            && !map.contains_key("properties")
        {
            map.insert("properties".into(), Value::Object(Map::new()));
        }
    }
    value
}

/// Doc comments keep their line breaks in schemars' descriptions; a model reads them better as
/// flowing text. Joins the lines of each paragraph, keeping blank lines, list items and code.
fn unwrap_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => *text = unwrap_lines(text),
                    _ => unwrap_descriptions(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// Joins the lines of each paragraph of `text` with spaces (see [`unwrap_descriptions`]).
pub(crate) fn unwrap_lines(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    if lines
        .iter()
        .any(|l| l.starts_with("```") || l.starts_with("    "))
    {
        return text.to_owned();
    }
    let starts_item = |line: &str| {
        let t = line.trim_start();
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        t.starts_with("- ")
            || t.starts_with("* ")
            || t.starts_with("+ ")
            || (digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") ")))
    };
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            let prev = lines[i - 1];
            let keep = prev.trim().is_empty() || line.trim().is_empty() || starts_item(line);
            out.push(if keep { '\n' } else { ' ' });
        }
        out.push_str(line);
    }
    out
}

/// An optional argument also accepts `null` (serde reads it as `None`), but saying so makes the
/// schema harder for clients and models; leaving an argument out is the documented way.
fn drop_null_from_optional_properties(schema: &mut Value) {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(Value::Object(properties)) = schema.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Value::Object(property) = property else {
            continue;
        };
        // `"type": ["integer", "null"]` becomes `"type": "integer"`.
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                property.insert("type".into(), only);
            }
        }
        // `"anyOf": [{...}, {"type": "null"}]` becomes `{...}`.
        if let Some(Value::Array(branches)) = property.get_mut("anyOf") {
            branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
            if branches.len() == 1
                && let Some(Value::Object(branch)) = property
                    .remove("anyOf")
                    .and_then(|mut a| a.as_array_mut().map(|a| a.remove(0)))
            {
                for (k, v) in branch {
                    property.entry(k).or_insert(v);
                }
            }
        }
        // An explicit `"default": null` says nothing.
        if property.get("default") == Some(&Value::Null) {
            property.remove("default");
        }
    }
}

/// Every place in `value` where a `$ref` appears, as JSON pointers.
pub(crate) fn find_refs(value: &Value, pointer: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{key}");
                if key == "$ref" {
                    found.push(child_pointer.clone());
                }
                find_refs(child, &child_pointer, found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_refs(child, &format!("{pointer}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    /// Noise for the model.
    struct Args {
        /// The command line.
        command: String,
        port: Option<u16>,
        env: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pty: bool,
        nested: Option<Nested>,
    }

    #[derive(Deserialize, Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Nested {
        a: u32,
    }

    #[derive(Serialize, JsonSchema)]
    struct Output {
        success: bool,
        exit_code: Option<i32>,
        nested: Nested,
    }

    #[test]
    fn input_schema_shape() {
        let s = input_schema::<Args>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["command"]));
        assert!(s.get("$schema").is_none());
        assert!(s.get("title").is_none());
        assert!(s.get("description").is_none());
        assert_eq!(
            s["properties"]["command"]["description"],
            "The command line."
        );
        // Optional arguments are not nullable in the input schema, and odd formats are gone.
        assert_eq!(s["properties"]["port"]["type"], "integer");
        assert!(s["properties"]["port"].get("format").is_none());
        assert_eq!(
            s["properties"]["env"]["additionalProperties"]["type"],
            "string"
        );
        assert_eq!(s["properties"]["pty"]["default"], false);
        let mut refs = Vec::new();
        find_refs(&s, "", &mut refs);
        assert!(refs.is_empty(), "{refs:?} in {s}");
        assert!(s.get("$defs").is_none());
        assert_eq!(s["properties"]["nested"]["type"], "object");
        assert_eq!(s["properties"]["nested"]["required"], json!(["a"]));
        assert_eq!(s["properties"]["env"]["type"], "object");
    }

    #[test]
    fn output_schema_shape() {
        let s = output_schema::<Output>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["success", "exit_code", "nested"]));
        assert_eq!(
            s["properties"]["exit_code"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(s["properties"]["nested"]["type"], "object");
        assert!(s.get("$defs").is_none());
    }

    #[test]
    fn description_lines_are_joined() {
        assert_eq!(unwrap_lines("one line"), "one line");
        assert_eq!(
            unwrap_lines("first half\nsecond half."),
            "first half second half."
        );
        assert_eq!(
            unwrap_lines("para one\n\npara two\ngoes on"),
            "para one\n\npara two goes on"
        );
        assert_eq!(
            unwrap_lines("Either:\n- a\n- b\n1. c"),
            "Either:\n- a\n- b\n1. c"
        );
        assert_eq!(unwrap_lines("x\n```\ncode\n```"), "x\n```\ncode\n```");
    }

    #[test]
    fn multi_line_doc_comments_become_one_line() {
        #[derive(Deserialize, JsonSchema)]
        #[allow(dead_code)]
        struct A {
            /// A description that is
            /// long enough to wrap.
            a: String,
        }
        let s = input_schema::<A>();
        assert_eq!(
            s["properties"]["a"]["description"],
            "A description that is long enough to wrap."
        );
    }

    #[test]
    fn empty_struct_has_empty_properties() {
        let s = input_schema::<crate::NoArgs>();
        assert_eq!(
            s,
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        );
    }
}
