//! `GET /metrics`: what an operator watches, in the Prometheus text format.
//!
//! - Payment events accepted, replayed, and rejected by reason
//!   (`validation`, `auth`, `unknown_company`, `idempotency_conflict`,
//!   `no_rule_set`, `unavailable`, `internal`), counted by [`track_payments`],
//!   a middleware that reads each `POST /payment` answer's status and
//!   problem kind (so every path of rejection is counted, the extractors'
//!   included, without touching the handler).
//! - The engine's [`EngineMetrics`]: runs finished by outcome, task
//!   durations by task name, retries, steps, notification deliveries.
//! - Read from the store at scrape time: the run queue's depth, the runs
//!   waiting for a worker and the age of the oldest, the group-commit
//!   writer's batches and queued writes.
//!
//! No authentication, like `/docs`: the numbers name no company, run or
//! secret (labels are task names, outcomes and reasons only). Put it behind
//! the network's edge if that is too much.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use moneyflow_core::ports::RunEventStore;
use moneyflow_engine::EngineMetrics;
use moneyflow_engine::metrics::{Counter, CounterVec, TEXT_CONTENT_TYPE, TextEncoder};
use time::OffsetDateTime;

use crate::error::ProblemKind;
use crate::routes::payment::REPLAYED_HEADER;
use crate::state::AppState;

/// Why a payment event was rejected, as the `reason` label says it.
pub const REJECTION_REASONS: &[&str] = &[
    "validation",
    "auth",
    "unknown_company",
    "idempotency_conflict",
    "no_rule_set",
    "unavailable",
    "internal",
];

/// The server's metrics and the engine's. Cheap to clone; clones count
/// into the same values.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub engine: Arc<EngineMetrics>,
    pub events_accepted: Arc<Counter>,
    pub events_replayed: Arc<Counter>,
    pub events_rejected: CounterVec,
    pub runs_redriven: Arc<Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            engine: EngineMetrics::new(),
            events_accepted: Arc::default(),
            events_replayed: Arc::default(),
            events_rejected: CounterVec::new("reason", REJECTION_REASONS),
            runs_redriven: Arc::default(),
        }
    }
}

/// The `reason` of a rejected payment, from its problem kind.
pub fn rejection_reason(kind: Option<ProblemKind>, status: StatusCode) -> &'static str {
    match kind.map(|k| k.0) {
        Some(
            "validation-failed" | "bad-request" | "payload-too-large" | "unsupported-media-type",
        ) => "validation",
        Some("unauthorized" | "invalid-signature" | "forbidden") => "auth",
        Some("not-found") => "unknown_company",
        Some("idempotency-key-reused") => "idempotency_conflict",
        Some("no-rule-set") => "no_rule_set",
        Some("unavailable") => "unavailable",
        Some(_) => "internal",
        // Not one of our problems (a panic's answer is one; this is a layer's).
        None if status == StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        None if status.is_client_error() => "validation",
        None => "internal",
    }
}

/// Counts each `POST /payment` by its answer: `202` accepted (or replayed,
/// with `Idempotent-Replayed`), anything else rejected with its reason.
pub async fn track_payments(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let counted = request.method() == Method::POST && request.uri().path() == "/payment";
    let response = next.run(request).await;
    if counted {
        let metrics = state.metrics();
        let status = response.status();
        if status == StatusCode::ACCEPTED {
            if response.headers().contains_key(REPLAYED_HEADER) {
                metrics.events_replayed.inc();
            } else {
                metrics.events_accepted.inc();
            }
        } else if !status.is_success() {
            let kind = response.extensions().get::<ProblemKind>().copied();
            metrics.events_rejected.inc(rejection_reason(kind, status));
        }
    }
    response
}

/// The metrics, in the Prometheus text exposition format (0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "health", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
         content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "Neither the admin token nor the metrics token (`--metrics-token`)", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "A company API key: metrics are the operator's", body = crate::error::ProblemDetails, content_type = "application/problem+json"),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, crate::error::ApiError> {
    crate::auth::require_metrics_access(&state, &headers).await?;
    Ok(render(&state).await)
}

async fn render(state: &AppState) -> Response {
    let metrics = state.metrics();
    let store = state.store();
    let mut out = TextEncoder::new();
    out.counter(
        "moneyflow_events_accepted_total",
        "Payment events stored and queued (202, not counting replays).",
        metrics.events_accepted.get(),
    );
    out.counter(
        "moneyflow_events_replayed_total",
        "Payment events answered as replays of an earlier one (same idempotency key and body).",
        metrics.events_replayed.get(),
    );
    out.counter_vec(
        "moneyflow_events_rejected_total",
        "Payment events refused, by reason.",
        &metrics.events_rejected,
    );
    out.counter(
        "moneyflow_runs_redriven_total",
        "Failed runs queued again by a redrive.",
        metrics.runs_redriven.get(),
    );
    metrics.engine.encode(&mut out);
    let now = OffsetDateTime::now_utc();
    match store.queue_stats(now).await {
        Ok(queue) => {
            out.gauge(
                "moneyflow_store_up",
                "Whether the store answered this scrape.",
                1.0,
            );
            out.gauge(
                "moneyflow_queue_depth",
                "Runs not finished (entries in the run queue).",
                gauge_value(queue.depth),
            );
            out.gauge(
                "moneyflow_queue_due",
                "Runs due now and not leased: waiting for a worker.",
                gauge_value(queue.due),
            );
            let age = queue
                .oldest_due_at
                .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
            out.gauge(
                "moneyflow_queue_oldest_due_age_seconds",
                "How long the longest-waiting due run has waited for a worker (0 when none waits).",
                age,
            );
        }
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "metrics: the store did not answer");
            out.gauge(
                "moneyflow_store_up",
                "Whether the store answered this scrape.",
                0.0,
            );
        }
    }
    out.counter(
        "moneyflow_store_write_batches_total",
        "Transactions the store's group-commit writer committed.",
        store.write_batches(),
    );
    out.gauge(
        "moneyflow_store_queued_writes",
        "Writes waiting for the store's group-commit writer.",
        // Bounded by the writer's queue capacity: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        {
            store.queued_writes() as f64
        },
    );
    match store.size_bytes().await {
        Ok(bytes) => out.gauge(
            "moneyflow_store_bytes",
            "Bytes the store takes on disk (SQLite: the file, its WAL and index; PostgreSQL: the database).",
            gauge_bytes(bytes),
        ),
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "metrics: the store size is unknown");
        }
    }
    encode_process(&mut out);
    let mut response = (StatusCode::OK, out.finish()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(TEXT_CONTENT_TYPE),
    );
    response
}

/// The standard process gauges (the names Prometheus's client libraries
/// use): CPU time is what `moneyflow bench` divides by the runs.
fn encode_process(out: &mut TextEncoder) {
    let stat = match procfs::process::Process::myself().and_then(|me| me.stat()) {
        Ok(stat) => stat,
        Err(error) => {
            tracing::debug!(%error, "metrics: /proc/self/stat is unreadable");
            return;
        }
    };
    // Tick counts of one process stay far below 2^53: exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    let cpu_seconds = (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64;
    out.counter_f64(
        "process_cpu_seconds_total",
        "User and system CPU time the server process has used, in seconds.",
        cpu_seconds,
    );
    out.gauge(
        "process_resident_memory_bytes",
        "Resident memory of the server process, in bytes.",
        gauge_bytes(stat.rss * procfs::page_size()),
    );
}

// Sizes far below 2^53 bytes: exact in an f64.
#[allow(clippy::cast_precision_loss)]
fn gauge_bytes(bytes: u64) -> f64 {
    bytes as f64
}

// Counts of rows: far below 2^53, exact in an f64.
#[allow(clippy::cast_precision_loss)]
fn gauge_value(count: i64) -> f64 {
    count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_kind_has_a_reason() {
        let cases = [
            ("validation-failed", "validation"),
            ("bad-request", "validation"),
            ("payload-too-large", "validation"),
            ("unauthorized", "auth"),
            ("invalid-signature", "auth"),
            ("not-found", "unknown_company"),
            ("idempotency-key-reused", "idempotency_conflict"),
            ("no-rule-set", "no_rule_set"),
            ("unavailable", "unavailable"),
            ("internal", "internal"),
        ];
        for (kind, reason) in cases {
            assert_eq!(
                rejection_reason(Some(ProblemKind(kind)), StatusCode::BAD_REQUEST),
                reason,
                "{kind}"
            );
            assert!(REJECTION_REASONS.contains(&reason));
        }
        assert_eq!(
            rejection_reason(None, StatusCode::SERVICE_UNAVAILABLE),
            "unavailable"
        );
    }
}
