//! `POST /payment-rules/{company_id}/simulate` and `…/backtest`: answers,
//! validation, and that they leave no trace in the store.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, book_payment, error_paths, json_body, simple_rules};

/// Tables a simulation or backtest must not write to, with their row
/// counts for `company_id`.
async fn trace(app: &TestApp, company_id: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "events",
        "runs",
        "documents",
        "run_events",
        "notification_deliveries",
        "notification_endpoints",
    ] {
        counts.push((table, app.count_rows(table, company_id).await));
    }
    counts
}

async fn simulate(app: &TestApp, company_id: &str, body: &Value, token: &str) -> reqwest::Response {
    app.post_json_as(
        &format!("/payment-rules/{company_id}/simulate"),
        body,
        Some(token),
    )
    .await
}

async fn backtest(app: &TestApp, company_id: &str, body: &Value, token: &str) -> reqwest::Response {
    app.post_json_as(
        &format!("/payment-rules/{company_id}/backtest"),
        body,
        Some(token),
    )
    .await
}

fn node<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["node_id"] == id))
        .unwrap_or_else(|| panic!("no node {id} in {body:#}"))
}

backend_test!(
    async fn simulate_shows_the_path_and_reasons_and_stores_nothing(app) {
        let key = app.company_with_demo_rules("acme").await;
        // One real run, so there is something to count.
        app.pay_and_wait(&book_payment("acme"), &key).await;
        let before = trace(&app, "acme").await;
        assert!(before.iter().any(|(_, n)| *n > 0), "{before:?}");

        let response = simulate(&app, "acme", &json!({"event": book_payment("acme")}), &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        assert_eq!(body["status"], "succeeded", "{body:#}");
        assert_eq!(body["rule_version"], 1);
        let path: Vec<&str> = body["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap())
            .collect();
        assert!(!path.is_empty());
        // Every node of the demo is reported; conditions explain themselves.
        let conditions: Vec<&Value> = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["node_type"] == "condition" && n["state"] != "skipped")
            .collect();
        assert!(!conditions.is_empty(), "{body:#}");
        for condition in conditions {
            let expectation = &condition["output"]["expectations"][0];
            assert!(expectation.get("actual").is_some(), "{condition:#}");
            assert!(expectation["held"].is_boolean(), "{condition:#}");
        }
        let tasks: Vec<&Value> = body["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["node_type"] == "task" && n["state"] == "success")
            .collect();
        assert!(!tasks.is_empty(), "{body:#}");
        for task in tasks {
            assert!(task["parameters"].is_object(), "{task:#}");
            assert!(path.contains(&task["node_id"].as_str().unwrap()));
        }
        assert!(!body["documents"].as_array().unwrap().is_empty());

        // A draft: a condition that fails says why, and the branch is skipped.
        let draft = json!({"event": book_payment("acme"), "rules": [
            {"node_type": "condition", "node_id": "big", "expect": [
                {"field": "$context.event.total", "operator": "gt", "value": [500]},
                {"field": "$context.event.product.type", "operator": "gt", "value": [3]}
            ], "match": "any"},
            {"node_type": "task", "node_id": "invoice", "task_name": "payment.tasks.generate_invoice",
             "depends_on": [{"node_id": "big", "state": "success"}], "parameters": null},
            {"node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
             "depends_on": [{"node_id": "big", "state": "failure"}],
             "parameters": {"url": "https://example.com/x", "body": {"total": "$context.event.total"}}}
        ]});
        let response = simulate(&app, "acme", &draft, &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        assert_eq!(body["rule_version"], Value::Null);
        assert_eq!(body["path"], json!(["big", "call"]));
        let big = node(&body, "big");
        assert_eq!(big["state"], "failure");
        let expectations = &big["output"]["expectations"];
        assert_eq!(expectations[0]["actual"], "120.00");
        assert_eq!(expectations[0]["held"], false);
        assert_eq!(expectations[1]["actual"], "book");
        assert!(expectations[1]["reason"].is_string(), "{big:#}");
        assert_eq!(node(&body, "invoice")["state"], "skipped");
        let call = node(&body, "call");
        assert_eq!(call["state"], "success");
        assert_eq!(call["output"], Value::Null);
        assert_eq!(call["note"], "not executed in a simulation");
        assert_eq!(call["parameters"]["body"]["total"], "120.00");

        assert_eq!(trace(&app, "acme").await, before, "a simulation stores nothing");
    }
);

backend_test!(
    async fn simulate_validates_the_draft_and_the_event(app) {
        let key = app.company_with_demo_rules("acme").await;
        let before = trace(&app, "acme").await;
        let body = json!({
            "event": {"company_id": "acme", "type": "product"},
            "rules": [
                {"node_type": "condition", "node_id": "c", "expect": [
                    {"field": "$context.event.total", "operator": "bigger", "value": [1]}]},
                {"node_type": "task", "node_id": "t", "task_name": "payment.tasks.generate_invoice",
                 "depends_on": [{"node_id": "conditional-1", "state": "success"}]}
            ]
        });
        let problem = assert_problem(
            simulate(&app, "acme", &body, &key).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let paths = error_paths(&problem);
        for expected in [
            "event.total",
            "rules[0].expect[0].operator",
            "rules[1].depends_on[0].node_id",
        ] {
            assert!(paths.iter().any(|p| p == expected), "{expected} in {paths:?}");
        }
        let problem = assert_problem(
            simulate(&app, "acme", &json!({"rules": []}), &key).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error_paths(&problem).contains(&"event".to_owned()));
        let mut other = book_payment("acme");
        other["company_id"] = json!("globex");
        let problem = assert_problem(
            simulate(&app, "acme", &json!({"event": other}), &key).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_paths(&problem), ["event.company_id"]);

        // Another company's rules look missing to this key.
        let (_, other_key) = app.company_with_key("globex").await;
        assert_problem(
            simulate(&app, "acme", &json!({"event": book_payment("acme")}), &other_key).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        // No rules and no draft: nothing to simulate.
        assert_problem(
            simulate(&app, "globex", &json!({"event": book_payment("globex")}), &other_key).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(trace(&app, "acme").await, before);
    }
);

fn service_payment(company_id: &str, n: u32) -> Value {
    json!({"company_id": company_id, "event_id": format!("svc-{n}"), "type": "service", "total": "50.00"})
}

fn product_payment(company_id: &str, n: u32) -> Value {
    let mut event = book_payment(company_id);
    event["event_id"] = json!(format!("prd-{n}"));
    event
}

backend_test!(
    async fn backtest_reports_a_removed_task_and_a_changed_condition(app) {
        let (_, key) = app.company_with_key("acme").await;
        assert_eq!(app.save_rules(&simple_rules("acme")).await.status(), StatusCode::CREATED);
        for n in 0..3 {
            app.pay_and_wait(&product_payment("acme", n), &key).await;
        }
        for n in 0..2 {
            app.pay_and_wait(&service_payment("acme", n), &key).await;
        }
        let before = trace(&app, "acme").await;
        let rules = simple_rules("acme")["rules"].clone();

        // Without the invoice task: the product runs no longer make invoices.
        let removed = json!([rules[0]]);
        let response = backtest(&app, "acme", &json!({"rules": removed}), &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        let report = json_body(response).await;
        assert_eq!(report["events_replayed"], 5, "{report:#}");
        assert_eq!(report["runs_changed"], 3, "{report:#}");
        assert_eq!(report["outcome_changes"], json!({}));
        assert_eq!(report["task_changes"].as_array().unwrap().len(), 1, "{report:#}");
        let change = &report["task_changes"][0];
        assert_eq!(change["node_id"], "invoice");
        assert_eq!(change["task_name"], "payment.tasks.generate_invoice");
        assert_eq!(change["no_longer_runs"], 3);
        assert_eq!(change["now_runs"], 0);
        let mut examples: Vec<&str> = change["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        examples.sort_unstable();
        assert_eq!(examples, ["prd-0", "prd-1", "prd-2"]);
        let example = &report["examples"][0];
        assert_eq!(example["event_id"], "prd-2", "newest first");
        assert_eq!(example["before"]["status"], "succeeded");
        assert_eq!(example["before"]["nodes"]["invoice"], "success");
        assert_eq!(example["after"]["nodes"]["is-product"], "success");
        assert!(example["after"]["nodes"].get("invoice").is_none());

        // The condition now picks services: invoices move from products to services.
        let mut changed = rules.clone();
        changed[0]["expect"][0]["value"] = json!(["service"]);
        let report = json_body(backtest(&app, "acme", &json!({"rules": changed}), &key).await).await;
        assert_eq!(report["events_replayed"], 5);
        assert_eq!(report["runs_changed"], 5, "{report:#}");
        let change = &report["task_changes"][0];
        assert_eq!(change["node_id"], "invoice");
        assert_eq!(change["now_runs"], 2);
        assert_eq!(change["no_longer_runs"], 3);
        assert_eq!(report["examples"].as_array().unwrap().len(), 5);
        let service = report["examples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == "svc-1")
            .unwrap();
        assert_eq!(service["before"]["nodes"]["is-product"], "failure");
        assert_eq!(service["before"]["nodes"]["invoice"], "skipped");
        assert_eq!(service["after"]["nodes"]["is-product"], "success");
        assert_eq!(service["after"]["nodes"]["invoice"], "success");

        // A task that fails makes every run fail; a limit replays fewer events.
        let mut failing = rules.clone();
        failing.as_array_mut().unwrap().push(json!({
            "node_type": "task", "node_id": "ship", "task_name": "payment.tasks.generate_shipment",
            "parameters": {"product_id": "$context.event.no_such_field"}
        }));
        let report = json_body(
            backtest(&app, "acme", &json!({"rules": failing, "limit": 4}), &key).await,
        )
        .await;
        assert_eq!(report["events_replayed"], 4);
        assert_eq!(report["outcome_changes"], json!({"succeeded→failed": 4}), "{report:#}");
        assert_eq!(report["task_changes"][0]["node_id"], "ship");
        assert_eq!(report["task_changes"][0]["now_runs"], 4);

        assert_eq!(trace(&app, "acme").await, before, "a backtest stores nothing");
    }
);

backend_test!(
    async fn backtest_validates_its_body(app) {
        let (_, key) = app.company_with_key("acme").await;
        for (body, path) in [
            (json!({"rules": [], "limit": 0}), "limit"),
            (json!({"rules": [], "limit": 10001}), "limit"),
            (json!({"limit": 5}), "rules"),
            (json!({"rules": [{"node_type": "nope", "node_id": "x"}]}), "rules[0].node_type"),
        ] {
            let problem = assert_problem(
                backtest(&app, "acme", &body, &key).await,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
            assert!(error_paths(&problem).contains(&path.to_owned()), "{path}: {problem:#}");
        }
        // An empty history replays nothing.
        let report = json_body(backtest(&app, "acme", &json!({"rules": []}), &key).await).await;
        assert_eq!(report["events_replayed"], 0);
        let (_, other_key) = app.company_with_key("globex").await;
        assert_problem(
            backtest(&app, "acme", &json!({"rules": []}), &other_key).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
);
