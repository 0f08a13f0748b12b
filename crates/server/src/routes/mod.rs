//! The HTTP routes, one module per area:
//! - [`health`]: `GET /`, `GET /health` (liveness), `GET /ready` (readiness).
//! - [`dead_letters`]: `/admin/dead-letters…`: runs RabbitMQ gave up on, and
//!   replaying them (distributed mode).
//! - [`rules`]: `/payment-rules…`: save (a new version), read, versions, validate.
//! - [`tasks`]: `GET /tasks`, the task catalogue with each task's JSON Schema.
//! - [`companies`]: `/companies…` and their API keys.
//! - [`company_limits`]: `/companies/{id}/limits`, a company's payment
//!   rate (the admin sets it).
//! - [`signing_secrets`]: `/companies/{id}/signing-secrets`, the webhook
//!   signing secrets, with rotation.
//! - [`payment`]: `POST /payment`, the Router: authenticate, validate,
//!   deduplicate, pin the rule version, store and queue the run.
//! - [`runs`]: `GET /runs/{run_id}`, a run's nodes and documents.
//! - [`run_list`]: `GET /runs`, runs with filters and keyset paging.
//! - [`redrive`]: `POST /runs/{run_id}/redrive`, a failed run again from its
//!   failed nodes.
//! - [`streams`]: `GET /runs/{run_id}/events` and
//!   `GET /companies/{company_id}/events`, run events live (SSE), resumable.
//! - [`simulate`]: `/payment-rules/{company_id}/simulate` and `…/backtest`:
//!   what a rule set would do, with nothing stored.
//! - [`notifications`]: `/companies/{id}/notification-endpoints…`: where a
//!   company hears about finished runs, and every delivery and attempt.
//!
//! Handlers take [`crate::auth::Principal`] first (so a request without
//! credentials gets its 401 before its body is read) and the body last.

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

pub mod companies;
pub mod company_limits;
pub mod dead_letters;
pub mod fields;
pub mod health;
pub mod notifications;
pub mod payment;
pub mod redrive;
pub mod rules;
pub mod run_list;
pub mod runs;
pub mod signing_secrets;
pub mod simulate;
pub mod streams;
pub mod tasks;

/// Every API route (without the docs, fallbacks and layers [`crate::app`] adds).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(health::status))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/admin/dead-letters", get(dead_letters::list))
        .route("/admin/dead-letters/replay", post(dead_letters::replay_all))
        .route(
            "/admin/dead-letters/{run_id}/replay",
            post(dead_letters::replay),
        )
        // The original API documented the trailing slash; both spellings work.
        .route("/payment-rules", post(rules::save))
        .route("/payment-rules/", post(rules::save_trailing_slash))
        .route("/payment-rules/validate", post(rules::validate))
        .route("/payment-rules/{company_id}", get(rules::current))
        .route("/payment-rules/{company_id}/versions", get(rules::versions))
        .route(
            "/payment-rules/{company_id}/versions/{version}",
            get(rules::version),
        )
        .route("/tasks", get(tasks::list))
        .route("/companies", post(companies::create).get(companies::list))
        .route("/companies/{company_id}", get(companies::get))
        .route(
            "/companies/{company_id}/limits",
            get(company_limits::get).merge(put(company_limits::put)),
        )
        .route(
            "/companies/{company_id}/api-keys",
            post(companies::create_api_key).get(companies::list_api_keys),
        )
        .route(
            "/companies/{company_id}/api-keys/{key_id}",
            delete(companies::revoke_api_key),
        )
        .route(
            "/companies/{company_id}/signing-secrets",
            post(signing_secrets::create).get(signing_secrets::list),
        )
        .route(
            "/companies/{company_id}/signing-secrets/{secret_id}",
            delete(signing_secrets::delete),
        )
        .route(
            "/payment-rules/{company_id}/simulate",
            post(simulate::simulate),
        )
        .route(
            "/payment-rules/{company_id}/backtest",
            post(simulate::backtest),
        )
        .route(
            "/companies/{company_id}/notification-endpoints",
            post(notifications::create).get(notifications::list),
        )
        .route(
            "/companies/{company_id}/notification-endpoints/{endpoint_id}",
            delete(notifications::delete),
        )
        .route(
            "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries",
            get(notifications::deliveries),
        )
        .route(
            "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries/{delivery_id}",
            get(notifications::delivery),
        )
        .route("/payment", post(payment::create))
        .route("/runs/{run_id}", get(runs::get))
        .route("/runs", get(run_list::list))
        .route("/runs/{run_id}/redrive", post(redrive::redrive))
        .route("/runs/{run_id}/events", get(streams::run_events))
        .route(
            "/companies/{company_id}/events",
            get(streams::company_events),
        )
        .route("/metrics", get(crate::metrics::metrics))
}
