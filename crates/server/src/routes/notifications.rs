//! `/companies/{company_id}/notification-endpoints…`: where a company hears
//! about its finished runs (`run.succeeded`, `run.failed`, `run.aborted`),
//! and the record of every delivery and attempt.
//!
//! Registering an endpoint answers its `whsec_…` signing secret, once: each
//! delivery is a Standard Webhooks request signed with it. The URL must be
//! http(s) and must not point at a loopback, private or link-local address
//! unless the operator allows them (`--allow-private-addresses`); the
//! delivery worker checks again when it sends, since a name can change
//! address. The deliveries themselves are made by
//! `moneyflow_engine::delivery`.
//!
//! The admin, or a key of the company, may manage its endpoints; another
//! company's answer the same 404 as missing ones.

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use moneyflow_core::ports::{
    CompanyStore, Delivery, DeliveryAttempt, NOTIFICATION_EVENT_TYPES, NewNotificationEndpoint,
    NotificationEndpoint, NotificationStore, StoreError,
};
use moneyflow_engine::egress;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::secret::random_base62;
use crate::state::AppState;
use crate::webhook::generate_secret;

/// Prefix of an endpoint's id.
pub const ENDPOINT_ID_PREFIX: &str = "nep_";
/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest accepted description.
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// Deliveries listed by default, and at most.
pub const DEFAULT_DELIVERY_LIMIT: usize = 100;
pub const MAX_DELIVERY_LIMIT: usize = 1_000;
/// How long registration waits for a name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct CreateEndpointRequest {
    /// Where deliveries are POSTed: an http(s) URL whose host is, and
    /// resolves to, public addresses (unless `--allow-private-addresses`).
    #[schema(
        example = "https://example.com/moneyflow/webhooks",
        format = "uri",
        max_length = 2048
    )]
    pub url: String,
    /// Which run events to deliver; all three by default.
    #[schema(example = json!(["run.failed", "run.aborted"]), min_items = 1)]
    pub event_types: Option<Vec<NotifiedEvent>>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// A run event an endpoint can receive.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub enum NotifiedEvent {
    #[serde(rename = "run.succeeded")]
    Succeeded,
    #[serde(rename = "run.failed")]
    Failed,
    #[serde(rename = "run.aborted")]
    Aborted,
}

/// An endpoint as listed: no secret material.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointBody {
    pub id: String,
    pub company_id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    /// False once the endpoint answered 410 Gone: it gets no more deliveries.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<NotificationEndpoint> for EndpointBody {
    fn from(endpoint: NotificationEndpoint) -> Self {
        Self {
            id: endpoint.id,
            company_id: endpoint.company_id,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            disabled_at: endpoint.disabled_at,
            created_at: endpoint.created_at,
        }
    }
}

/// A new endpoint: the only answer that ever contains `secret`.
#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointBody,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it. Not shown again.
    pub secret: String,
}

impl std::fmt::Debug for CreatedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEndpoint")
            .field("endpoint", &self.endpoint)
            .field("secret", &"[redacted]")
            .finish()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    /// Oldest first.
    pub items: Vec<EndpointBody>,
}

/// What every view of a delivery shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryFields {
    /// `msg_…`: the `webhook-id` of every attempt.
    pub id: String,
    pub endpoint_id: String,
    pub run_id: String,
    /// `run.succeeded`, `run.failed` or `run.aborted`.
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// A delivery without its attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    #[serde(flatten)]
    pub fields: DeliveryFields,
    /// How many attempts were made.
    pub attempts: u32,
}

impl From<Delivery> for DeliveryBody {
    fn from(delivery: Delivery) -> Self {
        Self {
            attempts: delivery.attempts,
            fields: delivery.into(),
        }
    }
}

impl From<Delivery> for DeliveryFields {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            run_id: delivery.run_id,
            event_type: delivery.event_type,
            status: delivery.status.as_str().to_owned(),
            next_attempt_at: delivery.next_attempt_at,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            finished_at: delivery.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<DeliveryBody>,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    /// 1 for the first.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The HTTP status the endpoint answered; null when it did not answer.
    pub status_code: Option<u16>,
    /// Why the attempt did not deliver.
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl From<DeliveryAttempt> for AttemptBody {
    fn from(attempt: DeliveryAttempt) -> Self {
        Self {
            attempt: attempt.attempt,
            at: attempt.at,
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
        }
    }
}

/// A delivery with its body and every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryFields,
    /// The JSON sent: `{type, timestamp, data: {run_id, company_id, event_id, status, rule_version, finished_at}}`.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Oldest first.
    pub attempts: Vec<AttemptBody>,
}

#[derive(Debug, Deserialize)]
pub struct EndpointPath {
    pub company_id: String,
    pub endpoint_id: String,
}

#[derive(Debug, Deserialize)]
pub struct DeliveryPath {
    pub company_id: String,
    pub endpoint_id: String,
    pub delivery_id: String,
}

fn endpoint_not_found(endpoint_id: &str) -> ApiError {
    ApiError::not_found(format!("notification endpoint `{endpoint_id}` not found"))
}

/// The company, when the caller may act for it and it exists.
async fn check_company(
    state: &AppState,
    principal: &Principal,
    company_id: &str,
) -> Result<(), ApiError> {
    if !principal.may_act_for(company_id)
        || !is_valid_id(company_id)
        || state.store().get_company(company_id).await?.is_none()
    {
        return Err(company_not_found(company_id));
    }
    Ok(())
}

/// The endpoint, when the caller may see it.
async fn find_endpoint(
    state: &AppState,
    principal: &Principal,
    company_id: &str,
    endpoint_id: &str,
) -> Result<NotificationEndpoint, ApiError> {
    if !principal.may_act_for(company_id) || !is_valid_id(company_id) || !is_valid_id(endpoint_id) {
        return Err(endpoint_not_found(endpoint_id));
    }
    state
        .store()
        .get_notification_endpoint(company_id, endpoint_id)
        .await?
        .ok_or_else(|| endpoint_not_found(endpoint_id))
}

/// A registration body, checked: every problem is listed.
struct Registration {
    url: String,
    host: String,
    port: u16,
    event_types: Vec<String>,
    description: Option<String>,
}

fn parse_registration(body: Value) -> Result<Registration, ApiError> {
    let Value::Object(map) = body else {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "wrong_type",
            r#"the body must be a JSON object: {"url": "https://…", "event_types": ["run.failed"] (optional), "description": "…" (optional)}"#,
        )]));
    };
    let mut errors = Vec::new();
    let known = ["url", "event_types", "description"];
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.push(
            FieldError::new(
                key.clone(),
                "unknown_field",
                format!("unknown field `{key}`"),
            )
            .with_allowed(known),
        );
    }
    let target = parse_url(&map, &mut errors);
    let event_types = parse_event_types(&map, &mut errors);
    let description = match map.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_DESCRIPTION_LEN => {
            Some(text.clone())
        }
        Some(_) => {
            errors.push(FieldError::new(
                "description",
                "invalid_value",
                format!(
                    "`description` must be a string of at most {MAX_DESCRIPTION_LEN} characters"
                ),
            ));
            None
        }
    };
    match (target, event_types) {
        (Some((url, host, port)), Some(event_types)) if errors.is_empty() => Ok(Registration {
            url,
            host,
            port,
            event_types,
            description,
        }),
        _ => Err(ApiError::invalid_fields(errors)),
    }
}

/// `(url, host, port)` of an absolute http(s) URL.
fn parse_url(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<(String, String, u16)> {
    let text = match map.get("url") {
        Some(Value::String(text)) => text.trim(),
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "url",
                "missing",
                "`url` is required: where deliveries are POSTed, e.g. https://example.com/webhooks",
            ));
            return None;
        }
        Some(_) => {
            errors.push(FieldError::new(
                "url",
                "wrong_type",
                "`url` must be a string",
            ));
            return None;
        }
    };
    let invalid = |message: String| FieldError::new("url", "invalid_value", message);
    if text.len() > MAX_URL_LEN {
        errors.push(invalid(format!(
            "`url` is longer than {MAX_URL_LEN} characters"
        )));
        return None;
    }
    let Ok(uri) = text.parse::<Uri>() else {
        errors.push(invalid(format!("`{text}` is not a valid URL")));
        return None;
    };
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        other => {
            errors.push(
                invalid(format!(
                    "`url` must be an http or https URL, not {}",
                    other.map_or_else(|| "a relative one".to_owned(), str::to_owned)
                ))
                .with_allowed(["http", "https"]),
            );
            return None;
        }
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        errors.push(invalid(format!("`{text}` has no host")));
        return None;
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        errors.push(invalid(
            "`url` must not carry credentials (`user:password@`): deliveries are signed instead"
                .to_owned(),
        ));
        return None;
    }
    Some((
        text.to_owned(),
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        uri.port_u16().unwrap_or(default_port),
    ))
}

fn parse_event_types(
    map: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<String>> {
    let allowed = NOTIFICATION_EVENT_TYPES;
    match map.get("event_types") {
        None | Some(Value::Null) => Some(allowed.iter().map(|t| (*t).to_owned()).collect()),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut types: Vec<String> = Vec::new();
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match item.as_str().filter(|t| allowed.contains(t)) {
                    Some(t) if !types.iter().any(|seen| seen == t) => types.push(t.to_owned()),
                    Some(_) => {}
                    None => {
                        ok = false;
                        errors.push(
                            FieldError::new(
                                format!("event_types[{i}]"),
                                "unknown_value",
                                format!("{item} is not an event type an endpoint can receive"),
                            )
                            .with_allowed(allowed),
                        );
                    }
                }
            }
            ok.then_some(types)
        }
        Some(_) => {
            errors.push(
                FieldError::new(
                    "event_types",
                    "invalid_value",
                    "`event_types` must be a non-empty list of event types (or absent, for all)",
                )
                .with_allowed(allowed),
            );
            None
        }
    }
}

/// Refuses a host that is, or resolves to, an address the egress policy
/// refuses ([`egress`]); the delivery worker checks again on every send.
async fn check_address(host: &str, port: u16) -> Result<(), ApiError> {
    egress::check_host(host, port, RESOLVE_TIMEOUT)
        .await
        .map_err(|refused| {
            ApiError::invalid_fields(vec![
                FieldError::new("url", "invalid_value", refused.to_string()).with_hint(
                    "use a public address; the operator can allow private ones with --allow-private-addresses",
                ),
            ])
        })
}

/// Registers a notification endpoint.
#[utoipa::path(post, path = "/companies/{company_id}/notification-endpoints", tag = "notifications",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Registered; `secret` is shown only here", body = CreatedEndpoint),
        (status = 404, description = "No such company (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the body (a private address, an unknown event type…), or the company has as many endpoints as the server allows (`limit_reached`, `--max-notification-endpoints`)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    check_company(&state, &principal, &company_id).await?;
    let registration = parse_registration(body)?;
    if !state.allow_private_addresses() {
        check_address(&registration.host, registration.port).await?;
    }
    let id = format!("{ENDPOINT_ID_PREFIX}{}", random_base62(20));
    let secret = generate_secret();
    let max_per_company = state.tenant_limits().max_notification_endpoints;
    let endpoint = state
        .store()
        .create_notification_endpoint(NewNotificationEndpoint {
            id: &id,
            company_id: &company_id,
            url: &registration.url,
            description: registration.description.as_deref(),
            event_types: &registration.event_types,
            secret: secret.expose_secret(),
            now: OffsetDateTime::now_utc(),
            max_per_company,
        })
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => company_not_found(&company_id),
            StoreError::Conflict(_) => ApiError::invalid_fields(vec![FieldError::new(
                "",
                "limit_reached",
                format!(
                    "company `{company_id}` has {max_per_company} notification endpoints, the most this server \
                     allows (--max-notification-endpoints); delete one it no longer needs first"
                ),
            )]),
            other => other.into(),
        })?;
    tracing::info!(endpoint_id = %endpoint.id, "notification endpoint registered");
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            endpoint: endpoint.into(),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// The company's notification endpoints, without secret material.
#[utoipa::path(get, path = "/companies/{company_id}/notification-endpoints", tag = "notifications",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "Every endpoint, oldest first", body = EndpointList),
        (status = 404, description = "No such company (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<EndpointList>, ApiError> {
    check_company(&state, &principal, &company_id).await?;
    let endpoints = state
        .store()
        .list_notification_endpoints(&company_id)
        .await?;
    Ok(Json(EndpointList {
        items: endpoints.into_iter().map(EndpointBody::from).collect(),
    }))
}

/// Deletes an endpoint with its deliveries: nothing more is sent to it.
#[utoipa::path(delete, path = "/companies/{company_id}/notification-endpoints/{endpoint_id}", tag = "notifications",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("endpoint_id" = String, Path, description = "The endpoint's id (`nep_…`)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, endpoint_id = %path.endpoint_id))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<EndpointPath>,
) -> Result<StatusCode, ApiError> {
    let endpoint = find_endpoint(&state, &principal, &path.company_id, &path.endpoint_id).await?;
    if !state
        .store()
        .delete_notification_endpoint(&endpoint.company_id, &endpoint.id)
        .await?
    {
        return Err(endpoint_not_found(&path.endpoint_id));
    }
    tracing::info!("notification endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Reads `limit=N` from the query; every other parameter is refused.
fn delivery_limit(query: Option<&str>) -> Result<usize, ApiError> {
    let mut limit = DEFAULT_DELIVERY_LIMIT;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let field = |message: String| ApiError::BadRequest {
            detail: message.clone(),
            errors: vec![FieldError::new(name.to_owned(), "invalid_value", message)],
        };
        match name {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_DELIVERY_LIMIT).contains(n))
                    .ok_or_else(|| {
                        field(format!(
                            "`limit` must be a whole number from 1 to {MAX_DELIVERY_LIMIT}"
                        ))
                    })?;
            }
            _ => {
                return Err(field(format!(
                    "unknown query parameter `{name}`; the only one is `limit`"
                )));
            }
        }
    }
    Ok(limit)
}

/// The endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries", tag = "notifications",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("endpoint_id" = String, Path, description = "The endpoint's id (`nep_…`)"),
        ("limit" = Option<usize>, Query, description = "At most this many (1 to 1000, default 100)", minimum = 1, maximum = 1000),
    ),
    responses(
        (status = 200, description = "Newest first", body = DeliveryList),
        (status = 400, description = "A bad `limit`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, endpoint_id = %path.endpoint_id))]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<EndpointPath>,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = delivery_limit(query.as_deref())?;
    let endpoint = find_endpoint(&state, &principal, &path.company_id, &path.endpoint_id).await?;
    let deliveries = state
        .store()
        .list_deliveries(&endpoint.company_id, &endpoint.id, limit)
        .await?;
    Ok(Json(DeliveryList {
        items: deliveries.into_iter().map(DeliveryBody::from).collect(),
    }))
}

/// One delivery, with its body and every attempt.
#[utoipa::path(get, path = "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries/{delivery_id}", tag = "notifications",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("endpoint_id" = String, Path, description = "The endpoint's id (`nep_…`)"),
        ("delivery_id" = String, Path, description = "The delivery's id (`msg_…`)"),
    ),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 404, description = "No such delivery (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, delivery_id = %path.delivery_id))]
pub async fn delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<DeliveryPath>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let not_found = || ApiError::not_found(format!("delivery `{}` not found", path.delivery_id));
    let endpoint = find_endpoint(&state, &principal, &path.company_id, &path.endpoint_id).await?;
    if !is_valid_id(&path.delivery_id) {
        return Err(not_found());
    }
    let (delivery, attempts) = match state
        .store()
        .get_delivery(&endpoint.company_id, &path.delivery_id)
        .await?
    {
        Some(found) if found.0.endpoint_id == endpoint.id => found,
        _ => return Err(not_found()),
    };
    let payload = serde_json::from_str(&delivery.payload).unwrap_or(Value::Null);
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        payload,
        attempts: attempts.into_iter().map(AttemptBody::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn registrations_are_checked_field_by_field() {
        let ok = parse_registration(json!({"url": "https://example.com:8443/hook"})).unwrap();
        assert_eq!(ok.host, "example.com");
        assert_eq!(ok.port, 8443);
        assert_eq!(ok.event_types, NOTIFICATION_EVENT_TYPES);
        let ok = parse_registration(
            json!({"url": "http://[::1]/x", "event_types": ["run.failed", "run.failed"]}),
        )
        .unwrap();
        assert_eq!(ok.host, "::1");
        assert_eq!(ok.port, 80);
        assert_eq!(ok.event_types, ["run.failed"]);
        for bad in [
            json!({}),
            json!({"url": "ftp://example.com"}),
            json!({"url": "/relative"}),
            json!({"url": "https://user:pw@example.com/"}),
            json!({"url": "https://example.com", "event_types": []}),
            json!({"url": "https://example.com", "event_types": ["run.started"]}),
            json!({"url": "https://example.com", "secret": "mine"}),
            json!({"url": 5}),
            json!([]),
        ] {
            assert!(
                matches!(
                    parse_registration(bad.clone()),
                    Err(ApiError::Validation { .. })
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn private_addresses_are_refused() {
        for host in ["127.0.0.1", "10.0.0.8", "::1", "localhost"] {
            assert!(check_address(host, 80).await.is_err(), "{host}");
        }
        assert!(check_address("8.8.8.8", 443).await.is_ok());
    }

    #[test]
    fn the_documented_event_types_are_the_ones_accepted() {
        for event_type in NOTIFICATION_EVENT_TYPES {
            assert!(serde_json::from_value::<NotifiedEvent>(json!(event_type)).is_ok());
        }
        assert!(serde_json::from_value::<NotifiedEvent>(json!("run.queued")).is_err());
        assert_eq!(NOTIFICATION_EVENT_TYPES.len(), 3);
    }

    #[test]
    fn the_delivery_limit_is_bounded() {
        assert_eq!(delivery_limit(None).unwrap(), DEFAULT_DELIVERY_LIMIT);
        assert_eq!(delivery_limit(Some("limit=5")).unwrap(), 5);
        assert!(delivery_limit(Some("limit=0")).is_err());
        assert!(delivery_limit(Some("limit=1001")).is_err());
        assert!(delivery_limit(Some("cursor=x")).is_err());
    }

    #[test]
    fn debug_of_a_created_endpoint_is_redacted() {
        let created = CreatedEndpoint {
            endpoint: EndpointBody {
                id: "nep_1".into(),
                company_id: "acme".into(),
                url: "https://example.com".into(),
                description: None,
                event_types: vec![],
                enabled: true,
                disabled_reason: None,
                disabled_at: None,
                created_at: OffsetDateTime::UNIX_EPOCH,
            },
            secret: "whsec_c2VjcmV0".into(),
        };
        assert!(!format!("{created:?}").contains("c2VjcmV0"));
    }
}
