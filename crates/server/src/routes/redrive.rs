//! `POST /runs/{run_id}/redrive`: runs a failed run again from where it
//! failed.
//!
//! Only a `failed` run can be redriven (anything else is a 409 that says its
//! status). The failed tasks that made it fail, and the nodes skipped
//! because of them, go back to `pending` (each reset task keeps its earlier
//! execution in its `history`); every successful node keeps its result and
//! is not executed again. The new checkpoints, the run's `queued` status
//! (its `redrive_count` + 1), its queue entry and a `run.redriven` event are
//! committed in one transaction; the orchestrator then executes what is not
//! done. A company key redrives its own runs (within its payment rate,
//! see [`crate::limits`]); the admin any run.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use moneyflow_core::ports::{Redrive, RuleStore, RunEventStore, RunRecord, RunStore, StoreError};
use moneyflow_core::redrive::{RUN_ENTRY, RedrivePlan, plan_redrive};
use moneyflow_core::run::{CompiledRules, RunStatus};
use moneyflow_core::validation::validate_rule_set;
use serde_json::json;
use time::OffsetDateTime;

use crate::auth::Principal;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Path;
use crate::routes::companies::is_valid_id;
use crate::routes::run_list::RunSummaryBody;
use crate::state::AppState;

fn run_not_found(run_id: &str) -> ApiError {
    ApiError::not_found(format!("run `{run_id}` not found"))
}

fn not_failed(run_id: &str, status: RunStatus) -> ApiError {
    ApiError::Conflict {
        detail: format!(
            "run `{run_id}` is `{}`: only failed runs can be redriven",
            status.as_str()
        ),
    }
}

/// Queues a failed run again from its failed nodes.
#[utoipa::path(post, path = "/runs/{run_id}/redrive", tag = "runs",
    params(("run_id" = String, Path, description = "The failed run's id")),
    responses(
        (status = 202, description = "Queued again; the answer is the run as queued",
            body = RunSummaryBody, headers(("Location" = String, description = "`/runs/{run_id}`"))),
        (status = 404, description = "No such run (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The run is not `failed`: the detail says its status", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "The company is over its payment rate, which redrives share; retry after `Retry-After`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(run_id = %run_id, company_id = tracing::field::Empty))]
pub async fn redrive(
    State(state): State<AppState>,
    principal: Principal,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    if !is_valid_id(&run_id) {
        return Err(run_not_found(&run_id));
    }
    let store = state.store();
    let run = match store.get_run(&run_id).await? {
        Some(run) if principal.may_act_for(&run.company_id) => run,
        _ => return Err(run_not_found(&run_id)),
    };
    tracing::Span::current().record("company_id", run.company_id.as_str());
    if run.status != RunStatus::Failed {
        return Err(not_failed(&run_id, run.status));
    }
    // A redrive is new work, as a payment is: a company key's redrives take
    // from the same bucket.
    let rate = if principal.is_admin() {
        None
    } else {
        let decision = state
            .tenant_limits()
            .payment_rates
            .admit(&state, &run.company_id)
            .await?;
        if let Some(refusal) = decision.and_then(|decision| decision.refusal(&run.company_id)) {
            return Ok(refusal);
        }
        decision
    };
    let plan = plan(&state, &run).await?;
    let data = json!({"failed_nodes": plan.failed, "skipped_nodes": plan.skipped});
    let result = store
        .redrive_run(Redrive {
            run_id: run_id.clone(),
            nodes: plan.nodes,
            data,
            now: OffsetDateTime::now_utc(),
        })
        .await;
    let summary = match result {
        Ok(summary) => summary,
        // Someone else changed it meanwhile (another redrive): say how it is now.
        Err(StoreError::Conflict(_)) => {
            let status = store
                .get_run(&run_id)
                .await?
                .map_or(RunStatus::Queued, |r| r.status);
            return Err(not_failed(&run_id, status));
        }
        Err(error) => return Err(error.into()),
    };
    state.metrics().runs_redriven.inc();
    state.waker().notify_one();
    tracing::info!(redrive_count = summary.redrive_count, "run redriven");
    let mut response = (StatusCode::ACCEPTED, Json(RunSummaryBody::from(summary))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/runs/{run_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if let Some(rate) = rate {
        rate.write_headers(response.headers_mut());
    }
    Ok(response)
}

/// What to reset, under the run's pinned rule version. A version that no
/// longer compiles (the run failed as a whole, `_run`) resets nothing: the
/// orchestrator tries again and records why it still cannot.
async fn plan(state: &AppState, run: &RunRecord) -> Result<RedrivePlan, ApiError> {
    let version = state
        .store()
        .get_rule_version(&run.company_id, run.rule_version)
        .await?;
    let compiled = version.and_then(|version| {
        let rule_set = validate_rule_set(&version.rules, state.catalogue()).ok()?;
        CompiledRules::compile(&rule_set).ok()
    });
    match compiled {
        Some(rules) => plan_redrive(&rules, &run.nodes).map_err(ApiError::internal),
        None => {
            let mut nodes = run.nodes.clone();
            nodes.remove(RUN_ENTRY);
            Ok(RedrivePlan {
                nodes,
                failed: Vec::new(),
                skipped: Vec::new(),
            })
        }
    }
}
