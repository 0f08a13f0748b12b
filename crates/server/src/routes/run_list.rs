//! `GET /runs`: runs newest first, with filters and keyset paging.
//!
//! Paging is by `(created_at, run_id)`: the opaque `cursor` is the key of
//! the last run of a page (base64url of `v1:{created_at µs}:{run_id}`), and
//! the next page holds the runs strictly older than it. A run accepted
//! meanwhile is newer than any cursor already handed out, so it never
//! shifts a page: following `next_cursor` lists every older run once.
//!
//! A company key lists its own runs (`company_id` may be omitted; another
//! company's id answers 404, as everywhere). The admin lists one company's
//! runs with `company_id`, or every company's without it. Every query
//! parameter is checked, and every problem reported at once (400).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use moneyflow_core::event::EventType;
use moneyflow_core::ports::{CompanyStore, RunEventStore, RunQuery, RunSummary};
use moneyflow_core::run::RunStatus;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::state::AppState;

/// Runs per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 500;

/// A run without its nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummaryBody {
    pub run_id: String,
    pub company_id: String,
    pub event_id: String,
    /// The event's `type`.
    pub event_type: String,
    /// The rule version the run is pinned to.
    pub rule_version: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `aborted`.
    #[schema(example = "succeeded")]
    pub status: &'static str,
    /// How many times the run was redriven.
    pub redrive_count: i64,
    /// Failed by quarantine: its step started too many times without
    /// committing (it crashed the server or lost its lease each time);
    /// `GET /runs/{run_id}` has the reason. Cleared by a redrive.
    pub quarantined: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<RunSummary> for RunSummaryBody {
    fn from(run: RunSummary) -> Self {
        Self {
            run_id: run.run_id,
            company_id: run.company_id,
            event_id: run.event_id,
            event_type: run.event_type,
            rule_version: run.rule_version,
            status: run.status.as_str(),
            redrive_count: run.redrive_count,
            quarantined: run.quarantined,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
        }
    }
}

/// One page of runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// Newest first.
    pub items: Vec<RunSummaryBody>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The query parameters `GET /runs` accepts.
const PARAMS: &[&str] = &[
    "company_id",
    "status",
    "event_type",
    "rule_version",
    "created_after",
    "created_before",
    "limit",
    "cursor",
];

/// The query string as `(name, value)` pairs, each name at most once and
/// among `allowed`; a malformed query string is a 400.
pub(crate) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Result<Vec<(String, String)>, ApiError> {
    let Query(pairs) = query.map_err(|rejection| ApiError::BadRequest {
        detail: format!("the query string is malformed: {}", rejection.body_text()),
        errors: Vec::new(),
    })?;
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &pairs {
        if !allowed.contains(&name.as_str()) {
            errors.push(
                FieldError::new(
                    name.clone(),
                    "unknown_parameter",
                    format!("`{name}` is not a query parameter of this route"),
                )
                .with_allowed(allowed.iter().copied()),
            );
        } else if seen.contains(&name.as_str()) {
            errors.push(FieldError::new(
                name.clone(),
                "duplicate_parameter",
                format!("`{name}` is given more than once"),
            ));
        } else {
            seen.push(name);
        }
    }
    Ok(pairs)
}

/// A 400 listing every query parameter problem.
pub(crate) fn invalid_query(errors: Vec<FieldError>) -> ApiError {
    let count = errors.len();
    ApiError::BadRequest {
        detail: format!(
            "the query has {count} problem{}; each is listed in `errors` with the parameter at fault",
            if count == 1 { "" } else { "s" }
        ),
        errors,
    }
}

fn encode_cursor(run: &RunSummary) -> String {
    let micros = run.created_at.unix_timestamp_nanos() / 1_000;
    URL_SAFE_NO_PAD.encode(format!("v1:{micros}:{}", run.run_id))
}

fn decode_cursor(text: &str) -> Option<(OffsetDateTime, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("v1:")?;
    let (micros, run_id) = rest.split_once(':')?;
    let micros: i128 = micros.parse().ok()?;
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()?;
    (!run_id.is_empty()).then(|| (created_at, run_id.to_owned()))
}

/// The filters, checked: every problem of the query at once.
fn parse_query(pairs: &[(String, String)], errors: &mut Vec<FieldError>) -> RunQuery {
    let mut query = RunQuery {
        limit: DEFAULT_LIMIT,
        ..RunQuery::default()
    };
    for (name, value) in pairs {
        match name.as_str() {
            "company_id" => query.company_id = Some(value.clone()),
            "status" => match RunStatus::parse(value) {
                Some(status) => query.status = Some(status),
                None => errors.push(
                    FieldError::new(
                        "status",
                        "invalid_value",
                        format!("`{value}` is not a run status"),
                    )
                    .with_allowed(RunStatus::ALLOWED.iter().copied()),
                ),
            },
            "event_type" => match EventType::parse(value) {
                Some(event_type) => query.event_type = Some(event_type.as_str().to_owned()),
                None => errors.push(
                    FieldError::new(
                        "event_type",
                        "invalid_value",
                        format!("`{value}` is not an event type"),
                    )
                    .with_allowed(EventType::ALLOWED.iter().copied()),
                ),
            },
            "rule_version" => match value.parse::<i64>() {
                Ok(version) if version >= 1 => query.rule_version = Some(version),
                _ => errors.push(FieldError::new(
                    "rule_version",
                    "invalid_value",
                    format!("`{value}` is not a rule version: an integer from 1"),
                )),
            },
            "created_after" | "created_before" => match OffsetDateTime::parse(value, &Rfc3339) {
                Ok(at) if name == "created_after" => query.created_after = Some(at),
                Ok(at) => query.created_before = Some(at),
                Err(_) => errors.push(
                    FieldError::new(
                        name.clone(),
                        "invalid_value",
                        format!("`{value}` is not an RFC 3339 timestamp"),
                    )
                    .with_hint(
                        "e.g. 2026-12-01T00:00:00Z (percent-encode `+` in an offset as %2B)",
                    ),
                ),
            },
            "limit" => match value.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => query.limit = limit,
                _ => errors.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("`limit` must be an integer from 1 to {MAX_LIMIT}, got `{value}`"),
                )),
            },
            "cursor" => match decode_cursor(value) {
                Some(key) => query.before = Some(key),
                None => errors.push(
                    FieldError::new(
                        "cursor",
                        "invalid_value",
                        "the cursor is not one this server handed out",
                    )
                    .with_hint("pass the `next_cursor` of the previous page unchanged"),
                ),
            },
            // Unknown and duplicate names were reported by `query_pairs`.
            _ => {}
        }
    }
    query
}

/// Lists runs, newest first.
#[utoipa::path(get, path = "/runs", tag = "runs",
    params(
        ("company_id" = Option<String>, Query, description = "The company whose runs to list; a company key may omit it (its own), the admin lists every company's without it"),
        ("status" = Option<String>, Query, description = "One of `queued`, `running`, `succeeded`, `failed`, `aborted`",
            pattern = "^(queued|running|succeeded|failed|aborted)$"),
        ("event_type" = Option<String>, Query, description = "One of `product`, `digital_product`, `subscription`, `service`",
            pattern = "^(product|digital_product|subscription|service)$"),
        ("rule_version" = Option<i64>, Query, description = "Runs pinned to this rule version (from 1)", minimum = 1),
        ("created_after" = Option<String>, Query, description = "RFC 3339: runs created at or after", format = DateTime),
        ("created_before" = Option<String>, Query, description = "RFC 3339: runs created strictly before", format = DateTime),
        ("limit" = Option<usize>, Query, description = "Runs per page, 1 to 500 (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "The previous page's `next_cursor`, unchanged: an opaque token this server handed out (any other is `400`)",
            pattern = "^[A-Za-z0-9_-]+$"),
    ),
    responses(
        (status = 200, description = "A page of runs, newest first", body = RunPage),
        (status = 400, description = "A query parameter is unknown, repeated or invalid; `errors` names each with what is allowed", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "The company does not exist, or is not the key's", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = tracing::field::Empty))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<RunPage>, ApiError> {
    let mut errors = Vec::new();
    let pairs = query_pairs(query, PARAMS, &mut errors)?;
    let mut query = parse_query(&pairs, &mut errors);
    if !errors.is_empty() {
        return Err(invalid_query(errors));
    }
    let store = state.store();
    match (&principal, query.company_id.clone()) {
        (Principal::Company { company_id, .. }, None) => {
            query.company_id = Some(company_id.clone());
        }
        (_, Some(company_id)) => {
            if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
                return Err(company_not_found(&company_id));
            }
            if principal.is_admin() && store.get_company(&company_id).await?.is_none() {
                return Err(company_not_found(&company_id));
            }
        }
        (Principal::Admin, None) => {}
    }
    if let Some(company_id) = &query.company_id {
        tracing::Span::current().record("company_id", company_id.as_str());
    }
    // One more than asked: whether there is a next page, without a count.
    let limit = query.limit;
    query.limit = limit + 1;
    let mut runs = store.list_runs(&query).await?;
    let next_cursor = if runs.len() > limit {
        runs.truncate(limit);
        runs.last().map(encode_cursor)
    } else {
        None
    };
    Ok(Json(RunPage {
        items: runs.into_iter().map(RunSummaryBody::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(micros: i64, run_id: &str) -> RunSummary {
        RunSummary {
            quarantined: false,
            run_id: run_id.into(),
            company_id: "acme".into(),
            event_id: "e".into(),
            event_type: "product".into(),
            rule_version: 1,
            status: RunStatus::Queued,
            redrive_count: 0,
            created_at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
                .unwrap(),
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let run = summary(1_764_000_000_123_456, "run_abc");
        let cursor = encode_cursor(&run);
        assert_eq!(
            decode_cursor(&cursor),
            Some((run.created_at, "run_abc".to_owned()))
        );
        for bad in [
            "",
            "!!",
            "djE6",
            &URL_SAFE_NO_PAD.encode("v1:x:run"),
            &URL_SAFE_NO_PAD.encode("v1:5:"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_bad_parameter_is_reported_with_what_is_allowed() {
        let pairs: Vec<(String, String)> = [
            ("status", "done"),
            ("limit", "0"),
            ("rule_version", "-1"),
            ("created_after", "yesterday"),
            ("event_type", "gift"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        let mut errors = Vec::new();
        parse_query(&pairs, &mut errors);
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "status",
                "limit",
                "rule_version",
                "created_after",
                "event_type"
            ]
        );
        assert_eq!(errors[0].allowed, RunStatus::ALLOWED);
        assert_eq!(errors[4].allowed, EventType::ALLOWED);
    }
}
