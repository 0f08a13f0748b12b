//! `POST /payment-rules/{company_id}/simulate` and `…/backtest`: what a
//! rule set would do, with no effects and nothing stored.
//!
//! - simulate: one event through the company's current version, or through
//!   a draft (`rules`), validated first; every node's state, a condition's
//!   explanation, a task's resolved parameters and output, the outcome.
//! - backtest: a draft replayed on the company's last stored events (up to
//!   10,000), compared with what their runs did.
//!
//! A company key acts for its own company only; another company answers the
//! same 404 as a missing one.

use axum::Json;
use axum::extract::State;
use moneyflow_core::event::validate_event;
use moneyflow_core::ports::{CompanyStore, RuleStore};
use moneyflow_core::run::CompiledRules;
use moneyflow_core::validation::validate_rule_set;
use moneyflow_engine::backtest::{BacktestError, BacktestInput, BacktestReport, MAX_EVENTS};
use moneyflow_engine::{Clock, Simulation, SimulationInput, Simulator};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::routes::fields::{body_object, unknown_fields, whole_number};
use crate::state::AppState;

/// Events a backtest replays when the body does not say.
pub const DEFAULT_BACKTEST_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct SimulateRequest {
    /// A payment event, as `POST /payment` takes it (its `company_id` must be this company's).
    #[schema(value_type = Object)]
    pub event: Value,
    /// A draft rule set's nodes; the company's current version when absent.
    #[schema(value_type = Option<Vec<Object>>)]
    pub rules: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct BacktestRequest {
    /// The draft rule set's nodes.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Value>,
    /// How many of the newest stored events to replay: 1 to 10,000 (default 1,000).
    #[schema(example = 1000, minimum = 1, maximum = 10_000)]
    pub limit: Option<u64>,
}

/// The answer to a simulation: the engine's [`Simulation`], plus the company.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SimulationBody {
    pub company_id: String,
    /// The version simulated; null for a draft.
    pub rule_version: Option<i64>,
    /// `succeeded`, `failed` or `aborted`.
    #[schema(example = "succeeded")]
    pub status: String,
    /// The node ids in the order they were evaluated.
    pub path: Vec<String>,
    /// Every node: `{node_id, node_type, task_name?, state, attempts, parameters?, output, error?, note?}`;
    /// a condition's `output` explains it (each expectation's `actual`, `held`, `reason`).
    #[schema(value_type = Vec<Object>)]
    pub nodes: Value,
    /// Documents the tasks would produce (not stored): `{node_id, kind, body}`.
    #[schema(value_type = Vec<Object>)]
    pub documents: Value,
}

impl SimulationBody {
    fn new(company_id: &str, simulation: Simulation) -> Self {
        Self {
            company_id: company_id.to_owned(),
            rule_version: simulation.rule_version,
            status: simulation.status.as_str().to_owned(),
            path: simulation.path,
            nodes: serde_json::to_value(simulation.nodes).unwrap_or(Value::Null),
            documents: serde_json::to_value(simulation.documents).unwrap_or(Value::Null),
        }
    }
}

/// The answer to a backtest.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct BacktestBody {
    pub company_id: String,
    pub events_replayed: u64,
    /// Runs whose outcome, or whose nodes that ran, differ under the draft.
    pub runs_changed: u64,
    /// `{"succeeded→failed": n, …}`.
    #[schema(value_type = Object)]
    pub outcome_changes: Value,
    /// `[{node_id, task_name, now_runs, no_longer_runs, examples: [event_id…]}]`.
    #[schema(value_type = Vec<Object>)]
    pub task_changes: Value,
    /// Up to 10 changed runs: `{event_id, run_id, before: {status, nodes}, after: {status, nodes}}`.
    #[schema(value_type = Vec<Object>)]
    pub examples: Value,
}

impl BacktestBody {
    fn new(company_id: &str, report: BacktestReport) -> Self {
        Self {
            company_id: company_id.to_owned(),
            events_replayed: report.events_replayed,
            runs_changed: report.runs_changed,
            outcome_changes: serde_json::to_value(report.outcome_changes).unwrap_or(Value::Null),
            task_changes: serde_json::to_value(report.task_changes).unwrap_or(Value::Null),
            examples: serde_json::to_value(report.examples).unwrap_or(Value::Null),
        }
    }
}

/// Validates a draft's nodes as the company's rule set; problems keep the
/// paths a save would give (`rules[3].depends_on[0].node_id`).
fn draft(
    state: &AppState,
    company_id: &str,
    rules: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<CompiledRules> {
    let input = json!({"company_id": company_id, "rules": rules});
    match validate_rule_set(&input, state.catalogue()) {
        Ok(rule_set) => match CompiledRules::compile(&rule_set) {
            Ok(compiled) => Some(compiled),
            Err(error) => {
                errors.push(FieldError::new("rules", "invalid_value", error.to_string()));
                None
            }
        },
        Err(report) => {
            errors.extend(report.problems.into_iter().map(FieldError::from));
            None
        }
    }
}

/// The company's current version, compiled.
async fn current(state: &AppState, company_id: &str) -> Result<(CompiledRules, i64), ApiError> {
    let version = state
        .store()
        .current_rule_version(company_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "company `{company_id}` has no payment rules: send a draft in `rules` to simulate one"
            ))
        })?;
    // A stored version validated when it was saved; one that no longer
    // does (a task removed since) is a server-side problem.
    let rule_set = validate_rule_set(&version.rules, state.catalogue()).map_err(|report| {
        ApiError::internal(format!(
            "rule version {} of company {company_id} no longer validates ({} problems)",
            version.version,
            report.problems.len()
        ))
    })?;
    let compiled = CompiledRules::compile(&rule_set).map_err(ApiError::internal)?;
    Ok((compiled, version.version))
}

/// `$context.company` for the company, or 404.
async fn company(
    state: &AppState,
    principal: &Principal,
    company_id: &str,
) -> Result<Value, ApiError> {
    if !principal.may_act_for(company_id) || !is_valid_id(company_id) {
        return Err(company_not_found(company_id));
    }
    match state.store().get_company(company_id).await? {
        Some(company) => Ok(json!({"id": company.id, "name": company.name})),
        None => Err(company_not_found(company_id)),
    }
}

fn simulator(state: &AppState) -> Simulator {
    Simulator::new(state.registry().clone(), Clock::System).with_limits(state.size_limits())
}

/// Simulates one event, with no effects and nothing stored.
///
/// Tasks whose only effect is their documents (every built-in) run, and
/// their documents are reported, not stored; other tasks (`http_request`)
/// are not executed: they are reported as `success` with a null output and
/// a `note`. A retryable error is reported as the failure it would end in.
#[utoipa::path(post, path = "/payment-rules/{company_id}/simulate", tag = "rules",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body = SimulateRequest,
    responses(
        (status = 200, description = "Every node's state and the outcome", body = SimulationBody),
        (status = 404, description = "No such company, or it has no rules and no draft was sent", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the event and the draft, each with its JSON path", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The CPU workers stayed busy, or the simulation took longer than its budget (`--cpu-time-budget`)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn simulate(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<SimulationBody>, ApiError> {
    let company = company(&state, &principal, &company_id).await?;
    let pool = state.tenant_limits().cpu.clone();
    pool.run_async(simulate_checked(state, company_id, company, body))
        .await?
}

/// [`simulate`] once the company is known, on the CPU pool.
async fn simulate_checked(
    state: AppState,
    company_id: String,
    company: Value,
    body: Value,
) -> Result<Json<SimulationBody>, ApiError> {
    let body = body_object(body, r#"{"event": {...}, "rules": [...] (optional)}"#)?;
    let mut errors = Vec::new();
    unknown_fields(&body, &["event", "rules"], &mut errors);
    let event = body.get("event").cloned().unwrap_or(Value::Null);
    if event.is_null() {
        errors.push(FieldError::new(
            "event",
            "missing",
            "`event` is required: the payment event to simulate, as `POST /payment` takes it",
        ));
    } else {
        check_event(&event, &company_id, &mut errors);
    }
    let rules = match body.get("rules") {
        None | Some(Value::Null) => None,
        Some(rules) => Some(draft(&state, &company_id, rules, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let (rules, version) = match rules {
        Some(Some(compiled)) => (compiled, None),
        // Problems were reported above.
        Some(None) => return Err(ApiError::invalid_fields(errors)),
        None => {
            let (compiled, version) = current(&state, &company_id).await?;
            (compiled, Some(version))
        }
    };
    let simulation = simulator(&state)
        .simulate(
            &rules,
            SimulationInput {
                company_id: &company_id,
                event: &event,
                company: &company,
                rule_version: version,
            },
        )
        .await;
    tracing::info!(status = simulation.status.as_str(), "simulated");
    Ok(Json(SimulationBody::new(&company_id, simulation)))
}

/// The event's problems, at `event.…` paths.
fn check_event(event: &Value, company_id: &str, errors: &mut Vec<FieldError>) {
    match validate_event(event) {
        Ok(valid) if valid.company_id != company_id => errors.push(FieldError::new(
            "event.company_id",
            "invalid_value",
            format!(
                "the event is for company `{}`, but this simulates company `{company_id}`'s rules",
                valid.company_id
            ),
        )),
        Ok(_) => {}
        Err(problems) => errors.extend(problems.into_iter().map(|problem| {
            let mut error = FieldError::from(problem);
            error.path = if error.path.is_empty() {
                "event".to_owned()
            } else {
                format!("event.{}", error.path)
            };
            error
        })),
    }
}

/// Replays a draft on the company's last stored events and compares.
///
/// Each event's stored run is the *before* (its checkpointed node states; a
/// run not finished yet is simulated on its pinned version), the draft's
/// simulation the *after*. Tasks a simulation does not execute take the
/// stored run's recorded result. Nothing is stored.
#[utoipa::path(post, path = "/payment-rules/{company_id}/backtest", tag = "rules",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body = BacktestRequest,
    responses(
        (status = 200, description = "What would change", body = BacktestBody),
        (status = 404, description = "No such company (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the draft and the limit", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 503, description = "The CPU workers stayed busy, or the backtest took longer than its budget (`--cpu-time-budget`): replay fewer events", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn backtest(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<BacktestBody>, ApiError> {
    let company = company(&state, &principal, &company_id).await?;
    let pool = state.tenant_limits().cpu.clone();
    pool.run_async(backtest_checked(state, company_id, company, body))
        .await?
}

/// [`backtest`] once the company is known, on the CPU pool.
async fn backtest_checked(
    state: AppState,
    company_id: String,
    company: Value,
    body: Value,
) -> Result<Json<BacktestBody>, ApiError> {
    let body = body_object(body, r#"{"rules": [...], "limit": 1000 (optional)}"#)?;
    let mut errors = Vec::new();
    unknown_fields(&body, &["rules", "limit"], &mut errors);
    let limit = match body.get("limit") {
        None | Some(Value::Null) => Some(DEFAULT_BACKTEST_LIMIT),
        Some(value) => match whole_number(value)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_EVENTS).contains(n))
        {
            Some(n) => Some(n),
            None => {
                errors.push(FieldError::new(
                    "limit",
                    "invalid_value",
                    format!("`limit` must be a whole number from 1 to {MAX_EVENTS}"),
                ));
                None
            }
        },
    };
    let draft = match body.get("rules") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "rules",
                "missing",
                "`rules` is required: the draft rule set's nodes to replay the events through",
            ));
            None
        }
        Some(rules) => draft(&state, &company_id, rules, &mut errors),
    };
    let (Some(draft), Some(limit)) = (draft, limit) else {
        return Err(ApiError::invalid_fields(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::invalid_fields(errors));
    }
    let report = moneyflow_engine::backtest::backtest(
        state.store(),
        &simulator(&state),
        BacktestInput {
            company_id: &company_id,
            company: &company,
            draft: &draft,
            limit,
            catalogue: state.catalogue(),
        },
    )
    .await
    .map_err(|error| match error {
        BacktestError::Store(error) => ApiError::from(error),
    })?;
    tracing::info!(
        events = report.events_replayed,
        changed = report.runs_changed,
        "backtested"
    );
    Ok(Json(BacktestBody::new(&company_id, report)))
}
