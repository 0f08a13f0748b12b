//! `/payment-rules…`: the composer's rule sets.
//!
//! Every save validates the whole body with the core's validator (all
//! problems at once, each with its JSON path) and stores the normalised rule
//! set as the company's next immutable version. Literal data past the node
//! or run size limit is refused there too (`too_large`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use moneyflow_core::model::RuleSet;
use moneyflow_core::ports::{CompanyStore, RuleStore, RuleVersion, RuleVersionSummary, StoreError};
use moneyflow_core::size::oversized_literals;
use moneyflow_core::validation::{ValidationReport, validate_rule_set};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::routes::companies::is_valid_id;
use crate::state::AppState;

/// The body of a save or a validation: the original format.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct RuleSetRequest {
    #[schema(example = "b5aa9687-d61f-467c-973e-f55d446981dc")]
    pub company_id: String,
    /// The nodes: `{node_type, node_id, depends_on?, expect | task_name + parameters, …}`.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Value>,
}

/// One version of a company's rule set, as saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleVersionBody {
    /// The company's rule id: the same for every version.
    pub id: String,
    pub company_id: String,
    /// The normalised nodes (`depends_on` always present).
    #[schema(value_type = Vec<Object>)]
    pub rules: Value,
    /// When the first version was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When this version was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// 1, 2, 3… per company.
    pub version: i64,
}

impl From<RuleVersion> for RuleVersionBody {
    fn from(version: RuleVersion) -> Self {
        // The store keeps the whole normalised rule set; the API answers its node list.
        let rules = match version.rules {
            Value::Object(mut rule_set) => {
                rule_set.remove("rules").unwrap_or(Value::Array(Vec::new()))
            }
            other => other,
        };
        Self {
            id: version.id,
            company_id: version.company_id,
            rules,
            created_at: version.created_at,
            updated_at: version.updated_at,
            version: version.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    pub version: i64,
    pub node_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<RuleVersionSummary> for VersionSummary {
    fn from(summary: RuleVersionSummary) -> Self {
        Self {
            version: summary.version,
            node_count: summary.node_count,
            created_at: summary.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    pub items: Vec<VersionSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationResult {
    pub valid: bool,
    /// The problems in document order, at most the server's
    /// `--max-problems` (default 100); empty when valid.
    pub problems: Vec<FieldError>,
    /// How many more problems there are than `problems` lists; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems_omitted: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct VersionPath {
    pub company_id: String,
    pub version: i64,
}

/// The 404 for a company without rules, and for another company's rules:
/// the two must be indistinguishable.
fn no_rules(company_id: &str) -> ApiError {
    ApiError::not_found(format!("company `{company_id}` has no payment rules"))
}

/// Saves a rule set as the company's next version.
///
/// The admin may save for any company (one that does not exist yet is
/// created, named after its id, as the original API had no companies); a
/// company key only for its own company.
#[utoipa::path(post, path = "/payment-rules", tag = "rules",
    request_body = RuleSetRequest,
    responses(
        (status = 201, description = "Saved as a new version", body = RuleVersionBody),
        (status = 422, description = "Every problem, each with its JSON path", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "Another company's id (for a company key)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = tracing::field::Empty))]
pub async fn save(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, HeaderMap, Json<RuleVersionBody>), ApiError> {
    if let Some(company_id) = body.get("company_id").and_then(Value::as_str) {
        tracing::Span::current().record("company_id", company_id);
        if !principal.may_act_for(company_id) {
            return Err(crate::routes::companies::company_not_found(company_id));
        }
    }
    let rule_set = validate_on_cpu_pool(&state, body)
        .await?
        .map_err(ApiError::from_report)?;
    let company_id = rule_set.company_id.clone();
    let rules = rule_set.to_json();
    let node_count = i64::try_from(rule_set.rules.len()).unwrap_or(i64::MAX);

    let store = state.store();
    let saved = match store
        .save_rule_version(&company_id, &rules, node_count)
        .await
    {
        Err(StoreError::NotFound(_)) if principal.is_admin() => {
            crate::routes::companies::check_company_id(&company_id)
                .map_err(|error| ApiError::invalid_fields(vec![error]))?;
            match store.create_company(&company_id, &company_id).await {
                // Another request created it in between: just as good.
                Ok(_) | Err(StoreError::Conflict(_)) => {}
                Err(error) => return Err(error.into()),
            }
            tracing::info!("created company for its first rule set");
            store
                .save_rule_version(&company_id, &rules, node_count)
                .await?
        }
        Err(StoreError::NotFound(_)) => {
            return Err(crate::routes::companies::company_not_found(&company_id));
        }
        other => other?,
    };
    state.current_versions().offer(&company_id, saved.version);
    tracing::info!(version = saved.version, node_count, "rule set saved");

    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/payment-rules/{}/versions/{}",
        saved.company_id, saved.version
    )) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(saved.into())))
}

/// The original spelling, `POST /payment-rules/`: the same as `POST /payment-rules`.
#[utoipa::path(post, path = "/payment-rules/", tag = "rules",
    request_body = RuleSetRequest,
    responses(
        (status = 201, description = "Saved as a new version", body = RuleVersionBody),
        (status = 422, description = "Every problem, each with its JSON path", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "Another company's id (for a company key)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub async fn save_trailing_slash(
    state: State<AppState>,
    principal: Principal,
    body: JsonBody<Value>,
) -> Result<(StatusCode, HeaderMap, Json<RuleVersionBody>), ApiError> {
    save(state, principal, body).await
}

/// Validates a rule set without saving anything.
#[utoipa::path(post, path = "/payment-rules/validate", tag = "rules",
    request_body(content = Value, description = "Any JSON: a rule set (`RuleSetRequest`) or not; whatever is wrong with it is answered as `problems`, not refused"),
    responses(
        (status = 200, description = "Whether the rule set is valid, and every problem", body = ValidationResult),
        (status = 503, description = "The CPU workers stayed busy, or the validation took longer than its budget (`--cpu-time-budget`); retry after `Retry-After`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = tracing::field::Empty))]
pub async fn validate(
    State(state): State<AppState>,
    _principal: Principal,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<ValidationResult>, ApiError> {
    if let Some(company_id) = body.get("company_id").and_then(Value::as_str) {
        tracing::Span::current().record("company_id", company_id);
    }
    // A company key may validate any rule set: nothing is read or written,
    // so nothing of another company is exposed.
    Ok(Json(match validate_on_cpu_pool(&state, body).await? {
        Ok(_) => ValidationResult {
            valid: true,
            problems: Vec::new(),
            problems_omitted: None,
        },
        Err(report) => {
            let max = state.max_problems();
            let omitted = report.problems.len().saturating_sub(max);
            ValidationResult {
                valid: false,
                problems: report
                    .problems
                    .into_iter()
                    .take(max)
                    .map(FieldError::from)
                    .collect(),
                problems_omitted: (omitted > 0).then(|| u64::try_from(omitted).unwrap_or(u64::MAX)),
            }
        }
    }))
}

/// [`validate_within_limits`] on the CPU pool (see [`crate::limits`]): a
/// large rule set is work that must not stall the async workers.
async fn validate_on_cpu_pool(
    state: &AppState,
    body: Value,
) -> Result<Result<RuleSet, ValidationReport>, ApiError> {
    let pool_state = state.clone();
    state
        .tenant_limits()
        .cpu
        .run(move || validate_within_limits(&pool_state, &body))
        .await
}

/// [`validate_rule_set`], then the size limits: a rule set whose literal
/// parameters or values already pass one would fail every run.
fn validate_within_limits(state: &AppState, body: &Value) -> Result<RuleSet, ValidationReport> {
    let rule_set = validate_rule_set(body, state.catalogue())?;
    let problems = oversized_literals(&rule_set, &state.size_limits());
    if problems.is_empty() {
        Ok(rule_set)
    } else {
        Err(ValidationReport { problems })
    }
}

/// The company's current (newest) rule set.
#[utoipa::path(get, path = "/payment-rules/{company_id}", tag = "rules",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "The current version", body = RuleVersionBody),
        (status = 404, description = "No rules (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<RuleVersionBody>, ApiError> {
    if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
        return Err(no_rules(&company_id));
    }
    match state.store().current_rule_version(&company_id).await? {
        Some(version) => Ok(Json(version.into())),
        None => Err(no_rules(&company_id)),
    }
}

/// The company's versions, newest first.
#[utoipa::path(get, path = "/payment-rules/{company_id}/versions", tag = "rules",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "Every version, newest first", body = VersionList),
        (status = 404, description = "No rules (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
        return Err(no_rules(&company_id));
    }
    let versions = state.store().list_rule_versions(&company_id).await?;
    // A company without versions answers like `GET /payment-rules/{id}`
    // does, so a missing company, a company without rules and another
    // company's rules all look alike.
    if versions.is_empty() {
        return Err(no_rules(&company_id));
    }
    Ok(Json(VersionList {
        items: versions.into_iter().map(VersionSummary::from).collect(),
    }))
}

/// One version of the company's rule set.
#[utoipa::path(get, path = "/payment-rules/{company_id}/versions/{version}", tag = "rules",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("version" = i64, Path, description = "The version number, from 1"),
    ),
    responses(
        (status = 200, description = "That version", body = RuleVersionBody),
        (status = 400, description = "The version is not an integer", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such version (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, version = path.version))]
pub async fn version(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<VersionPath>,
) -> Result<Json<RuleVersionBody>, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "company `{}` has no payment rules version {}",
            path.company_id, path.version
        ))
    };
    if !principal.may_act_for(&path.company_id) || !is_valid_id(&path.company_id) {
        return Err(not_found());
    }
    match state
        .store()
        .get_rule_version(&path.company_id, path.version)
        .await?
    {
        Some(version) => Ok(Json(version.into())),
        None => Err(not_found()),
    }
}
