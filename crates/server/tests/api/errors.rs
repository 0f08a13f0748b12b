//! Errors are problem+json with the right status, and no input makes the
//! server answer 500.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

backend_test!(
    async fn malformed_json_is_400_with_line_and_column(app) {
        let response = app
            .request(Method::POST, "/payment-rules", Some(&app.admin_token))
            .header("content-type", "application/json")
            .body("{\n  \"company_id\": \"acme\",\n  \"rules\": [,]\n}")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("line 3, column 13"), "{detail}");
    }
);

backend_test!(
    async fn wrong_or_missing_content_type_is_415(app) {
        let response = app
            .request(Method::POST, "/payment-rules", Some(&app.admin_token))
            .header("content-type", "text/plain")
            .body(simple_rules("acme").to_string())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        assert!(problem["detail"].as_str().unwrap().contains("application/json"), "{problem}");

        let response = app
            .request(Method::POST, "/companies", Some(&app.admin_token))
            .body(json!({"name": "A"}).to_string())
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;

        // `application/json; charset=utf-8` is JSON.
        let response = app
            .request(Method::POST, "/payment-rules", Some(&app.admin_token))
            .header("content-type", "application/json; charset=utf-8")
            .body(simple_rules("acme").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
);

backend_test!(
    async fn body_over_one_mib_is_413(app) {
        // Valid JSON, just too big: a long string value.
        let body = format!(r#"{{"company_id": "acme", "rules": [], "pad": "{}"}}"#, "x".repeat(1024 * 1024));
        let response = app
            .request(Method::POST, "/payment-rules", Some(&app.admin_token))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
        assert!(problem["detail"].as_str().unwrap().contains("1048576"), "{problem}");
    }
);

backend_test!(
    async fn unknown_route_is_404_and_wrong_method_405_as_problems(app) {
        let problem = assert_problem(app.get_as("/no/such/route", None).await, StatusCode::NOT_FOUND).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:not-found");
        assert_problem(app.get_as("/payment-rules/acme/nope", Some(&app.admin_token)).await, StatusCode::NOT_FOUND).await;

        let response = app.request(Method::PUT, "/payment-rules", Some(&app.admin_token)).send().await.unwrap();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(allow.as_deref(), Some("POST"));
        let response = app.request(Method::DELETE, "/", None).send().await.unwrap();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
        let response = app.request(Method::POST, "/openapi.json", None).send().await.unwrap();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
);

backend_test!(
    async fn hostile_bodies_never_get_a_500(app) {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let deep_object = format!(r#"{{"company_id": "acme", "rules": [{}{}]}}"#, "{\"a\":".repeat(100), "}".repeat(100));
        let bodies = [
            "null".to_owned(),
            "[]".to_owned(),
            "\"text\"".to_owned(),
            "1e999999".to_owned(),
            "123456789012345678901234567890".to_owned(),
            "{\"company_id\": 5, \"rules\": {}}".to_owned(),
            "{\"company_id\": \"\", \"rules\": [null, 1, \"x\", [], {}]}".to_owned(),
            "{\"company_id\": \"a\\u0000b\", \"rules\": []}".to_owned(),
            "{\"company_id\": \"acme\", \"rules\": [{\"node_type\": \"task\", \"node_id\": \"é\", \"task_name\": \"\", \"parameters\": {\"x\": \"$context.\"}}]}".to_owned(),
            "\u{feff}{}".to_owned(),
            "{\"name\": \"\\ud800\"}".to_owned(),
            "{\"name\": \"a\\u0000b\", \"id\": \"nul\"}".to_owned(),
            "{\"label\": \"a\\u0000b\"}".to_owned(),
            "{\"company_id\": \"acme\", \"rules\": [{\"node_type\": \"task\", \"node_id\": \"t\", \"task_name\": \"payment.tasks.notify\", \"parameters\": {\"channel\": \"a\\u0000b\"}}]}".to_owned(),
            deep,
            deep_object,
            String::new(),
        ];
        app.create_company(&json!({"id": "acme", "name": "Acme"})).await;
        let routes = ["/payment-rules", "/payment-rules/validate", "/companies", "/companies/acme/api-keys"];
        for route in routes {
            for body in &bodies {
                let response = app
                    .request(Method::POST, route, Some(&app.admin_token))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(!status.is_server_error(), "{route} answered {status} to {}", &body[..body.len().min(80)]);
            }
        }
        for path in [
            "/payment-rules/acme/versions/99999999999999999999",
            "/payment-rules/acme/versions/-1",
            "/payment-rules/%FF%FE",
            "/companies/%00",
            "/companies/%00/api-keys",
            "/payment-rules/%00",
            "/payment-rules/%00/versions",
            "/payment-rules/%00/versions/1",
            "/payment-rules/a%2Fb/versions",
        ] {
            let response = app.get_as(path, Some(&app.admin_token)).await;
            assert!(!response.status().is_server_error(), "{path}: {}", response.status());
        }
        for path in ["/companies/%00/api-keys/key_x", "/companies/acme/api-keys/%00"] {
            let response = app.request(Method::DELETE, path, Some(&app.admin_token)).send().await.unwrap();
            assert!(!response.status().is_server_error(), "{path}: {}", response.status());
        }
        let response = app.request(Method::POST, "/companies/%00/api-keys", Some(&app.admin_token)).send().await.unwrap();
        assert!(!response.status().is_server_error(), "{}", response.status());
    }
);
