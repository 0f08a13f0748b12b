//! Health: `GET /` (the original check, kept as it was), `GET /health`
//! (liveness) and `GET /ready` (readiness: the store, and the broker in
//! distributed mode). None needs credentials: probes have none. What a
//! failing dependency said (which may name hosts, users or files) is shown
//! to the admin token alone; anyone else learns only what is down.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::state::AppState;

/// How long a readiness check waits for one dependency: a probe must answer
/// even when a dependency hangs instead of refusing.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Always `ok` while the process answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Health check.
#[utoipa::path(get, path = "/", tag = "health", security(()),
    responses((status = 200, description = "The server is up", body = Status)))]
pub async fn status() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Liveness: 200 while the process serves, whatever its dependencies do
/// (restarting it would not bring them back).
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses((status = 200, description = "The process serves", body = Status)))]
pub async fn health() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// Readiness: 200 when the store (and the broker, when configured) answer;
/// else 503 with a problem naming what is down, so a load balancer sends
/// no traffic to a process that could only refuse it.
#[utoipa::path(get, path = "/ready", tag = "health", security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The store (and the broker, when configured) answer"),
        (status = 503, description = "A dependency is down: `unavailable` names it; each check's `error` (what the dependency said) only with the admin token", content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let show_errors = crate::auth::is_admin_token(&state, &headers);
    let mut checks = Map::new();
    let mut down = Vec::new();
    let store = match tokio::time::timeout(CHECK_TIMEOUT, state.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(crate::error::error_chain(&error)),
        Err(_) => Err("no answer within 3 s".to_owned()),
    };
    record(&mut checks, &mut down, "store", store, show_errors);
    if let Some(broker) = state.broker() {
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, broker.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(crate::error::error_chain(&error)),
            Err(_) => Err("no answer within 3 s".to_owned()),
        };
        record(&mut checks, &mut down, "broker", answer, show_errors);
    }
    if down.is_empty() {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    let body = json!({
        "type": "urn:moneyflow:problem:not-ready",
        "title": "Not ready",
        "status": 503,
        "detail": format!("unavailable: {}", down.join(", ")),
        "unavailable": down,
        "checks": checks,
    });
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/problem+json"),
            (header::RETRY_AFTER, "1"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn record(
    checks: &mut Map<String, Value>,
    down: &mut Vec<&'static str>,
    name: &'static str,
    result: Result<(), String>,
    show_errors: bool,
) {
    match result {
        Ok(()) => {
            checks.insert(name.to_owned(), json!({"status": "up"}));
        }
        Err(error) if show_errors => {
            checks.insert(name.to_owned(), json!({"status": "down", "error": error}));
            down.push(name);
        }
        Err(error) => {
            tracing::warn!(dependency = name, error = %error, "not ready");
            checks.insert(name.to_owned(), json!({"status": "down"}));
            down.push(name);
        }
    }
}
