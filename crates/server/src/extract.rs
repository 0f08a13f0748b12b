//! Extractors whose rejections are [`ApiError`] problems instead of axum's
//! plain-text ones, and the router's 404/405 fallbacks.
//!
//! - [`JsonBody`]: the request body as JSON, used by every handler that
//!   takes one. Not JSON-typed → 415 naming what is allowed; over the body
//!   limit → 413; slower than the body-read timeout → 408; malformed → 400 whose detail gives line and column; a
//!   number out of range (`1e999999`) → 422 `number_out_of_range` naming
//!   its path, so it is never stored or echoed.
//!   `Option<JsonBody<T>>` accepts an empty body as `None`.
//! - [`RawJsonBody`]: the same checks, keeping the exact bytes as well as the
//!   parsed value, for what must see the body as sent (webhook signatures,
//!   the body hash that tells an idempotent replay from a reused key).
//! - [`Path`]: path parameters; a value of the wrong type → 400 naming the
//!   parameter.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// What the 415 says is accepted.
const ALLOWED_CONTENT_TYPES: &str = "application/json (or any application/*+json)";

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // The content type is checked before the body is read, so a client
        // sending the wrong thing learns it without uploading it all.
        check_json_content_type(req.headers())?;
        let bytes = read_body(req, state).await?;
        parse_checked(&bytes).map(JsonBody)
    }
}

/// A JSON request body as sent and as parsed; the bytes are read once.
#[derive(Debug, Clone)]
pub struct RawJsonBody {
    pub bytes: Bytes,
    pub value: serde_json::Value,
}

impl FromRequest<AppState> for RawJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        check_json_content_type(req.headers())?;
        let bytes = read_body(req, state).await?;
        let value = parse_json(&bytes)?;
        check_numbers(&value)?;
        Ok(Self { bytes, value })
    }
}

impl<T: DeserializeOwned> OptionalFromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        let content_type_present = req.headers().contains_key(header::CONTENT_TYPE);
        if content_type_present {
            check_json_content_type(req.headers())?;
        }
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !content_type_present {
            check_json_content_type(&HeaderMap::new())?;
        }
        parse_checked(&bytes).map(|value| Some(JsonBody(value)))
    }
}

/// `application/json`, `application/json; charset=utf-8` and
/// `application/<anything>+json` (e.g. `application/merge-patch+json`).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE) {
        None => Err(ApiError::UnsupportedMediaType {
            detail: format!(
                "the request has no Content-Type; send the body as {ALLOWED_CONTENT_TYPES}"
            ),
        }),
        Some(value) => {
            let text = value.to_str().unwrap_or("(not text)");
            if is_json_content_type(text) {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType {
                    detail: format!(
                        "Content-Type `{}` is not accepted; send the body as {ALLOWED_CONTENT_TYPES}",
                        truncate(text, 100)
                    ),
                })
            }
        }
    }
}

/// Reads the whole body, bounded by the `DefaultBodyLimit` layer that
/// [`crate::app`] installs with the configured limit.
async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    match Bytes::from_request(req, state).await {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::PayloadTooLarge {
                limit: state.body_limit(),
            })
        }
        Err(rejection) if is_body_timeout(&rejection) => Err(ApiError::RequestTimeout {
            detail: format!(
                "the request body did not arrive within {} s (--body-read-timeout); send it again, faster",
                state.tenant_limits().http.body_read_timeout.as_secs_f64()
            ),
        }),
        Err(rejection) => Err(ApiError::BadRequest {
            detail: format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ),
            errors: Vec::new(),
        }),
    }
}

/// Whether reading the body stopped at the body-read timeout.
fn is_body_timeout(rejection: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(rejection);
    while let Some(error) = source {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// `(line, column, message)` of a serde_json error, the message without
/// serde_json's trailing " at line L column C" so the position is said once,
/// in a fixed place.
pub fn json_error_parts(error: &serde_json::Error) -> (usize, usize, String) {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    (line, column, message)
}

/// Refuses numbers no part of MoneyFlow can hold, naming each one's path.
fn check_numbers(value: &serde_json::Value) -> Result<(), ApiError> {
    let (problems, total) =
        moneyflow_core::validation::numbers_out_of_range(value, crate::error::max_problems());
    if total == 0 {
        Ok(())
    } else {
        Err(ApiError::numbers_out_of_range(problems, total))
    }
}

/// The body parsed as JSON, its numbers checked, then read as a `T`.
fn parse_checked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = parse_json(bytes)?;
    check_numbers(&value)?;
    serde_json::from_value(value).map_err(|error| {
        ApiError::invalid_fields(vec![FieldError::new("", "wrong_type", error.to_string())])
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        let (line, column, message) = json_error_parts(&error);
        match error.classify() {
            serde_json::error::Category::Data => ApiError::invalid_fields(vec![FieldError::new(
                "",
                "wrong_type",
                format!("{message} (line {line}, column {column})"),
            )]),
            _ => ApiError::BadRequest {
                detail: format!("malformed JSON at line {line}, column {column}: {message}"),
                errors: Vec::new(),
            },
        }
    })
}

/// Path parameters whose rejection is a 400 problem naming the parameter.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;

        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let (key, field) = match error.kind() {
                    ErrorKind::ParseErrorAtKey {
                        key,
                        value,
                        expected_type,
                    } => (
                        key.clone(),
                        FieldError::new(
                            key.clone(),
                            "wrong_type",
                            format!(
                                "path parameter `{key}` must be {}, got `{}`",
                                describe_type(expected_type),
                                truncate(value, 100)
                            ),
                        ),
                    ),
                    ErrorKind::InvalidUtf8InPathParam { key } => (
                        key.clone(),
                        FieldError::new(
                            key.clone(),
                            "invalid_value",
                            format!("path parameter `{key}` is not valid UTF-8"),
                        ),
                    ),
                    other => (
                        String::new(),
                        FieldError::new("", "invalid_value", other.to_string()),
                    ),
                };
                let detail = if key.is_empty() {
                    field.message.clone()
                } else {
                    format!("invalid path parameter `{key}`: {}", field.message)
                };
                Err(ApiError::BadRequest {
                    detail,
                    errors: vec![field],
                })
            }
            // Only a route declared without the parameters its handler reads
            // gets here: a bug, not the caller's fault.
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

fn describe_type(rust_type: &str) -> &'static str {
    match rust_type {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" | "isize" => {
            "an integer"
        }
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        _ => "a string",
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Fallback for routes that do not exist.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {}; the routes are listed at /openapi.json",
        truncate(uri.path(), 200)
    ))
}

/// Fallback for routes that exist without this method (axum keeps the `Allow` header).
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: truncate(uri.path(), 200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
        assert!(!is_json_content_type("text/json+xml"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let error = parse_json::<serde_json::Value>(b"{\n  \"a\": 1,\n  oops\n}").unwrap_err();
        match error {
            ApiError::BadRequest { detail, .. } => {
                assert!(detail.contains("line 3, column 3"), "{detail}");
                assert_eq!(detail.matches("line").count(), 1, "said once: {detail}");
            }
            other => panic!("expected 400, got {other:?}"),
        }
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ab", 2), "ab");
    }
}
