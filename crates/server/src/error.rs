//! The one error type every handler and extractor returns, rendered as an
//! RFC 9457 `application/problem+json` document:
//!
//! ```json
//! {"type": "urn:moneyflow:problem:validation-failed", "title": "…", "status": 422,
//!  "detail": "…", "errors": [{"path": "rules[1].node_type", "code": "…", "message": "…",
//!  "hint": "…", "allowed": ["condition", "task"]}], "retryable": false}
//! ```
//!
//! `type` is a stable URN that clients can match on; `retryable` says whether
//! sending the same request again later may succeed. `errors` lists at most
//! `--max-problems` entries (the limit of the request being answered, see
//! [`with_max_problems`]); `errors_omitted` counts the rest, so a body with
//! 50,000 unknown fields gets a small answer. A 500 hides its cause
//! from the caller and logs the whole cause chain with an incident id that
//! both sides see.

use std::any::Any;
use std::error::Error as StdError;
use std::future::Future;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use moneyflow_core::ports::StoreError;
use moneyflow_core::validation::{Problem, ValidationReport};
use serde::Serialize;
use utoipa::ToSchema;

/// Content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Entries of `errors` (and of `/payment-rules/validate`'s `problems`) an
/// answer lists by default; the rest are counted.
pub const DEFAULT_MAX_PROBLEMS: usize = 100;

tokio::task_local! {
    /// The `--max-problems` of the request being answered.
    static MAX_PROBLEMS: usize;
}

/// Runs `future` (a request's handling) with `max` as the most problems an
/// error answer lists.
pub async fn with_max_problems<F: Future>(max: usize, future: F) -> F::Output {
    MAX_PROBLEMS.scope(max, future).await
}

/// Middleware: the request is answered under its server's `--max-problems`.
pub async fn scope_max_problems(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    with_max_problems(state.max_problems(), next.run(request)).await
}

/// The most problems an answer lists: the request's `--max-problems`.
pub fn max_problems() -> usize {
    MAX_PROBLEMS
        .try_with(|max| *max)
        .unwrap_or(DEFAULT_MAX_PROBLEMS)
}

/// Seconds a client should wait before retrying when the store is unreachable.
pub const RETRY_AFTER_SECONDS: u32 = 5;
/// Seconds a client should wait before retrying when the store is overloaded
/// (back-pressure clears quickly).
pub const RETRY_AFTER_OVERLOADED_SECONDS: u32 = 1;

/// Everything that can go wrong answering a request. Each variant says what
/// the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (JSON syntax, a path parameter of the wrong
    /// type). Fix the request; sending it again unchanged fails again.
    #[error("bad request: {detail}")]
    BadRequest {
        detail: String,
        errors: Vec<FieldError>,
    },

    /// No credentials, or credentials that are unknown or revoked. Send a valid
    /// `Authorization: Bearer …`.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: String,
        /// A token was presented but is not valid (as opposed to none at all).
        invalid_token: bool,
    },

    /// A Standard Webhooks signed request that does not verify (missing or
    /// malformed header, stale timestamp, no matching signature). Fix the
    /// signing; a stale request must be signed again with a fresh timestamp.
    #[error("invalid signature: {0}")]
    InvalidSignature(#[from] crate::webhook::SignatureError),

    /// Valid credentials that may not do this (a company key on an admin
    /// route). Use the admin token.
    #[error("forbidden: {detail}")]
    Forbidden { detail: String },

    /// The resource does not exist, or belongs to another company (the two
    /// are indistinguishable on purpose).
    #[error("not found: {detail}")]
    NotFound { detail: String },

    /// The route exists but not with this method; the `Allow` header lists
    /// the methods it has.
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },

    /// The thing already exists (duplicate id). Pick another id.
    #[error("conflict: {detail}")]
    Conflict { detail: String },

    /// The body is larger than the configured limit. Send less.
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },

    /// The body is not declared as JSON. Send `Content-Type: application/json`.
    #[error("unsupported media type: {detail}")]
    UnsupportedMediaType { detail: String },

    /// The body is JSON but not acceptable; `errors` lists every problem with
    /// the JSON path at fault (up to `--max-problems`, the rest counted in
    /// `errors_omitted`). Fix them all and send again.
    #[error("validation failed: {detail}")]
    Validation {
        detail: String,
        errors: Vec<FieldError>,
        /// Problems found but not in `errors` (beyond what was collected).
        omitted: usize,
    },

    /// The company has no rule set, so a payment has nothing to run. Save one
    /// (`POST /payment-rules`), then send the event again.
    #[error("company {company_id} has no rule set")]
    NoRuleSet { company_id: String },

    /// The idempotency key was used before with another body. Use a new key
    /// for a new event; resend the original body to get the original answer.
    #[error("idempotency key reused with another body")]
    IdempotencyKeyReused {
        key: String,
        /// Where the key came from: `Idempotency-Key`, `event_id` or `webhook-id`.
        key_from: &'static str,
        event_id: String,
        run_id: String,
    },

    /// The company is over a rate or a count the server allows it (payments
    /// per second, open event streams). Retry after `Retry-After` seconds.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        detail: String,
        retry_after_seconds: u64,
    },

    /// The request body did not arrive within the body-read timeout.
    #[error("request timeout: {detail}")]
    RequestTimeout { detail: String },

    /// The server is at a bound it keeps (concurrent requests, the request
    /// timeout, the CPU workers and their budget). Retry after `Retry-After`.
    #[error("overloaded: {detail}")]
    Overloaded { detail: String },

    /// The store cannot be reached right now, or is shedding load. Safe to
    /// retry after `Retry-After` seconds.
    #[error("service unavailable")]
    Unavailable(#[source] StoreError),

    /// A bug or corrupt data. Not safe to retry blindly; report the incident id.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

/// The RFC 9457 body.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemDetails {
    /// A stable URN naming the kind of problem, e.g. `urn:moneyflow:problem:not-found`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Every field at fault, when the problem is about the request's
    /// content: at most the server's `--max-problems` (default 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many more problems were found than `errors` lists; absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors_omitted: u64,
    /// Whether sending the same request again later may succeed.
    pub retryable: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field (e.g. `rules[1].depends_on[0].node_id`), or the
    /// name of a path parameter.
    pub path: String,
    /// Machine-readable kind of problem (snake_case).
    pub code: String,
    pub message: String,
    /// How to fix it, e.g. the nearest existing node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The values that would have been accepted, when there is a fixed set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
}

impl FieldError {
    pub fn new(
        path: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            code: code.into(),
            message: message.into(),
            hint: None,
            allowed: Vec::new(),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_allowed<I, S>(mut self, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed = allowed.into_iter().map(Into::into).collect();
        self
    }
}

impl From<Problem> for FieldError {
    fn from(problem: Problem) -> Self {
        // The core's code is an enum serialised as snake_case; keep exactly
        // that string so the API and the core agree.
        let code = match serde_json::to_value(problem.code) {
            Ok(serde_json::Value::String(code)) => code,
            _ => "invalid_value".to_owned(),
        };
        Self {
            path: problem.path,
            code,
            message: problem.message,
            hint: problem.hint,
            allowed: problem.allowed,
        }
    }
}

impl ApiError {
    /// A 422 listing every problem of a rule set.
    pub fn from_report(report: ValidationReport) -> Self {
        let count = report.problems.len();
        Self::Validation {
            detail: format!(
                "the rule set has {count} problem{}; each is listed in `errors` with the JSON path at fault",
                if count == 1 { "" } else { "s" }
            ),
            errors: report.problems.into_iter().map(FieldError::from).collect(),
            omitted: 0,
        }
    }

    /// A 422 for the numbers of a body that are out of range
    /// ([`moneyflow_core::validation::numbers_out_of_range`]).
    pub fn numbers_out_of_range(problems: Vec<Problem>, total: usize) -> Self {
        let omitted = total.saturating_sub(problems.len());
        Self::Validation {
            detail: format!(
                "the request body has {total} number{} out of range; each is listed in `errors` with its path",
                if total == 1 { "" } else { "s" }
            ),
            errors: problems.into_iter().map(FieldError::from).collect(),
            omitted,
        }
    }

    /// A 422 about the fields of a small request body.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let count = errors.len();
        Self::Validation {
            detail: format!(
                "the request body has {count} problem{}; each is listed in `errors`",
                if count == 1 { "" } else { "s" }
            ),
            errors,
            omitted: 0,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound {
            detail: detail.into(),
        }
    }

    pub fn internal(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(error.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } | Self::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. }
            | Self::NoRuleSet { .. }
            | Self::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable(_) | Self::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last part of the `type` URN.
    fn slug(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "bad-request",
            Self::Unauthorized { .. } => "unauthorized",
            Self::InvalidSignature(_) => "invalid-signature",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not-found",
            Self::MethodNotAllowed { .. } => "method-not-allowed",
            Self::Conflict { .. } => "conflict",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::UnsupportedMediaType { .. } => "unsupported-media-type",
            Self::Validation { .. } => "validation-failed",
            Self::NoRuleSet { .. } => "no-rule-set",
            Self::IdempotencyKeyReused { .. } => "idempotency-key-reused",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::RequestTimeout { .. } => "request-timeout",
            Self::Overloaded { .. } => "overloaded",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "Bad request",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::InvalidSignature(_) => "Invalid webhook signature",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotFound { .. } => "Not found",
            Self::MethodNotAllowed { .. } => "Method not allowed",
            Self::Conflict { .. } => "Conflict",
            Self::PayloadTooLarge { .. } => "Payload too large",
            Self::UnsupportedMediaType { .. } => "Unsupported media type",
            Self::Validation { .. } => "Validation failed",
            Self::NoRuleSet { .. } => "No rule set",
            Self::IdempotencyKeyReused { .. } => "Idempotency key reused",
            Self::TooManyRequests { .. } => "Too many requests",
            Self::RequestTimeout { .. } => "Request timeout",
            Self::Overloaded { .. } => "Overloaded",
            Self::Unavailable(_) => "Service unavailable",
            Self::Internal(_) => "Internal server error",
        }
    }

    /// Whether the same request may succeed later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::TooManyRequests { .. }
                | Self::RequestTimeout { .. }
                | Self::Overloaded { .. }
        )
    }

    /// The body, logging what must not reach the caller.
    fn into_problem(self) -> ProblemDetails {
        let status = self.status();
        let mut problem = ProblemDetails {
            problem_type: format!("urn:moneyflow:problem:{}", self.slug()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            detail: String::new(),
            errors: Vec::new(),
            errors_omitted: 0,
            retryable: self.retryable(),
        };
        match self {
            Self::BadRequest { detail, errors } => {
                problem.detail = detail;
                problem.errors = errors;
            }
            Self::Validation {
                detail,
                mut errors,
                omitted,
            } => {
                let max = max_problems();
                let dropped = errors.len().saturating_sub(max);
                errors.truncate(max);
                problem.errors = errors;
                problem.errors_omitted = u64::try_from(omitted + dropped).unwrap_or(u64::MAX);
                problem.detail = if problem.errors_omitted > 0 {
                    format!(
                        "{detail} (only the first {} are in `errors`; `errors_omitted` counts the other {})",
                        problem.errors.len(),
                        problem.errors_omitted
                    )
                } else {
                    detail
                };
            }
            Self::Unauthorized { detail, .. }
            | Self::Forbidden { detail }
            | Self::NotFound { detail }
            | Self::Conflict { detail }
            | Self::UnsupportedMediaType { detail }
            | Self::TooManyRequests { detail, .. }
            | Self::RequestTimeout { detail }
            | Self::Overloaded { detail } => problem.detail = detail,
            Self::InvalidSignature(error) => problem.detail = error.to_string(),
            Self::NoRuleSet { company_id } => {
                problem.detail = format!(
                    "company `{company_id}` has no rule set, so a payment has nothing to run: \
                     save one with `POST /payment-rules` ({{\"company_id\": \"{company_id}\", \"rules\": [...]}}), \
                     then send the event again"
                )
            }
            Self::IdempotencyKeyReused {
                key,
                key_from,
                event_id,
                run_id,
            } => {
                problem.detail = format!(
                    "the idempotency key `{key}` was already used for event `{event_id}` (run `{run_id}`) \
                     with a different body; use a new key (or `event_id`) for a new event, \
                     or resend the original body to get the original answer"
                );
                problem.errors = vec![FieldError::new(
                    key_from,
                    "idempotency_key_reused",
                    format!("`{key}` was used before with a different body"),
                )];
            }
            Self::MethodNotAllowed { method, path } => {
                problem.detail = format!(
                    "{path} does not accept {method}; the Allow header lists the methods it accepts"
                )
            }
            Self::PayloadTooLarge { limit } => {
                problem.detail =
                    format!("the request body is larger than the limit of {limit} bytes")
            }
            Self::Unavailable(StoreError::Overloaded) => {
                tracing::warn!("store overloaded");
                problem.detail = format!(
                    "the server is overloaded right now; retry in {RETRY_AFTER_OVERLOADED_SECONDS} second"
                );
            }
            Self::Unavailable(error) => {
                tracing::warn!(error = %error_chain(&error), "store unavailable");
                problem.detail = format!(
                    "the store is unavailable right now; retry in {RETRY_AFTER_SECONDS} seconds"
                );
            }
            Self::Internal(error) => {
                let incident = uuid::Uuid::new_v4();
                tracing::error!(%incident, error = %error_chain(error.as_ref()), "internal error");
                problem.detail =
                    format!("an internal error occurred; it was logged as incident {incident}");
            }
        }
        problem
    }
}

/// `outer: inner: innermost`, so one log line holds the whole cause chain.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(detail) => Self::Conflict { detail },
            StoreError::NotFound(detail) => Self::NotFound { detail },
            StoreError::Unavailable(_) | StoreError::Overloaded => Self::Unavailable(error),
            StoreError::Internal(_) => Self::Internal(Box::new(error)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let www_authenticate = match &self {
            Self::Unauthorized {
                invalid_token: true,
                ..
            } => Some(r#"Bearer realm="moneyflow", error="invalid_token""#),
            // The route also takes Bearer credentials: say so, as a 401 must.
            Self::Unauthorized { .. } | Self::InvalidSignature(_) => {
                Some(r#"Bearer realm="moneyflow""#)
            }
            _ => None,
        };
        let retry_after = match &self {
            Self::Unavailable(StoreError::Overloaded) | Self::Overloaded { .. } => {
                Some(u64::from(RETRY_AFTER_OVERLOADED_SECONDS))
            }
            Self::TooManyRequests {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            Self::Unavailable(_) => Some(u64::from(RETRY_AFTER_SECONDS)),
            _ => None,
        };
        if status.is_client_error() {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let kind = ProblemKind(self.slug());
        let problem = self.into_problem();
        // Serialising these plain structs cannot fail; fall back to a fixed body anyway
        // so this path never panics.
        let body = serde_json::to_vec(&problem).unwrap_or_else(|_| {
            br#"{"type":"urn:moneyflow:problem:internal","title":"Internal server error","status":500,"detail":"","retryable":false}"#.to_vec()
        });
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(value) = www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // For middleware that counts rejections by kind (`metrics.rs`)
        // without reading the body.
        response.extensions_mut().insert(kind);
        response
    }
}

/// The kind of problem an error response carries: the last part of its
/// `type` URN (`validation-failed`, `unauthorized`…), as a response extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind(pub &'static str);

/// The last resort of `CatchPanicLayer`: a panic becomes a logged 500 problem.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    ApiError::internal(format!("handler panicked: {message}")).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use moneyflow_core::validation::ProblemCode;

    use super::*;

    async fn render(error: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            headers,
            serde_json::from_slice(&body).expect("json"),
        )
    }

    #[tokio::test]
    async fn every_error_is_problem_json_with_matching_status() {
        let errors = vec![
            ApiError::BadRequest {
                detail: "x".into(),
                errors: vec![],
            },
            ApiError::Unauthorized {
                detail: "x".into(),
                invalid_token: false,
            },
            ApiError::Forbidden { detail: "x".into() },
            ApiError::not_found("x"),
            ApiError::MethodNotAllowed {
                method: "PUT".into(),
                path: "/".into(),
            },
            ApiError::Conflict { detail: "x".into() },
            ApiError::PayloadTooLarge { limit: 10 },
            ApiError::UnsupportedMediaType { detail: "x".into() },
            ApiError::invalid_fields(vec![FieldError::new("name", "missing", "name is required")]),
            ApiError::Unavailable(StoreError::Unavailable("down".into())),
            ApiError::InvalidSignature(crate::webhook::SignatureError::NoMatch),
            ApiError::NoRuleSet {
                company_id: "acme".into(),
            },
            ApiError::IdempotencyKeyReused {
                key: "k".into(),
                key_from: "event_id",
                event_id: "e".into(),
                run_id: "r".into(),
            },
            ApiError::internal("boom"),
        ];
        for error in errors {
            let expected = error.status();
            let (status, headers, body) = render(error).await;
            assert_eq!(status, expected);
            assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_JSON);
            assert_eq!(body["status"], expected.as_u16());
            assert!(
                body["type"]
                    .as_str()
                    .unwrap()
                    .starts_with("urn:moneyflow:problem:")
            );
            assert!(body["title"].is_string());
            assert!(body["detail"].is_string());
            assert!(body["retryable"].is_boolean());
        }
    }

    #[tokio::test]
    async fn unavailable_store_is_503_retryable_with_retry_after() {
        let error = ApiError::from(StoreError::Unavailable("connection refused".into()));
        let (status, headers, body) = render(error).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "5");
        assert_eq!(body["retryable"], true);

        let (status, headers, body) = render(ApiError::from(StoreError::Overloaded)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(body["retryable"], true);
    }

    #[tokio::test]
    async fn internal_error_hides_its_cause() {
        let error = ApiError::from(StoreError::Internal("password=hunter2 in a query".into()));
        let (status, _, body) = render(error).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["retryable"], false);
        let text = body.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("incident"), "{text}");
    }

    #[tokio::test]
    async fn unauthorized_says_bearer() {
        let (_, headers, _) = render(ApiError::Unauthorized {
            detail: "x".into(),
            invalid_token: false,
        })
        .await;
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (_, headers, _) = render(ApiError::Unauthorized {
            detail: "x".into(),
            invalid_token: true,
        })
        .await;
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }

    #[tokio::test]
    async fn store_conflict_and_not_found_map_to_409_and_404() {
        assert_eq!(
            ApiError::from(StoreError::Conflict("id".into())).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from(StoreError::NotFound("id".into())).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn validation_report_keeps_every_problem_and_its_fields() {
        let report = ValidationReport {
            problems: vec![
                Problem {
                    path: "company_id".into(),
                    code: ProblemCode::Missing,
                    message: "company_id is required".into(),
                    hint: None,
                    allowed: vec![],
                },
                Problem {
                    path: "rules".into(),
                    code: ProblemCode::Missing,
                    message: "rules is required".into(),
                    hint: Some("send a list of nodes".into()),
                    allowed: vec!["a".into()],
                },
            ],
        };
        let (status, _, body) = render(ApiError::from_report(report)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["type"], "urn:moneyflow:problem:validation-failed");
        let errors = body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0]["path"], "company_id");
        assert_eq!(errors[0]["code"], "missing");
        assert!(errors[0].get("hint").is_none());
        assert_eq!(errors[1]["hint"], "send a list of nodes");
        assert_eq!(errors[1]["allowed"][0], "a");
    }

    #[tokio::test]
    async fn panic_becomes_a_500_problem() {
        let response = panic_response(Box::new("oops"));
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }

    #[test]
    fn error_chain_joins_causes() {
        let error = StoreError::Internal("disk full".into());
        assert_eq!(error_chain(&error), "store failure: disk full");
    }
}
