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

/// A JSON number that is a whole number from 0, as JSON Schema's `integer`
/// counts them: `52647` and `52647.0` alike; `None` for anything else.
pub fn whole_number(value: &Value) -> Option<u64> {
    let Value::Number(number) = value else {
        return None;
    };
    number.as_u64().or_else(|| {
        // Integral floats up to 2^53 are exact; past it a float is not a
        // count anyone means.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=EXACT).contains(f))
            .map(|f| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let whole = f as u64;
                whole
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_may_be_written_as_integral_floats() {
        assert_eq!(whole_number(&json!(52647)), Some(52647));
        assert_eq!(whole_number(&json!(52647.0)), Some(52647));
        assert_eq!(whole_number(&json!(0)), Some(0));
        assert_eq!(whole_number(&json!(1.5)), None);
        assert_eq!(whole_number(&json!(-1)), None);
        assert_eq!(whole_number(&json!(-1.0)), None);
        assert_eq!(whole_number(&json!(1e300)), None);
        assert_eq!(whole_number(&json!("7")), None);
    }
}
