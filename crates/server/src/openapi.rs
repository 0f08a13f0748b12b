//! The OpenAPI 3.1 document (utoipa derive), served at `/openapi.json`, and
//! Swagger UI at `/docs` (assets vendored in the binary: no network needed).

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{FieldError, ProblemDetails};
use crate::routes::{
    companies, dead_letters, health, notifications, payment, redrive, rules, run_list, runs,
    signing_secrets, simulate, streams, tasks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MoneyFlow",
        description = "Compose payment rules as graphs of conditions and tasks, and run them on payment events.\n\n\
            Every route but `GET /`, `/metrics`, `/docs` and `/openapi.json` needs `Authorization: Bearer <token>`: \
            the admin token may do everything; a company API key acts for its own company alone \
            (another company's resources answer 404). Errors are RFC 9457 `application/problem+json` \
            with a machine-readable `type`, the field paths at fault in `errors`, and `retryable`.\n\n\
            `POST /payment` also accepts Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, \
            `webhook-signature`) made with the company's signing secret instead of a Bearer token."
    ),
    paths(
        health::status,
        health::health,
        health::ready,
        rules::save,
        rules::save_trailing_slash,
        rules::validate,
        rules::current,
        rules::versions,
        rules::version,
        simulate::simulate,
        simulate::backtest,
        tasks::list,
        companies::create,
        companies::list,
        companies::get,
        companies::create_api_key,
        companies::list_api_keys,
        companies::revoke_api_key,
        signing_secrets::create,
        signing_secrets::list,
        notifications::create,
        notifications::list,
        notifications::delete,
        notifications::deliveries,
        notifications::delivery,
        payment::create,
        runs::get,
        run_list::list,
        redrive::redrive,
        streams::run_events,
        streams::company_events,
        crate::metrics::metrics,
        dead_letters::list,
        dead_letters::replay,
        dead_letters::replay_all,
    ),
    components(schemas(ProblemDetails, FieldError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness and Prometheus metrics"),
        (name = "payments", description = "The Router: payment events in, queued runs out"),
        (name = "runs", description = "Runs: listing, node states, outputs and documents, live events (SSE), redrive"),
        (name = "rules", description = "Payment rule sets and their versions"),
        (name = "tasks", description = "The built-in task catalogue"),
        (name = "companies", description = "Companies and their API keys (admin)"),
        (name = "notifications", description = "Notification endpoints: signed webhooks when runs finish, with every delivery and attempt"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the document's `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (`mfa_…`) or a company API key (`mfk_…`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "standard_webhooks",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "webhook-signature",
                "Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256 of {webhook-id}.{webhook-timestamp}.{body}>` \
                 with the company's signing secret (`whsec_…`, see `/companies/{company_id}/signing-secrets`), \
                 plus the `webhook-id` and `webhook-timestamp` headers",
            ))),
        );
    }
}

/// `/openapi.json` and `/docs` (no credentials needed).
pub fn router() -> Router<AppState> {
    let swagger: Router<AppState> = SwaggerUi::new("/docs")
        .url("/openapi.json", ApiDoc::openapi())
        .into();
    // Swagger UI answers an unknown `/docs/…` file with a bare 404; make it
    // the same problem+json every other unknown route gets.
    swagger.layer(axum::middleware::map_response(
        |uri: Uri, response: Response| async move {
            if response.status() == StatusCode::NOT_FOUND {
                crate::extract::not_found(uri).await.into_response()
            } else {
                response
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_3_1_with_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/",
            "/payment-rules",
            "/payment-rules/",
            "/payment-rules/validate",
            "/payment-rules/{company_id}",
            "/payment-rules/{company_id}/versions",
            "/payment-rules/{company_id}/versions/{version}",
            "/tasks",
            "/companies",
            "/companies/{company_id}",
            "/companies/{company_id}/api-keys",
            "/companies/{company_id}/api-keys/{key_id}",
            "/companies/{company_id}/signing-secrets",
            "/payment",
            "/runs/{run_id}",
            "/runs",
            "/runs/{run_id}/redrive",
            "/runs/{run_id}/events",
            "/companies/{company_id}/events",
            "/metrics",
            "/payment-rules/{company_id}/simulate",
            "/payment-rules/{company_id}/backtest",
            "/companies/{company_id}/notification-endpoints",
            "/companies/{company_id}/notification-endpoints/{endpoint_id}",
            "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries",
            "/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries/{delivery_id}",
        ] {
            assert!(doc["paths"].get(path).is_some(), "missing {path}");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["securitySchemes"]["standard_webhooks"].is_object());
        assert!(doc["paths"]["/payment"]["post"]["responses"]["202"].is_object());
        assert!(doc["components"]["schemas"]["ProblemDetails"].is_object());
    }
}
