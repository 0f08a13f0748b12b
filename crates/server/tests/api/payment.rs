//! `POST /payment` end to end: accepted events run the demo rule (the
//! original README's flowchart) to the node states it draws, and
//! idempotency gives one run per key, however the requests race.

use std::collections::{BTreeMap, HashSet};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Each node's state, by node id.
fn states(run: &Value) -> BTreeMap<String, String> {
    run["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| {
            (
                node["node_id"].as_str().unwrap().to_owned(),
                node["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(node, state)| ((*node).to_owned(), (*state).to_owned()))
        .collect()
}

/// The document kinds of a run, sorted.
fn document_kinds(run: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = run["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

backend_test!(
    async fn a_payment_is_accepted_and_its_run_succeeds(app) {
        let key = app.company_with_demo_rules("shop").await;
        let response = app.post_payment(&book_payment("shop"), Some(&key)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(response.headers().get("idempotent-replayed").is_none());
        let body = json_body(response).await;
        let run_id = body["run_id"].as_str().unwrap();
        let event_id = body["event_id"].as_str().unwrap();
        assert_eq!(body["status"], "queued");
        assert!(run_id.starts_with("run_") && run_id.len() == 36, "{run_id}");
        assert!(event_id.starts_with("evt_") && event_id.len() == 36, "{event_id}");
        assert_eq!(location, format!("/runs/{run_id}"));

        let run = app.wait_for_run(run_id, &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(run["run_id"], run_id);
        assert_eq!(run["event_id"], event_id);
        assert_eq!(run["company_id"], "shop");
        assert_eq!(run["event_type"], "product");
        assert_eq!(run["rule_version"], 1);
        assert!(run["created_at"].is_string() && run["started_at"].is_string() && run["finished_at"].is_string(), "{run:#}");
    }
);

backend_test!(
    async fn a_payment_right_after_a_save_is_pinned_to_the_new_version(app) {
        let key = app.company_with_demo_rules("shop").await;
        let event = |i: u32| json!({"company_id": "shop", "type": "product", "total": "10.00", "event_id": format!("e-{i}"),
                                    "product": {"id": "p-1", "type": "book"}});
        // The first payment reads the current version (and keeps it briefly).
        let first = json_body(app.post_payment(&event(1), Some(&key)).await).await;
        assert_eq!(app.wait_for_run(first["run_id"].as_str().unwrap(), &key).await["rule_version"], 1);
        for version in 2..=3 {
            assert_eq!(app.save_rules(&demo_rules("shop")).await.status(), StatusCode::CREATED);
            let next = json_body(app.post_payment(&event(version), Some(&key)).await).await;
            let run = app.wait_for_run(next["run_id"].as_str().unwrap(), &key).await;
            assert_eq!(run["rule_version"], version, "{run:#}");
        }
    }
);

backend_test!(
    async fn the_demo_rule_runs_each_event_type_as_the_flowchart_draws(app) {
        let key = app.company_with_demo_rules("shop").await;
        let event = |kind: &str, product_type: &str| {
            json!({
                "company_id": "shop", "type": kind, "total": "120.00", "currency": "BRL",
                "product": {"id": "p-1", "type": product_type}, "agent_id": "agent-7"
            })
        };

        // A book: shipment, a packing slip copy for royalties, their
        // notification, and the agent's commission. Every node succeeds.
        let run = app.pay_and_wait(&event("product", "book"), &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(
            states(&run),
            expected(&[
                ("is-physical-product", "success"),
                ("generate-shipment", "success"),
                ("is-book", "success"),
                ("duplicate-shipment-royalties", "success"),
                ("notify-royalties", "success"),
                ("generate-commission", "success"),
            ]),
            "{run:#}"
        );
        assert_eq!(document_kinds(&run), ["commission", "notification", "packing_slip_copy", "shipment"]);
        // Nodes come in the rule's order, tasks with their name and one attempt.
        let nodes = run["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["node_id"], "is-physical-product");
        assert_eq!(nodes[0]["node_type"], "condition");
        assert_eq!(nodes[1]["task_name"], "payment.tasks.generate_shipment");
        assert_eq!(nodes[1]["attempts"], 1);
        assert_eq!(nodes[1]["parameters"]["product_id"], "p-1", "{:#}", nodes[1]);
        let commission = nodes.iter().find(|n| n["node_id"] == "generate-commission").unwrap();
        assert_eq!(commission["output"]["amount"], "6.00", "5% of 120.00: {commission:#}");
        let shipment_id = nodes[1]["output"]["shipment_id"].clone();
        let copy = run["documents"].as_array().unwrap().iter().find(|d| d["kind"] == "packing_slip_copy").unwrap();
        assert_eq!(copy["body"]["shipment_id"], shipment_id, "the copy is of this run's shipment");
        assert_eq!(copy["body"]["department"], "royalties");
        assert_eq!(copy["node_id"], "duplicate-shipment-royalties");
        assert!(copy["key"].as_str().unwrap().starts_with(run["run_id"].as_str().unwrap()));

        // Another physical product: no royalties branch, still a shipment and a commission.
        let run = app.pay_and_wait(&event("product", "toy"), &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_eq!(
            states(&run),
            expected(&[
                ("is-physical-product", "success"),
                ("generate-shipment", "success"),
                ("is-book", "failure"),
                ("duplicate-shipment-royalties", "skipped"),
                ("notify-royalties", "skipped"),
                ("generate-commission", "success"),
            ]),
            "{run:#}"
        );
        assert_eq!(document_kinds(&run), ["commission", "shipment"]);

        // Not a physical product: the condition fails (ordinary branching,
        // so the run succeeds) and everything below it is skipped.
        for kind in ["digital_product", "subscription", "service"] {
            let run = app.pay_and_wait(&event(kind, "book"), &key).await;
            assert_eq!(run["status"], "succeeded", "{kind}: {run:#}");
            assert_eq!(
                states(&run),
                expected(&[
                    ("is-physical-product", "failure"),
                    ("generate-shipment", "skipped"),
                    ("is-book", "skipped"),
                    ("duplicate-shipment-royalties", "skipped"),
                    ("notify-royalties", "skipped"),
                    ("generate-commission", "skipped"),
                ]),
                "{kind}: {run:#}"
            );
            assert!(document_kinds(&run).is_empty(), "{kind}: {run:#}");
            assert_eq!(run["event_type"], kind);
        }
    }
);

backend_test!(
    async fn a_task_that_cannot_run_fails_the_run_visibly(app) {
        let key = app.company_with_demo_rules("shop").await;
        // No `agent_id`: the commission's required parameter resolves to null.
        let mut event = book_payment("shop");
        event.as_object_mut().unwrap().remove("agent_id");
        let run = app.pay_and_wait(&event, &key).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        let commission = run["nodes"].as_array().unwrap().iter().find(|n| n["node_id"] == "generate-commission").unwrap();
        assert_eq!(commission["state"], "failure", "{commission:#}");
        assert!(commission["error"]["message"].as_str().unwrap().contains("agent_id"), "{commission:#}");
        assert_eq!(states(&run)["notify-royalties"], "success", "the other branch is unaffected");
    }
);

backend_test!(
    async fn a_replay_returns_the_original_answer_and_a_changed_body_is_refused(app) {
        let key = app.company_with_demo_rules("shop").await;
        let mut event = book_payment("shop");
        event["event_id"] = json!("order-1001");

        let first = app.post_payment(&event, Some(&key)).await;
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        let first = json_body(first).await;
        assert_eq!(first["event_id"], "order-1001");

        let again = app.post_payment(&event, Some(&key)).await;
        assert_eq!(again.status(), StatusCode::ACCEPTED);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let location = again.headers()["location"].to_str().unwrap().to_owned();
        let again = json_body(again).await;
        assert_eq!(again, first);
        assert_eq!(location, format!("/runs/{}", first["run_id"].as_str().unwrap()));

        // The same event id with another body: the key is refused, by name.
        event["total"] = json!("99.00");
        let problem = assert_problem(app.post_payment(&event, Some(&key)).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:idempotency-key-reused");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("order-1001") && detail.contains("different body"), "{detail}");
        assert_eq!(error_paths(&problem), ["event_id"]);

        assert_eq!(app.count_rows("runs", "shop").await, 1);
        assert_eq!(app.count_rows("events", "shop").await, 1);
        let run = app.wait_for_run(first["run_id"].as_str().unwrap(), &key).await;
        assert_eq!(run["status"], "succeeded");
    }
);

backend_test!(
    async fn the_idempotency_key_header_wins_over_the_event_id(app) {
        let key = app.company_with_demo_rules("shop").await;
        let send = |body: Value, idempotency_key: &'static str| {
            let request = app
                .request(reqwest::Method::POST, "/payment", Some(&key))
                .header("idempotency-key", idempotency_key)
                .json(&body);
            async move { request.send().await.expect("request") }
        };
        let mut event = book_payment("shop");
        event["event_id"] = json!("evt-a");
        let first = json_body(send(event.clone(), "key-1").await).await;
        // Another event id under the same key and the same body is impossible
        // (the body differs), so the key is reused.
        let mut other = event.clone();
        other["event_id"] = json!("evt-b");
        let problem = assert_problem(send(other.clone(), "key-1").await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["type"], "urn:moneyflow:problem:idempotency-key-reused");
        assert!(problem["detail"].as_str().unwrap().contains("key-1"), "{problem}");
        assert_eq!(error_paths(&problem), ["Idempotency-Key"]);
        // Under a new key it is a new event.
        let second = send(other, "key-2").await;
        assert_eq!(second.status(), StatusCode::ACCEPTED);
        let second = json_body(second).await;
        assert_ne!(second["run_id"], first["run_id"]);
        assert_eq!(second["event_id"], "evt-b");

        for bad in ["", "has space", &"k".repeat(256)] {
            let response = app
                .request(reqwest::Method::POST, "/payment", Some(&key))
                .header("idempotency-key", bad)
                .json(&event)
                .send()
                .await
                .unwrap();
            let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
            assert_eq!(error_paths(&problem), ["Idempotency-Key"], "{bad:?}: {problem}");
        }
    }
);

backend_test!(
    async fn twenty_racing_requests_with_one_key_make_one_run(app) {
        let key = app.company_with_demo_rules("shop").await;
        let mut event = book_payment("shop");
        event["event_id"] = json!("race-1");
        // All sent before any answer is read, so they race in the server.
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let request = app.request(reqwest::Method::POST, "/payment", Some(&key)).json(&event);
            requests.spawn(async move {
                let response = request.send().await.expect("request");
                let status = response.status();
                (status, json_body(response).await)
            });
        }
        let answers = requests.join_all().await;
        let mut run_ids = HashSet::new();
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
            assert_eq!(body["event_id"], "race-1");
            run_ids.insert(body["run_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(run_ids.len(), 1, "{run_ids:?}");
        assert_eq!(app.count_rows("runs", "shop").await, 1);
        assert_eq!(app.count_rows("events", "shop").await, 1);
        let run_id = run_ids.into_iter().next().unwrap();
        let run = app.wait_for_run(&run_id, &key).await;
        assert_eq!(run["status"], "succeeded");
        assert_eq!(document_kinds(&run).len(), 4, "one set of documents: {run:#}");
    }
);
