//! A small JSON Schema checker, enough for the tools' `inputSchema` and `outputSchema`:
//! `type` (one or a list), `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//! `minLength`, `maxLength`, `minItems`, `maxItems`, `anyOf`, `oneOf`, `allOf`, `not`,
//! `nullable` and local `$ref`s (`#/$defs/...`, `#/definitions/...`). Other keywords are
//! ignored (so a schema can only be too permissive here, never too strict).

use serde_json::Value;

/// Check `value` against `schema`. Returns every violation, each naming its JSON path.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors, 0);
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

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64()
                || value.is_u64()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => true,
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

fn check(
    root: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
    depth: u32,
) {
    if depth > 64 {
        errors.push(format!("{path}: schema nesting too deep (recursive $ref?)"));
        return;
    }
    let obj = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            errors.push(format!("{path}: not allowed (schema `false`)"));
            return;
        }
        Value::Object(o) => o,
        _ => {
            errors.push(format!("{path}: the schema is not an object: {schema}"));
            return;
        }
    };

    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        match resolve(root, reference) {
            Some(target) => check(root, target, value, path, errors, depth + 1),
            None => errors.push(format!("{path}: unresolvable $ref {reference}")),
        }
    }

    let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
    if let Some(ty) = obj.get("type") {
        let ok = match ty {
            Value::String(t) => type_matches(t, value),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, value)),
            _ => true,
        } || (nullable && value.is_null());
        if !ok {
            errors.push(format!("{path}: expected type {ty}, got {}", short(value)));
            return;
        }
    }

    if let Some(options) = obj.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        errors.push(format!(
            "{path}: {} is not one of {}",
            short(value),
            Value::Array(options.clone())
        ));
    }
    if let Some(c) = obj.get("const")
        && c != value
    {
        errors.push(format!("{path}: {} is not the constant {c}", short(value)));
    }

    if let Some(n) = value.as_f64() {
        let bound = |k: &str| obj.get(k).and_then(Value::as_f64);
        if let Some(min) = bound("minimum")
            && n < min
        {
            errors.push(format!("{path}: {n} < minimum {min}"));
        }
        if let Some(max) = bound("maximum")
            && n > max
        {
            errors.push(format!("{path}: {n} > maximum {max}"));
        }
        if let Some(min) = bound("exclusiveMinimum")
            && n <= min
        {
            errors.push(format!("{path}: {n} <= exclusiveMinimum {min}"));
        }
        if let Some(max) = bound("exclusiveMaximum")
            && n >= max
        {
            errors.push(format!("{path}: {n} >= exclusiveMaximum {max}"));
        }
    }

    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = obj.get("minLength").and_then(Value::as_u64)
            && len < min
        {
            errors.push(format!("{path}: string shorter than {min}"));
        }
        if let Some(max) = obj.get("maxLength").and_then(Value::as_u64)
            && len > max
        {
            errors.push(format!("{path}: string longer than {max}"));
        }
    }

    if let Some(items) = value.as_array() {
        if let Some(min) = obj.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            errors.push(format!("{path}: fewer than {min} items"));
        }
        if let Some(max) = obj.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            errors.push(format!("{path}: more than {max} items"));
        }
        if let Some(item_schema) = obj.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(
                    root,
                    item_schema,
                    item,
                    &format!("{path}[{i}]"),
                    errors,
                    depth + 1,
                );
            }
        }
    }

    if let Some(map) = value.as_object() {
        let properties = obj.get("properties").and_then(Value::as_object);
        if let Some(required) = obj.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    errors.push(format!("{path}: required property `{name}` is missing"));
                }
            }
        }
        for (key, v) in map {
            let child = format!("{path}.{key}");
            if let Some(prop_schema) = properties.and_then(|p| p.get(key)) {
                check(root, prop_schema, v, &child, errors, depth + 1);
            } else {
                match obj.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: property `{key}` is not allowed"))
                    }
                    Some(extra @ Value::Object(_)) => {
                        check(root, extra, v, &child, errors, depth + 1)
                    }
                    _ => {}
                }
            }
        }
    }

    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(root, s, value, path, errors, depth + 1);
        }
    }
    if let Some(any) = obj.get("anyOf").and_then(Value::as_array) {
        let matches = any.iter().filter(|s| fits(root, s, value, depth)).count();
        if matches == 0 {
            errors.push(format!("{path}: {} matches none of anyOf", short(value)));
        }
    }
    if let Some(one) = obj.get("oneOf").and_then(Value::as_array) {
        let matches = one.iter().filter(|s| fits(root, s, value, depth)).count();
        if matches != 1 {
            errors.push(format!(
                "{path}: {} matches {matches} of oneOf (must be 1)",
                short(value)
            ));
        }
    }
    if let Some(not) = obj.get("not")
        && fits(root, not, value, depth)
    {
        errors.push(format!("{path}: {} matches a `not` schema", short(value)));
    }
}

fn fits(root: &Value, schema: &Value, value: &Value, depth: u32) -> bool {
    let mut errors = Vec::new();
    check(root, schema, value, "$", &mut errors, depth + 1);
    errors.is_empty()
}

fn short(value: &Value) -> String {
    let s = value.to_string();
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
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
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(validate(&schema, &json!({})).is_err());
    }
}
