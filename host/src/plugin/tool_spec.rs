//! A tool's description as its component gives it (`describe`): title, description,
//! input and output schemas, and the behaviour hints it declares, checked so clients get
//! valid object schemas.

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

use super::bindings::exports::mcpssh::plugin::tool;

/// A tool's description: as its component gave it, with the behaviour hints the host
/// advertises (see `annotations`).
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Map<String, Value>,
    pub output_schema: Option<Map<String, Value>>,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl ToolSpec {
    /// The description a component gave of one of its tools, with its schemas parsed.
    pub fn from_descriptor(d: tool::Descriptor) -> Result<ToolSpec> {
        Ok(ToolSpec {
            input_schema: parse_schema(&d.name, "input", &d.input_schema)?,
            output_schema: d
                .output_schema
                .as_deref()
                .map(|s| parse_schema(&d.name, "output", s))
                .transpose()?,
            title: d.title,
            description: d.description,
            read_only: d.read_only,
            destructive: d.destructive,
            idempotent: d.idempotent,
            open_world: d.open_world,
        })
    }
}

fn parse_schema(tool: &str, which: &str, text: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("tool {tool}: its {which} schema is not JSON: {e}"))?;
    match value {
        Value::Object(map) if map.get("type") == Some(&Value::String("object".into())) => Ok(map),
        _ => bail!(
            "tool {tool}: its {which} schema must be a JSON object schema with \"type\": \"object\""
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_must_be_object_schemas() {
        assert!(parse_schema("t", "input", r#"{"type":"object"}"#).is_ok());
        assert!(parse_schema("t", "input", r#"{"type":"string"}"#).is_err());
        assert!(parse_schema("t", "input", "nope").is_err());
    }
}
