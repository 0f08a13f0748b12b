//! `POST /payment`: the Router (DESIGN §1 step 2).
//!
//! In order: authenticate (a Bearer company key or the admin token, or a
//! Standard Webhooks signature with the company's signing secret), validate
//! the event (every problem at once), settle the idempotency key, pin the
//! company's current rule version, and store the event with its queued run
//! in one durable transaction ([`EventStore::accept_event`]). Only then the
//! answer is `202 Accepted`: a 2xx always means the run will happen.
//!
//! The body is read once as bytes: the signature and the body hash (which
//! tells a replay from a reused key) are over the bytes as sent, not over a
//! re-serialisation.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use moneyflow_core::event::{PaymentEvent, validate_event};
use moneyflow_core::ports::{
    AcceptOutcome, CompanyStore, EventStore, NewEvent, RuleStore, SigningSecretStore,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::RawJsonBody;
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::state::AppState;
use crate::webhook::{self, SignatureError, SignedHeaders};

/// The header a sender may set to make a retry safe; else the event's `event_id` is the key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// Set on the answer to a replay: the original answer, nothing was stored.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A payment event (the original format; further fields are kept as given).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct PaymentEventRequest {
    #[schema(example = "demo", pattern = "^[A-Za-z0-9_-]{1,128}$")]
    pub company_id: String,
    /// `product`, `digital_product`, `subscription` or `service`.
    #[serde(rename = "type")]
    #[schema(
        example = "product",
        pattern = "^(product|digital_product|subscription|service)$"
    )]
    pub event_type: String,
    #[schema(value_type = Amount, example = "120.00")]
    pub total: Value,
    #[schema(value_type = Option<Amount>)]
    pub discount: Option<Value>,
    #[schema(value_type = Option<Amount>)]
    pub tax: Option<Value>,
    #[schema(value_type = Option<Amount>)]
    pub fees: Option<Value>,
    /// ISO 4217, three upper-case letters.
    #[schema(example = "BRL", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// The sender's id; the idempotency key when no `Idempotency-Key`
    /// header is sent. Generated (`evt_…`) when absent.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    pub event_id: Option<String>,
    #[schema(value_type = Option<Object>, example = json!({"id": "book-1", "type": "book"}))]
    pub product: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub digital_product: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub subscription: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub service: Option<Value>,
}

/// An amount: a decimal of at least 0, as a numeric string (read exactly)
/// or a JSON number (read from its text, never as a float); past the range
/// of a 96-bit decimal it is refused (422).
pub struct Amount;

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0)),
            )
            .description(Some(
                "A decimal of at least 0, as a numeric string or a number (read exactly)",
            ))
            .into()
    }
}

impl ToSchema for Amount {}

/// The answer to an accepted (or replayed) event.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentAccepted {
    pub event_id: String,
    pub run_id: String,
    /// Always `queued`: follow the run at `Location` (`/runs/{run_id}`).
    #[schema(example = "queued")]
    pub status: &'static str,
}

/// How a `POST /payment` authenticates, read from the headers before the body.
#[derive(Debug)]
pub enum PaymentCredentials {
    /// `Authorization: Bearer …`: a company key or the admin token.
    Bearer(Principal),
    /// Standard Webhooks headers, well-formed and fresh; the signature is
    /// checked once the body names the company.
    Signed(SignedHeaders),
}

impl FromRequestParts<AppState> for PaymentCredentials {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let principal = Principal::from_request_parts(parts, state).await?;
            // Not used beside a Bearer token, but a malformed one is still
            // refused rather than silently dropped.
            if let Some(value) = parts.headers.get(webhook::TIMESTAMP_HEADER)
                && let Err(error) = webhook::parse_timestamp(value.as_bytes())
            {
                let message = error.to_string();
                return Err(ApiError::BadRequest {
                    detail: message.clone(),
                    errors: vec![FieldError::new(
                        webhook::TIMESTAMP_HEADER,
                        "invalid_value",
                        message,
                    )],
                });
            }
            return Ok(Self::Bearer(principal));
        }
        if webhook::is_signed(&parts.headers) {
            let signed = webhook::parse_headers(&parts.headers)?;
            // Checked before the body is read: a stale request is refused cheaply.
            webhook::check_timestamp(signed.timestamp, OffsetDateTime::now_utc())?;
            return Ok(Self::Signed(signed));
        }
        Err(ApiError::Unauthorized {
            detail: "POST /payment needs credentials: `Authorization: Bearer <company API key or admin token>`, \
                     or the Standard Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature` \
                     signed with the company's signing secret"
                .to_owned(),
            invalid_token: false,
        })
    }
}

/// Receives a payment event and queues its run.
///
/// Answers `202` only once the event and its queued run are durably stored.
/// A replay (same idempotency key, or same `webhook-id` when signed, and the
/// same body) answers the original ids with `Idempotent-Replayed: true`.
#[utoipa::path(post, path = "/payment", tag = "payments",
    request_body = PaymentEventRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters, unique per company; defaults to the event's `event_id`. Ignored on a signed request, whose identity is its signed `webhook-id`",
            pattern = "^[!-~]{1,255}$"),
        ("webhook-id" = Option<String>, Header, description = "Standard Webhooks: the message id (signed); one event per `webhook-id` and company, so a redelivery (or a replay) answers the original ids"),
        ("webhook-timestamp" = Option<String>, Header, description = "Standard Webhooks: seconds since the epoch, within 5 minutes of the server's clock; refused when malformed even beside a Bearer token, which it does not count with",
            pattern = "^[0-9]{1,18}$"),
        ("webhook-signature" = Option<String>, Header, description = "Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>`"),
    ),
    security(("bearer" = []), ("standard_webhooks" = [])),
    responses(
        (status = 202, description = "Stored and queued (or replayed)", body = PaymentAccepted,
            headers(("Location" = String, description = "`/runs/{run_id}`"),
                    ("Idempotent-Replayed" = String, description = "`true` when this is the original answer to a replay"))),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, description = "No credentials, or a signature that does not verify (missing header, stale timestamp, no matching signature)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "The company does not exist, or is not the key's", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the event; or the company has no rule set (`no-rule-set`); or the idempotency key was used with another body (`idempotency-key-reused`)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "The company is over its payment rate (`--payments-per-second`, or its own from `PUT /companies/{company_id}/limits`); retry after `Retry-After`", body = ProblemDetails, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until one more payment is accepted"),
                    ("RateLimit" = String, description = "`\"payments\";r=<remaining>;t=<seconds>` (draft-ietf-httpapi-ratelimit-headers)"),
                    ("RateLimit-Policy" = String, description = "`\"payments\";q=<per second>;w=1`"))),
        (status = 503, description = "The store is unavailable or overloaded; retry after `Retry-After`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(
    company_id = tracing::field::Empty,
    event_id = tracing::field::Empty,
    run_id = tracing::field::Empty,
))]
pub async fn create(
    State(state): State<AppState>,
    credentials: PaymentCredentials,
    headers: HeaderMap,
    body: RawJsonBody,
) -> Result<Response, ApiError> {
    let store = state.store();
    let claimed_company = body.value.get("company_id").and_then(Value::as_str);
    if let Some(company_id) = claimed_company {
        tracing::Span::current().record("company_id", company_id);
    }
    // The admin is trusted; a company key or a signature is the company's
    // own traffic, which its rate limit bounds.
    let rate_limited =
        !matches!(&credentials, PaymentCredentials::Bearer(principal) if principal.is_admin());
    let webhook_id = authorize(&state, credentials, claimed_company, &body.bytes).await?;
    let rate = match claimed_company {
        Some(company_id) if rate_limited && is_valid_id(company_id) => {
            let decision = state
                .tenant_limits()
                .payment_rates
                .admit(&state, company_id)
                .await?;
            if let Some(refusal) = decision.and_then(|decision| decision.refusal(company_id)) {
                return Ok(refusal);
            }
            decision
        }
        _ => None,
    };

    let event = validate_event(&body.value).map_err(|problems| {
        let count = problems.len();
        ApiError::Validation {
            detail: format!(
                "the payment event has {count} problem{}; each is listed in `errors` with the path at fault",
                if count == 1 { "" } else { "s" }
            ),
            errors: problems.into_iter().map(FieldError::from).collect(),
            omitted: 0,
        }
    })?;
    // A signed request's identity is signed: the `Idempotency-Key` header
    // is not, so a captured request replayed with a new one must not become
    // a new event. Its key is the `event_id`, else the `webhook-id`, and its
    // `webhook-id` is stored and unique per company.
    let header_key = match webhook_id {
        Some(_) => None,
        None => idempotency_key_header(&headers)?,
    };
    let (event_id, idempotency_key, key_source) = identify(&event, header_key, webhook_id.clone());
    tracing::Span::current().record("event_id", event_id.as_str());

    let rule_version = current_version(&state, &event.company_id).await?;

    let run_id = format!("run_{}", uuid::Uuid::now_v7().simple());
    let body_text = std::str::from_utf8(&body.bytes)
        .map_err(|_| ApiError::BadRequest {
            detail: "the request body is not valid UTF-8".to_owned(),
            errors: Vec::new(),
        })?
        .to_owned();
    let outcome = store
        .accept_event(NewEvent {
            company_id: event.company_id.clone(),
            event_id,
            idempotency_key: idempotency_key.clone(),
            webhook_id,
            body_sha256: hex::encode(Sha256::digest(&body.bytes)),
            body: body_text,
            event_type: event.event_type.as_str().to_owned(),
            rule_version,
            run_id,
            received_at: OffsetDateTime::now_utc(),
        })
        .await?;

    let (event_id, run_id, replayed) = match outcome {
        AcceptOutcome::Accepted { event_id, run_id } => {
            // Only new work wakes the orchestrator; a replay added none.
            state.waker().notify_one();
            (event_id, run_id, false)
        }
        AcceptOutcome::Replayed { event_id, run_id } => (event_id, run_id, true),
        AcceptOutcome::KeyReused { event_id, run_id } => {
            return Err(ApiError::IdempotencyKeyReused {
                key: idempotency_key,
                key_from: key_source,
                event_id,
                run_id,
            });
        }
    };
    let span = tracing::Span::current();
    span.record("event_id", event_id.as_str());
    span.record("run_id", run_id.as_str());
    tracing::debug!(replayed, rule_version, "payment accepted");

    let mut response = (
        StatusCode::ACCEPTED,
        Json(PaymentAccepted {
            event_id,
            run_id: run_id.clone(),
            status: "queued",
        }),
    )
        .into_response();
    let response_headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/runs/{run_id}")) {
        response_headers.insert(header::LOCATION, location);
    }
    if replayed {
        response_headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    if let Some(rate) = rate {
        rate.write_headers(response_headers);
    }
    Ok(response)
}

/// The company's current rule version, the one its run is pinned to.
async fn current_version(state: &AppState, company_id: &str) -> Result<i64, ApiError> {
    if let Some(version) = state.current_versions().get(company_id) {
        return Ok(version);
    }
    let version = state
        .store()
        .current_rule_version(company_id)
        .await?
        .ok_or_else(|| ApiError::NoRuleSet {
            company_id: company_id.to_owned(),
        })?
        .version;
    state.current_versions().offer(company_id, version);
    Ok(version)
}

/// Checks that the caller may post for `claimed_company` (the body's
/// `company_id`). Returns the `webhook-id` of a signed request, the
/// sender's own message id.
async fn authorize(
    state: &AppState,
    credentials: PaymentCredentials,
    claimed_company: Option<&str>,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let store = state.store();
    match credentials {
        PaymentCredentials::Bearer(principal) => {
            // Without a (string) company id there is nothing to authorise
            // against; validation names the field.
            let Some(company_id) = claimed_company else {
                return Ok(None);
            };
            // Another company's id answers like a missing company, so a
            // key cannot probe which companies exist.
            if !principal.may_act_for(company_id) {
                return Err(company_not_found(company_id));
            }
            if principal.is_admin()
                && is_valid_id(company_id)
                && store.get_company(company_id).await?.is_none()
            {
                return Err(company_not_found(company_id));
            }
            Ok(None)
        }
        PaymentCredentials::Signed(signed) => {
            let company_id = claimed_company
                .filter(|id| is_valid_id(id))
                .ok_or(SignatureError::NoCompany)?;
            // An unknown company has no secrets: it fails exactly like a
            // wrong signature, revealing nothing about which companies exist.
            let secrets = store
                .active_signing_secrets(company_id, OffsetDateTime::now_utc())
                .await?;
            webhook::verify(&signed, body, secrets.iter().map(|s| s.secret.as_str()))?;
            Ok(Some(signed.id))
        }
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        let message = format!(
            "the `Idempotency-Key` header must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters (no spaces)"
        );
        return Err(ApiError::BadRequest {
            detail: message.clone(),
            errors: vec![FieldError::new("Idempotency-Key", "invalid_value", message)],
        });
    }
    // Checked above: every byte is visible ASCII.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The event id (the sender's, else a new `evt_…`), the idempotency key and
/// where it came from: the `Idempotency-Key` header, else the `event_id`,
/// else the signed `webhook-id` (Standard Webhooks makes it the same on
/// every redelivery, so a resent webhook without an `event_id` is still
/// recognised), else the new event id.
fn identify(
    event: &PaymentEvent,
    header_key: Option<String>,
    webhook_id: Option<String>,
) -> (String, String, &'static str) {
    let event_id = event
        .event_id
        .clone()
        .unwrap_or_else(|| format!("evt_{}", uuid::Uuid::now_v7().simple()));
    let (key, source) = match (header_key, &event.event_id, webhook_id) {
        (Some(key), _, _) => (key, "Idempotency-Key"),
        (None, Some(id), _) => (id.clone(), "event_id"),
        (None, None, Some(id)) => (id, "webhook-id"),
        (None, None, None) => (event_id.clone(), "event_id"),
    };
    (event_id, key, source)
}

#[cfg(test)]
mod tests {
    use moneyflow_core::event::validate_event;
    use serde_json::json;

    use super::*;

    fn event(extra: Value) -> PaymentEvent {
        let mut body = json!({"company_id": "c", "type": "service", "total": 1});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        validate_event(&body).unwrap()
    }

    #[test]
    fn the_header_key_wins_then_the_event_id_then_the_webhook_id() {
        let with_id = event(json!({"event_id": "e-1"}));
        assert_eq!(
            identify(&with_id, Some("h".into()), Some("w".into())),
            ("e-1".to_owned(), "h".to_owned(), "Idempotency-Key")
        );
        assert_eq!(
            identify(&with_id, None, Some("w".into())),
            ("e-1".to_owned(), "e-1".to_owned(), "event_id")
        );
        let without = event(json!({}));
        let (event_id, key, source) = identify(&without, None, Some("w".into()));
        assert!(event_id.starts_with("evt_"));
        assert_eq!((key.as_str(), source), ("w", "webhook-id"));
        let (event_id, key, _) = identify(&without, None, None);
        assert_eq!(event_id.len(), 4 + 32, "evt_ + a simple UUID: {event_id}");
        assert_eq!(key, event_id);
    }

    #[test]
    fn idempotency_key_header_is_visible_ascii() {
        let mut headers = HeaderMap::new();
        assert_eq!(idempotency_key_header(&headers).unwrap(), None);
        headers.insert(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_static("order-1:a/b"),
        );
        assert_eq!(
            idempotency_key_header(&headers).unwrap().as_deref(),
            Some("order-1:a/b")
        );
        for bad in ["", "has space", &"k".repeat(256)] {
            headers.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_str(bad).unwrap());
            match idempotency_key_header(&headers) {
                Err(ApiError::BadRequest { errors, .. }) => {
                    assert_eq!(errors[0].path, "Idempotency-Key")
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        headers.insert(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        );
        assert!(idempotency_key_header(&headers).is_err());
        headers.insert(
            IDEMPOTENCY_KEY_HEADER,
            HeaderValue::from_str(&"k".repeat(255)).unwrap(),
        );
        assert!(idempotency_key_header(&headers).is_ok());
    }
}
