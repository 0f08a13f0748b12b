//! Events `POST /payment` refuses, each naming the field at fault; nothing
//! of a refused event is stored.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

backend_test!(
    async fn each_wrong_field_is_named_in_errors(app) {
        let key = app.company_with_demo_rules("shop").await;
        let deep = {
            let mut value = json!("bottom");
            for _ in 0..40 {
                value = json!({ "x": value });
            }
            value
        };
        let cases: Vec<(&str, Value, &str)> = vec![
            ("unknown type", json!({"type": "gift"}), "type"),
            ("total not a number", json!({"total": "abc"}), "total"),
            ("negative total", json!({"total": "-1.00"}), "total"),
            ("lower-case currency", json!({"currency": "brl"}), "currency"),
            ("discount as an object", json!({"discount": {"value": 1}}), "discount"),
            ("event_id with spaces", json!({"event_id": "order 1"}), "event_id"),
            ("product not an object", json!({"product": "book"}), "product"),
            ("nesting too deep", json!({"product": deep}), "product"),
        ];
        for (what, change, path) in cases {
            let mut event = book_payment("shop");
            for (field, value) in change.as_object().unwrap() {
                event[field] = value.clone();
            }
            let problem = assert_problem(app.post_payment(&event, Some(&key)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(problem["type"], "urn:moneyflow:problem:validation-failed", "{what}");
            let paths = error_paths(&problem);
            assert_eq!(paths.len(), 1, "{what}: {problem:#}");
            assert!(paths[0].starts_with(path), "{what}: {problem:#}");
        }
        // The unknown type lists what is allowed.
        let mut event = book_payment("shop");
        event["type"] = json!("gift");
        let problem = assert_problem(app.post_payment(&event, Some(&key)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_at(&problem, "type")["allowed"], json!(["product", "digital_product", "subscription", "service"]));

        // Missing company_id (as the admin, who is not tied to a company).
        let mut event = book_payment("shop");
        event.as_object_mut().unwrap().remove("company_id");
        let problem = assert_problem(app.post_payment(&event, Some(&app.admin_token)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_at(&problem, "company_id")["code"], "missing");

        // Every problem at once.
        let problem = assert_problem(
            app.post_payment(&json!({"company_id": "shop", "type": "x", "total": true, "currency": 1}), Some(&key)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["type", "total", "currency"]);

        assert_eq!(app.count_rows("events", "shop").await, 0);
    }
);

backend_test!(
    async fn malformed_json_is_400_and_a_wrong_content_type_415(app) {
        let key = app.company_with_demo_rules("shop").await;
        let response = app
            .request(Method::POST, "/payment", Some(&key))
            .header("content-type", "application/json")
            .body(r#"{"company_id": "shop", "type": "product",}"#)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
        assert!(problem["detail"].as_str().unwrap().contains("malformed JSON"), "{problem}");

        let response = app
            .request(Method::POST, "/payment", Some(&key))
            .header("content-type", "text/plain")
            .body(book_payment("shop").to_string())
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
);

backend_test!(
    async fn a_company_without_a_rule_set_is_told_how_to_make_one(app) {
        let (_, key) = app.company_with_key("bare").await;
        let problem = assert_problem(app.post_payment(&book_payment("bare"), Some(&key)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:no-rule-set");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("bare") && detail.contains("POST /payment-rules"), "{detail}");
        assert_eq!(problem["retryable"], false);
        assert_eq!(app.count_rows("events", "bare").await, 0);
    }
);
