//! `GET /tasks`: the catalogue.

use reqwest::StatusCode;

use crate::helpers::*;

backend_test!(
    async fn tasks_list_generate_invoice_with_its_parameters_schema(app) {
        let response = app.list_tasks().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body = json_body(response).await;
        let items = body["items"].as_array().expect("items");
        let invoice = items
            .iter()
            .find(|task| task["name"] == "payment.tasks.generate_invoice")
            .expect("generate_invoice listed");
        assert!(invoice["parameters_schema"].is_object(), "{invoice}");
        for task in items {
            assert!(task["name"].is_string() && task["parameters_schema"].is_object(), "{task}");
        }
    }
);
