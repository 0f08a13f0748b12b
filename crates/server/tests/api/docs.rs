//! What needs no credentials: `GET /`, `/openapi.json`, `/docs`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

backend_test!(
    async fn health_check_needs_no_credentials(app) {
        let response = app.health().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(json_body(response).await, json!({"status": "ok"}));
    }
);

backend_test!(
    async fn openapi_document_is_3_1_with_the_paths(app) {
        let response = app.get_as("/openapi.json", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let doc = json_body(response).await;
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
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
);

backend_test!(
    async fn docs_serve_swagger_ui_html_without_credentials(app) {
        let response = app.get_as("/docs", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let html = response.text().await.unwrap();
        assert!(html.to_lowercase().contains("swagger"), "{html}");

        assert_problem(app.get_as("/docs/no-such-asset.js", None).await, StatusCode::NOT_FOUND).await;
    }
);
