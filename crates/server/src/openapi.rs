//! The OpenAPI 3.1 document (utoipa derive), served at `/openapi.json`, and
//! Swagger UI at `/docs` (assets vendored in the binary: no network needed).

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{FieldError, ProblemDetails};
use crate::routes::{
    companies, company_limits, dead_letters, health, notifications, payment, redrive, rules,
    run_list, runs, signing_secrets, simulate, streams, tasks,
};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MoneyFlow",
        description = "Compose payment rules as graphs of conditions and tasks, and run them on payment events.\n\n\
            Every route but `GET /`, `/health`, `/ready`, `/docs` and `/openapi.json` needs `Authorization: Bearer <token>` (`/metrics`: the admin token or the metrics token): \
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
        company_limits::get,
        company_limits::put,
        signing_secrets::create,
        signing_secrets::list,
        signing_secrets::delete,
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
    modifiers(&BearerAuth, &CommonResponses, &HeadersAreNeverNull),
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

/// Answers any route can give whatever its handler does, documented once as
/// shared responses (`#/components/responses/…`) and referenced from every
/// operation they apply to, unless the route documents that status itself.
///
/// Which apply is read off the operation: a request body brings malformed
/// JSON (400), a wrong content type (415), a body over the limit (413) and a
/// body that does not deserialise (422); parameters bring 400 for a value of
/// the wrong type and path parameters 404; credentials bring 401 and 403;
/// every route may be refused by the server's limits (408, 429, 503).
struct CommonResponses;

/// `(status, component name, description)`.
const COMMON_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "The request is malformed: JSON syntax, or a path or query parameter of the wrong type or format (`errors` names it)",
    ),
    (
        "401",
        "Unauthorized",
        "No credentials, or unknown or revoked ones",
    ),
    (
        "403",
        "Forbidden",
        "The credentials may not do this: a company API key on a route for the admin",
    ),
    (
        "404",
        "NotFound",
        "No such resource, or one that belongs to another company",
    ),
    (
        "408",
        "RequestTimeout",
        "The request (or its body) took longer to arrive than the server waits",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the configured limit",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not declared as JSON (`Content-Type: application/json`)",
    ),
    (
        "422",
        "ValidationFailed",
        "The body is JSON but not acceptable (a field missing or of the wrong type, a number out of range: `number_out_of_range`); `errors` lists every field at fault with its path",
    ),
    (
        "429",
        "TooManyRequests",
        "Over a rate limit or quota; retry after `Retry-After` seconds",
    ),
    (
        "503",
        "ServiceUnavailable",
        "The server is overloaded or its store is unreachable; retry after `Retry-After` seconds",
    ),
];

impl CommonResponses {
    fn applicable(operation: &Operation) -> Vec<&'static str> {
        let has_body = operation.request_body.is_some();
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let has_path_parameter = parameters
            .iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Path));
        // `security(())` (an empty requirement) marks a public route.
        let public = operation.security.as_ref().is_some_and(|requirements| {
            requirements.iter().any(|requirement| {
                serde_json::to_value(requirement)
                    .is_ok_and(|value| value.as_object().is_some_and(|map| map.is_empty()))
            })
        });
        let mut statuses = Vec::new();
        if has_body || !parameters.is_empty() {
            statuses.push("400");
        }
        if !public {
            statuses.extend(["401", "403"]);
        }
        if has_path_parameter {
            statuses.push("404");
        }
        if has_body {
            statuses.extend(["413", "415", "422"]);
        }
        statuses.extend(["408", "429", "503"]);
        statuses
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description) in COMMON_RESPONSES {
            components.responses.insert(
                (*name).to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description(*description)
                        .content(
                            crate::error::PROBLEM_JSON,
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ProblemDetails")))
                                .build(),
                        )
                        .build(),
                ),
            );
        }
        for operation in operations_mut(openapi) {
            for status in Self::applicable(operation) {
                let (_, name, _) = COMMON_RESPONSES
                    .iter()
                    .find(|(code, _, _)| *code == status)
                    .expect("every applicable status has a shared response");
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
            }
        }
    }
}

/// `/openapi.json` and `/docs` (no credentials needed).
/// Every operation of the document.
fn operations_mut(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

/// An optional header is absent, never `null`: a header has no null value
/// (utoipa describes every optional non-query parameter as nullable, and a
/// client would then send the text `null`).
struct HeadersAreNeverNull;

impl Modify for HeadersAreNeverNull {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{Schema, SchemaType, Type};
        for operation in operations_mut(openapi) {
            let headers = operation
                .parameters
                .iter_mut()
                .flatten()
                .filter(|p| matches!(p.parameter_in, ParameterIn::Header));
            for parameter in headers {
                if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
                    && let SchemaType::Array(types) = &object.schema_type
                {
                    let kept: Vec<Type> = types
                        .iter()
                        .filter(|t| **t != Type::Null)
                        .cloned()
                        .collect();
                    if let [only] = kept.as_slice() {
                        object.schema_type = SchemaType::Type(only.clone());
                    }
                }
            }
        }
    }
}

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
            "/companies/{company_id}/signing-secrets/{secret_id}",
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

    /// The statuses every server answers before a handler runs (malformed or
    /// oversized bodies, credentials, limits) are on every route they apply to.
    #[test]
    fn shared_answers_are_documented_on_every_route_they_apply_to() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let responses = &operation["responses"];
                let has = |status: &str| responses.get(status).is_some();
                let at = format!("{method} {path}");
                for status in ["408", "429", "503"] {
                    assert!(has(status), "{at} lacks {status}");
                }
                if operation.get("requestBody").is_some() {
                    for status in ["400", "413", "415", "422"] {
                        assert!(has(status), "{at} lacks {status}");
                    }
                }
                let public = operation["security"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|r| r.as_object().is_some_and(|m| m.is_empty()))
                });
                if !public {
                    assert!(has("401") && has("403"), "{at} lacks 401/403");
                }
                checked += 1;
            }
        }
        assert!(checked > 30, "only {checked} operations");
        assert!(doc["components"]["responses"]["PayloadTooLarge"].is_object());
    }
}
