//! Checking values against the tools' `inputSchema` and `outputSchema` (JSON Schema, draft
//! 2020-12 unless the schema names another) with the `jsonschema` crate. A schema that is
//! not valid JSON Schema is itself a failure.

use serde_json::Value;

/// Check `value` against `schema`. Returns every violation, each naming its JSON pointer
/// (`$` for the value itself).
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| vec![format!("the schema is not valid JSON Schema: {e}")])?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("${}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Panics (with the violations, the value and the schema) unless `value` fits `schema`.
#[track_caller]
pub fn assert_valid(schema: &Value, value: &Value) {
    if let Err(errors) = validate(schema, value) {
        panic!(
            "value does not match its schema:\n  {}\nvalue: {}\nschema: {}",
            errors.join("\n  "),
            serde_json::to_string_pretty(value).unwrap_or_default(),
            serde_json::to_string_pretty(schema).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_the_usual_keywords() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": 0},
                "b": {"type": ["string", "null"]},
                "c": {"$ref": "#/$defs/kind"},
                "d": {"type": "array", "items": {"type": "boolean"}}
            },
            "required": ["a"],
            "additionalProperties": false,
            "$defs": {"kind": {"enum": ["x", "y"]}}
        });
        assert!(validate(&schema, &json!({"a": 1, "b": null, "c": "x", "d": [true]})).is_ok());
        let errors = validate(
            &schema,
            &json!({"a": -1.5, "b": 3, "c": "z", "d": [1], "e": 0}),
        )
        .unwrap_err();
        // Every keyword is checked: `a` breaks both `type` and `minimum`.
        assert_eq!(errors.len(), 6, "{errors:?}");
        for place in ["$/a:", "$/b:", "$/c:", "$/d/0:", "$:"] {
            assert!(
                errors.iter().any(|e| e.starts_with(place)),
                "no error at {place}: {errors:?}"
            );
        }
        assert!(validate(&schema, &json!({})).is_err());
    }

    #[test]
    fn a_schema_that_is_not_json_schema_is_a_failure() {
        let errors = validate(&json!({"type": 12}), &json!(1)).unwrap_err();
        assert!(errors[0].contains("not valid JSON Schema"), "{errors:?}");
    }
}
