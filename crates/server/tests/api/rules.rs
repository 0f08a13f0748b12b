//! `/payment-rules…`: saving, reading, versions, validation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

backend_test!(
    async fn original_readme_rules_are_rejected_naming_conditional_1(app) {
        let response = app.save_rules(&original_readme_rules()).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        for path in ["rules[1].depends_on[0].node_id", "rules[2].depends_on[0].node_id"] {
            let error = error_at(&problem, path);
            let hint = error["hint"].as_str().unwrap_or_default();
            assert!(hint.contains("condition-1"), "hint for {path}: {error}");
        }
        // Nothing was saved.
        let response = app.get_rules("b5aa9687-d61f-467c-973e-f55d446981dc").await;
        assert_problem(response, StatusCode::NOT_FOUND).await;
    }
);

backend_test!(
    async fn mended_readme_rules_are_saved_and_read_back_normalised(app) {
        let company_id = "b5aa9687-d61f-467c-973e-f55d446981dc";
        let response = app.save_rules(&mended_readme_rules()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let saved = json_body(response).await;
        assert_eq!(saved["company_id"], company_id);
        assert_eq!(saved["version"], 1);
        assert!(saved["id"].is_string());
        assert!(saved["created_at"].is_string() && saved["updated_at"].is_string());

        let response = app.get_rules(company_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        let read = json_body(response).await;
        assert_eq!(read, saved);
        let rules = read["rules"].as_array().expect("rules is the node list");
        assert_eq!(rules.len(), 5);
        // Nodes 0 and 4 had no `depends_on`: now an explicit empty list.
        for index in [0, 4] {
            assert_eq!(rules[index]["depends_on"], json!([]), "node {index}");
        }
        assert_eq!(rules[1]["depends_on"][0]["node_id"], "condition-1");
        assert_eq!(rules[1]["parameters"], Value::Null);

        // The admin saving for an unknown company created it.
        let response = app.get_as(&format!("/companies/{company_id}"), Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn the_trailing_slash_spelling_saves_too(app) {
        let response = app.post_json_as("/payment-rules/", &simple_rules("acme"), Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(json_body(response).await["version"], 1);
    }
);

backend_test!(
    async fn unknown_node_type_lists_allowed_values(app) {
        let mut body = simple_rules("acme");
        body["rules"][0]["node_type"] = json!("decision");
        let problem = assert_problem(app.save_rules(&body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = error_at(&problem, "rules[0].node_type");
        let allowed: Vec<&str> = error["allowed"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(allowed.contains(&"condition") && allowed.contains(&"task"), "{error}");
    }
);

backend_test!(
    async fn unknown_operator_lists_allowed_operators(app) {
        let mut body = simple_rules("acme");
        body["rules"][0]["expect"][0]["operator"] = json!("equals");
        let problem = assert_problem(app.save_rules(&body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = error_at(&problem, "rules[0].expect[0].operator");
        let allowed: Vec<&str> = error["allowed"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        for operator in ["eq", "neq", "in", "nin", "isnull"] {
            assert!(allowed.contains(&operator), "{operator} missing in {error}");
        }
    }
);

backend_test!(
    async fn empty_object_names_company_id_and_rules(app) {
        let problem = assert_problem(app.save_rules(&json!({})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        let paths = error_paths(&problem);
        assert!(paths.contains(&"company_id".to_owned()), "{problem}");
        assert!(paths.contains(&"rules".to_owned()), "{problem}");
    }
);

backend_test!(
    async fn saving_twice_makes_version_2_with_the_same_id_and_created_at(app) {
        let first = json_body(app.save_rules(&simple_rules("acme")).await).await;
        let mut changed = simple_rules("acme");
        changed["rules"][1]["task_name"] = json!("payment.tasks.generate_royalty");
        changed["rules"][1]["parameters"] = json!({"product_id": "$context.event.product.id"});
        let response = app.save_rules(&changed).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let second = json_body(response).await;
        assert_eq!(second["version"], 2);
        assert_eq!(second["id"], first["id"]);
        assert_eq!(second["created_at"], first["created_at"]);

        let current = json_body(app.get_rules("acme").await).await;
        assert_eq!(current["version"], 2);
        assert_eq!(current["rules"][1]["task_name"], "payment.tasks.generate_royalty");

        let versions = json_body(app.list_versions("acme").await).await;
        let items = versions["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["version"], 2, "newest first");
        assert_eq!(items[1]["version"], 1);
        assert_eq!(items[0]["node_count"], 2);
        assert!(items[0]["created_at"].is_string());

        let response = app.get_version("acme", "1").await;
        assert_eq!(response.status(), StatusCode::OK);
        let v1 = json_body(response).await;
        assert_eq!(v1["version"], 1);
        assert_eq!(v1["rules"], first["rules"]);
        assert_eq!(v1["id"], first["id"]);
    }
);

backend_test!(
    async fn missing_version_is_404_and_a_non_integer_version_is_400(app) {
        app.save_rules(&simple_rules("acme")).await;
        assert_problem(app.get_version("acme", "7").await, StatusCode::NOT_FOUND).await;
        let problem = assert_problem(app.get_version("acme", "latest").await, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_paths(&problem), ["version"]);
        assert!(problem["detail"].as_str().unwrap().contains("version"), "{problem}");
        assert_problem(app.list_versions("nobody").await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_rules("nobody").await, StatusCode::NOT_FOUND).await;
    }
);

backend_test!(
    async fn validate_endpoint_reports_and_saves_nothing(app) {
        let response = app.validate_rules(&original_readme_rules()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let report = json_body(response).await;
        assert_eq!(report["valid"], false);
        let paths: Vec<&str> =
            report["problems"].as_array().unwrap().iter().filter_map(|p| p["path"].as_str()).collect();
        assert!(paths.contains(&"rules[1].depends_on[0].node_id"), "{report}");

        let report = json_body(app.validate_rules(&mended_readme_rules()).await).await;
        assert_eq!(report, json!({"valid": true, "problems": []}));

        // Neither call saved anything (or created the company).
        assert_problem(app.get_rules("b5aa9687-d61f-467c-973e-f55d446981dc").await, StatusCode::NOT_FOUND).await;
        let companies = json_body(app.get_as("/companies", Some(&app.admin_token)).await).await;
        assert_eq!(companies["items"], json!([]));
    }
);

backend_test!(
    async fn a_company_key_saves_and_reads_its_own_rules(app) {
        let (_, key) = app.company_with_key("acme").await;
        let response = app.save_rules_as(&simple_rules("acme"), Some(&key)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let response = app.get_rules_as("acme", Some(&key)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = app.get_as("/payment-rules/acme/versions", Some(&key)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = app.get_as("/payment-rules/acme/versions/1", Some(&key)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn an_http_request_may_not_set_hop_or_forwarding_headers(app) {
        app.company_with_key("acme").await;
        for header in ["Host", "X-Forwarded-For", "forwarded", "Connection", "Transfer-Encoding", "Content-Length", "Proxy-Authorization"] {
            let rules = json!({"company_id": "acme", "rules": [{
                "node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
                "parameters": {"url": "https://shop.example/hook", "headers": {"X-Signature": "s", header: "v"}}
            }]});
            let problem = assert_problem(app.save_rules(&rules).await, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(error_paths(&problem), ["rules[0].parameters.headers"], "{header}: {problem:#}");
            assert!(problem.to_string().contains(&format!("`{header}`")), "{header}: {problem:#}");
        }
        let fine = json!({"company_id": "acme", "rules": [{
            "node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
            "parameters": {"url": "https://shop.example/hook", "headers": {"X-Signature": "s"}}
        }]});
        assert_eq!(app.save_rules(&fine).await.status(), StatusCode::CREATED);
    }
);
