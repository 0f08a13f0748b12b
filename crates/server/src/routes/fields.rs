//! Small checks that several handlers apply to JSON bodies they read field
//! by field, so every problem of a body is reported at once and in one form.

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};

/// The body as an object, or a 422 that says what it should be (`shape`).
pub fn body_object(body: Value, shape: &str) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "wrong_type",
            format!("the body must be a JSON object: {shape}"),
        )])),
    }
}

/// Adds an `unknown_field` problem, listing the known ones, for each field
/// of `map` not in `known` (usually a typo).
pub fn unknown_fields(map: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for key in map.keys().filter(|key| !known.contains(&key.as_str())) {
        errors.push(
            FieldError::new(
                key.clone(),
                "unknown_field",
                format!("unknown field `{key}`"),
            )
            .with_allowed(known.iter().copied()),
        );
    }
}
