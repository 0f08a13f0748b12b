//! `/admin/dead-letters…` (admin only, distributed mode): the run messages
//! RabbitMQ gave up on (failed past the delivery limit, or rejected because
//! their run is unknown), each with its run's current status, and moving them
//! back to the run queue once the cause is fixed.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use moneyflow_broker::{Broker, BrokerError};
use moneyflow_core::ports::{RunStore, StoreError};
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::error::{ApiError, FieldError};
use crate::routes::run_list::{invalid_query, query_pairs};
use crate::state::AppState;

/// The most dead letters one listing returns.
const MAX_LIST: usize = 1_000;

/// The most dead letters whose runs' claim counts a replay of all of them
/// starts over; runs past it keep theirs.
const MAX_REPLAY_RESET: usize = 10_000;

/// How many one listing returns unless `limit` says otherwise.
const DEFAULT_LIST: usize = 100;

/// `limit` from the query (1 to [`MAX_LIST`]); every problem is a 400.
fn list_limit(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<usize, ApiError> {
    let mut errors = Vec::new();
    let pairs = query_pairs(query, &["limit"], &mut errors)?;
    let mut limit = DEFAULT_LIST;
    for (_, value) in pairs.iter().filter(|(name, _)| name == "limit") {
        match value.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST).contains(&n) => limit = n,
            _ => errors.push(FieldError::new(
                "limit",
                "out_of_range",
                format!("`limit` must be an integer from 1 to {MAX_LIST}, got `{value}`"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(limit)
    } else {
        Err(invalid_query(errors))
    }
}

fn broker(state: &AppState) -> Result<&Broker, ApiError> {
    state.broker().ok_or_else(|| {
        ApiError::not_found("dead letters exist in distributed mode only: no broker is configured")
    })
}

/// A broker that cannot answer is a dependency that is down: 503, retryable.
fn unavailable(error: BrokerError) -> ApiError {
    ApiError::Unavailable(StoreError::Unavailable(Box::new(error)))
}

/// `GET /admin/dead-letters`: oldest first, left in place.
#[utoipa::path(get, path = "/admin/dead-letters", tag = "runs",
    params(("limit" = Option<usize>, Query, description = "Most dead letters listed (1 to 1000, default 100)", minimum = 1, maximum = 1000)),
    responses(
        (status = 200, description = "Dead-lettered runs with their current status"),
        (status = 400, description = "`limit` is not a whole number from 1 to 1000, or the query has another parameter", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "Admin only", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No broker configured (one-process mode has no dead letters)", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let limit = list_limit(query)?;
    let letters = broker(&state)?
        .dead_letters()
        .list(limit)
        .await
        .map_err(unavailable)?;
    let mut items = Vec::with_capacity(letters.len());
    for letter in &letters {
        let run_id = letter.run_id().map(str::to_owned);
        // The run as it is now: what an operator needs to decide on a replay.
        let run = match &run_id {
            Some(id) => state.store().get_run(id).await?,
            None => None,
        };
        items.push(json!({
            "run_id": run_id,
            "company_id": letter.message.as_ref().map(|m| m.company_id.clone()),
            "reason": letter.reason,
            "source_queue": letter.source_queue,
            "deaths": letter.deaths,
            "run_status": run.as_ref().map(|r| r.status.as_str()),
            "run": run_id.as_ref().map(|id| format!("/runs/{id}")),
        }));
    }
    Ok(Json(json!({"items": items, "count": items.len()})))
}

/// `POST /admin/dead-letters/{run_id}/replay`: back to the run queue.
#[utoipa::path(post, path = "/admin/dead-letters/{run_id}/replay", tag = "runs",
    params(("run_id" = String, Path, description = "The dead-lettered run")),
    responses(
        (status = 200, description = "Moved back to the run queue"),
        (status = 404, description = "No such dead letter, or no broker", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let broker = broker(&state)?;
    // Replayed once its cause is fixed: counted afresh, or the first claim
    // would quarantine it as a poison run.
    state
        .store()
        .reset_claims(std::slice::from_ref(&run_id))
        .await?;
    let moved = broker
        .dead_letters()
        .replay(&run_id)
        .await
        .map_err(unavailable)?;
    if moved == 0 {
        return Err(ApiError::not_found(format!(
            "no dead letter for run {run_id}"
        )));
    }
    Ok(Json(json!({"run_id": run_id, "replayed": moved})))
}

/// `POST /admin/dead-letters/replay`: every dead letter back to the run queue.
#[utoipa::path(post, path = "/admin/dead-letters/replay", tag = "runs",
    responses(
        (status = 200, description = "How many were moved back"),
        (status = 404, description = "No broker configured", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
    ))]
pub async fn replay_all(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let broker = broker(&state)?;
    // Counted afresh, as for one replay (see `replay`).
    let letters = broker
        .dead_letters()
        .list(MAX_REPLAY_RESET)
        .await
        .map_err(unavailable)?;
    let run_ids: Vec<String> = letters
        .iter()
        .filter_map(|letter| letter.run_id().map(str::to_owned))
        .collect();
    state.store().reset_claims(&run_ids).await?;
    let moved = broker
        .dead_letters()
        .replay_all()
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({"replayed": moved})))
}
