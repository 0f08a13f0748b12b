//! The node and run size limits: a rule whose nodes copy what earlier nodes
//! produced cannot grow a run (and the server's memory) without bound; past
//! a limit the node fails with an error naming it, in a run as in a
//! simulation, and literal data already past it is refused on save.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_problem, json_body, spawn_app_with_config};

/// [`backend_test!`] on a server started with these node and run limits.
macro_rules! limits_test {
    ($name:ident, node = $node:expr, run = $run:expr, |$app:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn run($app: TestApp) $body

            async fn start(backend: Backend) -> TestApp {
                spawn_app_with_config(backend, |config| {
                    config.node_limit_bytes = $node;
                    config.run_limit_bytes = $run;
                })
                .await
            }

            #[tokio::test]
            async fn sqlite() {
                run(start(Backend::Sqlite).await).await
            }

            #[tokio::test]
            async fn postgres() {
                run(start(Backend::Postgres).await).await
            }
        }
    };
}

const DEFAULT_NODE_LIMIT: u64 = 256 * 1024;

/// Conditions `c0…c7`, each with 20 expectations reading the whole output
/// of the one before (`c0` reads the event): before previews, each output
/// copied the previous one 20 times, 20⁸ times the event in all.
fn condition_chain() -> Vec<Value> {
    (0..8)
        .map(|level| {
            let field = if level == 0 {
                "$context.event".to_owned()
            } else {
                format!("$context.nodes.c{}.output", level - 1)
            };
            let expect: Vec<Value> = (0..20)
                .map(|_| json!({"field": field, "operator": "isnotnull"}))
                .collect();
            let depends_on = if level == 0 {
                json!([])
            } else {
                json!([{"node_id": format!("c{}", level - 1), "state": "success"}])
            };
            json!({"node_type": "condition", "node_id": format!("c{level}"),
                   "depends_on": depends_on, "expect": expect})
        })
        .collect()
}

/// Tasks after the conditions: `t0` copies the last condition's output,
/// `t1` the event twelve times (each path resolves to a copy: about 300 kB
/// for a 25 kB event, past the default node limit).
fn task_chain() -> Vec<Value> {
    let mut copies = serde_json::Map::new();
    copies.insert("channel".into(), json!("email"));
    for i in 0..12 {
        copies.insert(format!("copy_{i}"), json!("$context.event"));
    }
    vec![
        json!({"node_type": "task", "node_id": "t0", "task_name": "payment.tasks.notify",
               "depends_on": [{"node_id": "c7", "state": "success"}],
               "parameters": {"channel": "email", "copy": "$context.nodes.c7.output"}}),
        json!({"node_type": "task", "node_id": "t1", "task_name": "payment.tasks.notify",
               "depends_on": [{"node_id": "t0", "state": "success"}],
               "parameters": copies}),
        json!({"node_type": "task", "node_id": "t2", "task_name": "payment.tasks.notify",
               "depends_on": [{"node_id": "t1", "state": "success"}],
               "parameters": {"channel": "email"}}),
    ]
}

fn multiplicative_rules(company_id: &str) -> Value {
    let mut rules = condition_chain();
    rules.extend(task_chain());
    json!({"company_id": company_id, "rules": rules})
}

fn payment(company_id: &str) -> Value {
    json!({"company_id": company_id, "type": "product", "total": "10.00", "currency": "BRL",
           "product": {"id": "p-1", "type": "book", "description": "x".repeat(25_000)}})
}

/// A node of a run's or a simulation's `nodes` list.
fn node<'a>(nodes: &'a Value, id: &str) -> &'a Value {
    nodes
        .as_array()
        .and_then(|list| list.iter().find(|n| n["node_id"] == id))
        .unwrap_or_else(|| panic!("no node {id} in {nodes:#}"))
}

fn size(value: &Value) -> u64 {
    serde_json::to_string(value).unwrap().len() as u64
}

/// `t0` ran, `t1` failed for the node limit on its parameters (which are
/// not kept) and `t2`, after it, was skipped.
fn assert_task_chain_stopped_at_the_node_limit(nodes: &Value, limit: u64) {
    assert_eq!(
        node(nodes, "t0")["state"],
        "success",
        "{:#}",
        node(nodes, "t0")
    );
    let failed = node(nodes, "t1");
    assert_eq!(failed["state"], "failure", "{failed:#}");
    let error = &failed["error"];
    assert_eq!(error["code"], "node_limit_exceeded", "{failed:#}");
    assert_eq!(error["limit"], limit);
    assert_eq!(error["retryable"], false);
    assert!(error["actual"].as_u64().unwrap() > limit, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("parameters") && message.contains("--node-limit-bytes"),
        "{message}"
    );
    assert!(failed["parameters"].is_null(), "not kept past the limit");
    assert_eq!(node(nodes, "t2")["state"], "skipped");
}

/// Every condition of the chain held, none recorded more than previews of
/// what it read, and the outputs stopped growing after the first cut.
fn assert_condition_chain_is_previewed(nodes: &Value) {
    let sizes: Vec<u64> = (0..8)
        .map(|level| {
            let condition = node(nodes, &format!("c{level}"));
            assert_eq!(condition["state"], "success", "{condition:#}");
            size(&condition["output"])
        })
        .collect();
    for level in 1..8 {
        let condition = node(nodes, &format!("c{level}"));
        let expectation = &condition["output"]["expectations"][0];
        assert_eq!(expectation["actual_truncated"], true, "{expectation:#}");
    }
    // 20 previews of at most 1 KiB each, and the expectations around them.
    assert!(sizes.iter().all(|&s| s < 30 * 1024), "{sizes:?}");
    assert!(sizes[7] <= sizes[1], "outputs keep growing: {sizes:?}");
}

backend_test!(
    async fn simulate_of_a_multiplicative_rule_answers_instead_of_aborting(app) {
        let (_, key) = app.company_with_key("acme").await;
        let body = json!({"event": payment("acme"), "rules": multiplicative_rules("acme")["rules"]});
        // The size of the request that aborted the process before limits.
        assert!(size(&body["rules"]) < 20_000, "{}", size(&body["rules"]));
        let response = app
            .post_json_as("/payment-rules/acme/simulate", &body, Some(&key))
            .await;
        let status = response.status();
        let simulation = json_body(response).await;
        assert_eq!(status, StatusCode::OK, "{simulation:#}");
        assert_eq!(simulation["status"], "failed");
        assert_condition_chain_is_previewed(&simulation["nodes"]);
        assert_task_chain_stopped_at_the_node_limit(&simulation["nodes"], DEFAULT_NODE_LIMIT);
        assert_eq!(app.health().await.status(), StatusCode::OK);
    }
);

backend_test!(
    async fn chained_condition_outputs_cannot_grow_past_the_node_limit(app) {
        let (_, key) = app.company_with_key("acme").await;
        let rules = json!({"company_id": "acme", "rules": condition_chain()});
        let response = app.save_rules_as(&rules, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let run = app.pay_and_wait(&payment("acme"), &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
        assert_condition_chain_is_previewed(&run["nodes"]);
    }
);

backend_test!(
    async fn a_multiplicative_rule_fails_its_run_and_the_server_serves_everyone_else(app) {
        let (_, key) = app.company_with_key("acme").await;
        let response = app
            .save_rules_as(&multiplicative_rules("acme"), Some(&key))
            .await;
        let status = response.status();
        assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
        let run = app.pay_and_wait(&payment("acme"), &key).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        assert_task_chain_stopped_at_the_node_limit(&run["nodes"], DEFAULT_NODE_LIMIT);

        let other = app.company_with_demo_rules("other").await;
        let run = app
            .pay_and_wait(&crate::helpers::book_payment("other"), &other)
            .await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
);

limits_test!(
    a_run_past_the_run_limit_fails_the_node_that_crossed_it,
    node = 3_000,
    run = 8_000,
    |app| {
        let (_, key) = app.company_with_key("acme").await;
        // Each task stores its parameters and an output of the same size
        // (about 2.5 kB each): the second task takes the run past 8 kB.
        let tasks: Vec<Value> = (0..3)
            .map(|i| {
                let depends_on = if i == 0 {
                    json!([])
                } else {
                    json!([{"node_id": format!("t{}", i - 1), "state": "success"}])
                };
                json!({"node_type": "task", "node_id": format!("t{i}"), "depends_on": depends_on,
                       "task_name": "payment.tasks.activate_subscription",
                       "parameters": {"subscription_id": "$context.event.product.title"}})
            })
            .collect();
        let response = app
            .save_rules_as(&json!({"company_id": "acme", "rules": tasks}), Some(&key))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let mut event = payment("acme");
        event["product"]["title"] = json!("y".repeat(2_400));
        let run = app.pay_and_wait(&event, &key).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        let nodes = run["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["state"], "success");
        assert_eq!(nodes[1]["state"], "failure", "{:#}", nodes[1]);
        let error = &nodes[1]["error"];
        assert_eq!(error["code"], "run_limit_exceeded");
        assert_eq!(error["limit"], 8_000);
        assert!(error["actual"].as_u64().unwrap() > 8_000);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("--run-limit-bytes")
        );
        assert_eq!(nodes[2]["state"], "skipped");
    }
);

backend_test!(
    async fn a_literal_parameter_past_the_node_limit_is_refused_at_save(app) {
        let (_, key) = app.company_with_key("acme").await;
        let rules = json!({"company_id": "acme", "rules": [
            {"node_type": "task", "node_id": "notify", "task_name": "payment.tasks.notify",
             "parameters": {"channel": "email", "message": "z".repeat(300 * 1024)}}
        ]});
        let response = app.save_rules_as(&rules, Some(&key)).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let error = crate::helpers::error_at(&problem, "rules[0].parameters");
        assert_eq!(error["code"], "too_large", "{problem:#}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("--node-limit-bytes")
        );
        assert_eq!(app.count_rows("rule_versions", "acme").await, 0);

        let validated = json_body(app.validate_rules(&rules).await).await;
        assert_eq!(validated["valid"], false);
        assert_eq!(validated["problems"][0]["code"], "too_large");
    }
);

/// An endpoint on loopback that answers every request with `total` bytes,
/// streamed without a `Content-Length`.
async fn flooding_endpoint(total: usize) -> String {
    let app = axum::Router::new().route(
        "/big",
        axum::routing::post(move || async move {
            let chunk = axum::body::Bytes::from(vec![b'a'; 64 * 1024]);
            let chunks = total / chunk.len();
            axum::body::Body::from_stream(futures::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::convert::Infallible>(chunk.clone())),
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/big", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// What the company's runs, run events and documents hold, in bytes of text.
async fn stored_bytes(app: &TestApp, company_id: &str) -> i64 {
    let sql = format!(
        "SELECT (SELECT COALESCE(SUM(LENGTH(nodes)), 0) FROM runs WHERE company_id = '{company_id}') \
              + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM run_events WHERE company_id = '{company_id}') \
              + (SELECT COALESCE(SUM(LENGTH(body)), 0) FROM documents WHERE company_id = '{company_id}')"
    );
    app.query_i64(&sql).await
}

mod a_64_mib_http_answer_fails_its_node_and_stores_next_to_nothing {
    use super::*;

    async fn run(backend: Backend) {
        let app = spawn_app_with_config(backend, |config| {
            config.allow_private_addresses = true;
        })
        .await;
        let url = flooding_endpoint(64 * 1024 * 1024).await;
        let (_, key) = app.company_with_key("acme").await;
        let rules = json!({"company_id": "acme", "rules": [
            {"node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
             "parameters": {"url": url}}
        ]});
        let response = app.save_rules_as(&rules, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let run = app.pay_and_wait(&payment("acme"), &key).await;
        assert_eq!(run["status"], "failed", "{run:#}");
        let call = node(&run["nodes"], "call");
        assert_eq!(
            call["attempts"], 1,
            "a permanent error is not retried: {call:#}"
        );
        let message = call["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("--http-response-limit-bytes"), "{call:#}");
        let stored = stored_bytes(&app, "acme").await;
        assert!(stored < 64 * 1024, "the run stored {stored} bytes");
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await
    }
}
