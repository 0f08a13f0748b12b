//! MoneyFlow's HTTP server: the composer API (companies, keys, rule sets and
//! their versions, validation, the task catalogue), the Router
//! (`POST /payment`) and runs, auth, the OpenAPI document and the
//! `moneyflow` binary, which also runs the orchestrator.
//!
//! # Layout
//! - [`app`] (here): the router as a function of [`AppState`], so tests can
//!   drive it with `oneshot` or over a socket.
//! - [`startup`]: [`Application`]: open the store, settle the admin token,
//!   seed the demo, bind, start the orchestrator, serve until
//!   SIGTERM/ctrl-c, then stop the orchestrator.
//! - [`config`]: typed settings (CLI flags and `MONEYFLOW_…` variables).
//! - [`state`]: [`AppState`], what handlers share.
//! - [`routes`]: the handlers, one module per area.
//! - [`auth`]: Bearer auth: the admin token and company API keys.
//! - [`webhook`]: Standard Webhooks signatures on `POST /payment`, and
//!   signing secret generation.
//! - [`extract`]: the JSON body and path extractors and the 404/405
//!   fallbacks, all answering problem+json.
//! - [`limits`]: what one company may take: payment rate limits, event
//!   streams, the CPU pool; the server's overload answers.
//! - [`metrics`]: `GET /metrics` (Prometheus text) and the middleware that
//!   counts payment events accepted and rejected.
//! - [`error`]: [`error::ApiError`], the one error type, rendered as RFC 9457
//!   problem+json.
//! - [`secret`]: [`secret::SecretString`] and key generation and hashing.
//! - [`openapi`]: the OpenAPI 3.1 document and Swagger UI.
//! - [`demo`]: the demo company and rule set of a first start.
//! - `main.rs`: the CLI (`up`, `migrate`, `validate`).

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

pub mod auth;
pub mod bench;
pub mod cache;
pub mod config;
pub mod demo;
pub mod distributed;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod remote_events;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod state;
pub mod ui;
pub mod webhook;

pub use config::Config;
pub use startup::Application;
pub use state::AppState;

/// Every route, the docs, the problem+json fallbacks and the layers.
pub fn app(state: AppState) -> Router {
    let body_limit = state.body_limit();
    let http = state.tenant_limits().http;
    Router::new()
        .merge(routes::router())
        .merge(openapi::router())
        .fallback(extract::not_found)
        // After every route is added: it applies to the routes present.
        .method_not_allowed_fallback(extract::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyTimeoutLayer::new(http.body_read_timeout))
        // One semaphore for every route (`Router::layer` layers each route
        // apart); a request over the limit is refused at once, not queued.
        // Event streams hold a slot only until their answer starts.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(
                    http.max_concurrent_requests,
                ))
                .timeout(http.request_timeout),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::scope_max_problems,
        ))
        // Last resort: a panic answers a logged 500 problem instead of a
        // dropped connection.
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(TraceLayer::new_for_http())
        // Outermost: it sees every answer to `POST /payment`, a panic's 500
        // included.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track_payments,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::AdminTokenHash;
    use crate::secret::SecretString;

    async fn test_app() -> (Router, moneyflow_store::testing::TestStore) {
        let store = moneyflow_store::testing::fresh_sqlite().await;
        let admin = AdminTokenHash::from_token(&SecretString::new("admin"));
        let state = AppState::new((*store).clone(), admin, 1024);
        (app(state), store)
    }

    #[tokio::test]
    async fn health_check_needs_no_credentials() {
        let (app, _store) = test_app().await;
        let response = app
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], br#"{"status":"ok"}"#);
    }

    #[tokio::test]
    async fn fallbacks_are_problem_json() {
        let (app, _store) = test_app().await;
        let response = app
            .clone()
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );

        let response = app
            .oneshot(Request::delete("/tasks").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(
            response.headers()[header::ALLOW]
                .to_str()
                .unwrap()
                .contains("GET")
        );
    }

    #[tokio::test]
    async fn body_limit_from_state_gives_413() {
        let (app, _store) = test_app().await;
        let request = Request::post("/payment-rules/validate")
            .header(header::AUTHORIZATION, "Bearer admin")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(vec![b' '; 2048]))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
