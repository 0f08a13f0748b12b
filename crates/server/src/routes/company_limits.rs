//! `/companies/{company_id}/limits`: what one company may send. The admin
//! sets a company's own payment rate and burst (`PUT`); the company's key
//! may read them (`GET`). A limit left `null` is the deployment's default
//! (`--payments-per-second`, `--payments-burst`); `effective` says what
//! applies now (`null`: nothing limits the company).

use axum::Json;
use axum::extract::State;
use moneyflow_core::ports::{CompanyLimits, CompanyStore};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::limits::PaymentRate;
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::routes::fields::{body_object, unknown_fields, whole_number};
use crate::state::AppState;

/// The largest rate or burst the API takes: far above what one server
/// accepts, so it means "practically unlimited" for one company.
pub const MAX_LIMIT: u32 = 1_000_000;
const FIELDS: [&str; 2] = ["payments_per_second", "payments_burst"];

/// The body of `PUT`: each field a whole number from 1 to 1,000,000, or
/// `null` (or absent) for the deployment's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct CompanyLimitsRequest {
    #[schema(minimum = 1, maximum = 1_000_000, example = 200)]
    pub payments_per_second: Option<u32>,
    #[schema(minimum = 1, maximum = 1_000_000, example = 400)]
    pub payments_burst: Option<u32>,
}

/// A rate that applies: payment events per second and the burst above it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveRate {
    pub payments_per_second: u32,
    pub payments_burst: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyLimitsBody {
    pub company_id: String,
    /// The company's own rate; `null`: the deployment's default.
    pub payments_per_second: Option<u32>,
    /// The company's own burst; `null`: the deployment's default.
    pub payments_burst: Option<u32>,
    /// What applies now, per router process; `null`: no limit.
    pub effective: Option<EffectiveRate>,
}

impl CompanyLimitsBody {
    fn new(state: &AppState, company_id: String, limits: CompanyLimits) -> Self {
        let default = state.tenant_limits().payment_rates.default_rate();
        Self {
            company_id,
            payments_per_second: limits.payments_per_second,
            payments_burst: limits.payments_burst,
            effective: PaymentRate::for_company(limits, default).map(|rate| EffectiveRate {
                payments_per_second: rate.per_second.get(),
                payments_burst: rate.burst.get(),
            }),
        }
    }
}

/// The company's limits (the admin, or that company's own key).
#[utoipa::path(get, path = "/companies/{company_id}/limits", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "The company's own limits and what applies", body = CompanyLimitsBody),
        (status = 404, description = "No such company (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<CompanyLimitsBody>, ApiError> {
    if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    match state.store().company_limits(&company_id).await? {
        Some(limits) => Ok(Json(CompanyLimitsBody::new(&state, company_id, limits))),
        None => Err(company_not_found(&company_id)),
    }
}

/// Sets the company's limits (admin); they apply in this process at once,
/// in other router processes within a second.
#[utoipa::path(put, path = "/companies/{company_id}/limits", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body = CompanyLimitsRequest,
    responses(
        (status = 200, description = "The limits as stored, and what applies", body = CompanyLimitsBody),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every field at fault", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<CompanyLimitsBody>, ApiError> {
    principal.require_admin()?;
    if !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    let limits = parse(body)?;
    state
        .store()
        .set_company_limits(&company_id, limits)
        .await
        .map_err(|error| match error {
            moneyflow_core::ports::StoreError::NotFound(_) => company_not_found(&company_id),
            other => other.into(),
        })?;
    state.tenant_limits().payment_rates.forget(&company_id);
    tracing::info!(
        payments_per_second = limits.payments_per_second,
        payments_burst = limits.payments_burst,
        "company limits set"
    );
    Ok(Json(CompanyLimitsBody::new(&state, company_id, limits)))
}

fn parse(body: Value) -> Result<CompanyLimits, ApiError> {
    let body = body_object(
        body,
        r#"{"payments_per_second": 200 or null, "payments_burst": 400 or null}"#,
    )?;
    let mut errors = Vec::new();
    unknown_fields(&body, &FIELDS, &mut errors);
    let mut limit = |name: &str| match body.get(name) {
        None | Some(Value::Null) => None,
        Some(value) => match whole_number(value)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_LIMIT).contains(n))
        {
            Some(n) => Some(n),
            None => {
                errors.push(FieldError::new(
                    name,
                    "invalid_value",
                    format!(
                        "`{name}` must be a whole number from 1 to {MAX_LIMIT}, or null for the deployment's default; got {value}"
                    ),
                ));
                None
            }
        },
    };
    let limits = CompanyLimits {
        payments_per_second: limit("payments_per_second"),
        payments_burst: limit("payments_burst"),
    };
    if errors.is_empty() {
        Ok(limits)
    } else {
        Err(ApiError::invalid_fields(errors))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn limits_parse_with_every_problem_named() {
        assert_eq!(
            parse(json!({"payments_per_second": 5, "payments_burst": null})).unwrap(),
            CompanyLimits {
                payments_per_second: Some(5),
                payments_burst: None
            }
        );
        assert_eq!(parse(json!({})).unwrap(), CompanyLimits::default());
        let Err(ApiError::Validation { errors, .. }) = parse(json!({
            "payments_per_second": 0, "payments_burst": 1.5, "rate": 3
        })) else {
            panic!("expected a 422");
        };
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["rate", "payments_per_second", "payments_burst"]);
        assert!(parse(json!({"payments_per_second": MAX_LIMIT + 1})).is_err());
        assert!(parse(json!([1])).is_err());
    }
}
