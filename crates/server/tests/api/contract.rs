//! Cases the API contract test (`scripts/schemathesis.sh`) found, kept as
//! regression tests: what the OpenAPI document allows is accepted, what it
//! forbids is refused with a problem naming the field.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

backend_test! {
    async fn a_whole_number_written_as_a_float_is_a_whole_number(app) {
        app.company_with_key("acme").await;
        let response = app
            .request(reqwest::Method::PUT, "/companies/acme/limits", Some(&app.admin_token))
            .json(&json!({"payments_per_second": 100.0, "payments_burst": 52647.0}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        assert_eq!(body["payments_burst"], 52647, "{body}");
        let response = app
            .request(reqwest::Method::PUT, "/companies/acme/limits", Some(&app.admin_token))
            .json(&json!({"payments_per_second": 1.5}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["path"], "payments_per_second", "{problem}");
    }
}

backend_test! {
    async fn a_null_body_is_no_body_where_the_body_is_optional(app) {
        app.company_with_key("acme").await;
        let response = app
            .request(reqwest::Method::POST, "/companies/acme/api-keys", Some(&app.admin_token))
            .json(&json!(null))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let response = app
            .request(reqwest::Method::POST, "/companies/acme/signing-secrets", Some(&app.admin_token))
            .json(&json!(null))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

backend_test! {
    async fn a_bad_dead_letter_limit_is_a_problem_not_plain_text(app) {
        let response = app.get_as("/admin/dead-letters?limit=-1", Some(&app.admin_token)).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["path"], "limit", "{problem}");
    }
}

backend_test! {
    async fn an_invalid_last_event_id_is_refused_even_beside_a_valid_header(app) {
        let key = app.company_with_demo_rules("acme").await;
        let response = app
            .request(
                reqwest::Method::GET,
                "/companies/acme/events?last_event_id=9223372036854775808",
                Some(&key),
            )
            .header("Last-Event-ID", "0")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["path"], "last_event_id", "{problem}");
    }
}

backend_test! {
    async fn a_signed_minus_zero_amount_is_refused(app) {
        let key = app.company_with_demo_rules("acme").await;
        let mut event = book_payment("acme");
        event["discount"] = json!("-0");
        let response = app.post_payment(&event, Some(&key)).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["path"], "discount", "{problem}");
    }
}

backend_test! {
    async fn a_malformed_webhook_timestamp_is_refused_even_beside_a_bearer_token(app) {
        let key = app.company_with_demo_rules("acme").await;
        let response = app
            .request(reqwest::Method::POST, "/payment", Some(&key))
            .header("webhook-timestamp", "\\Q")
            .json(&book_payment("acme"))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(problem["errors"][0]["path"], "webhook-timestamp", "{problem}");
        // Well-formed, it is not counted: the Bearer token authenticates.
        let response = app
            .request(reqwest::Method::POST, "/payment", Some(&key))
            .header("webhook-timestamp", "0")
            .json(&book_payment("acme"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
}
