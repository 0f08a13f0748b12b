//! `POST /runs/{run_id}/redrive`: a failed run runs again from its failed
//! nodes; what succeeded is never executed again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use moneyflow_core::catalogue::TaskSpec;
use moneyflow_engine::{Task, TaskError, TaskInput, TaskOutput};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::sse::{SseReader, registry_with, spec};

/// Executions per idempotency key, shared by the test's tasks.
type Executions = Arc<Mutex<HashMap<String, u32>>>;

/// Counts its executions; fails (permanently) while `broken` is set.
struct Counting {
    spec: TaskSpec,
    executions: Executions,
    broken: Option<Arc<AtomicBool>>,
}

#[async_trait]
impl Task for Counting {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        *self
            .executions
            .lock()
            .unwrap()
            .entry(input.idempotency_key.to_owned())
            .or_default() += 1;
        if self
            .broken
            .as_ref()
            .is_some_and(|b| b.load(Ordering::SeqCst))
        {
            return Err(TaskError::permanent("the downstream system is broken"));
        }
        Ok(TaskOutput::new(json!({"node": input.node_id})))
    }
}

fn task(id: &str, name: &str, after: Option<&str>) -> Value {
    let mut node =
        json!({"node_type": "task", "node_id": id, "task_name": name, "parameters": null});
    if let Some(after) = after {
        node["depends_on"] = json!([{"node_id": after, "state": "success"}]);
    }
    node
}

async fn a_redriven_run_finishes_what_failed(backend: Backend) {
    let executions: Executions = Arc::default();
    let broken = Arc::new(AtomicBool::new(true));
    let registry = registry_with(vec![
        Arc::new(Counting {
            spec: spec("test.tasks.count"),
            executions: executions.clone(),
            broken: None,
        }),
        Arc::new(Counting {
            spec: spec("test.tasks.flaky"),
            executions: executions.clone(),
            broken: Some(broken.clone()),
        }),
    ]);
    let app = spawn_app_with_registry(backend, registry).await;
    let (_, key) = app.company_with_key("acme").await;
    let (_, other) = app.company_with_key("globex").await;
    // a → b (flaky) → c, and d on its own.
    let rules = json!({"company_id": "acme", "rules": [
        task("a", "test.tasks.count", None),
        task("b", "test.tasks.flaky", Some("a")),
        task("c", "test.tasks.count", Some("b")),
        task("d", "test.tasks.count", None),
    ]});
    let response = app.save_rules(&rules).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );

    let run = app.pay_and_wait(&book_payment("acme"), &key).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let run_id = run["run_id"].as_str().unwrap().to_owned();
    let states: Vec<&str> = run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["success", "failure", "skipped", "success"]);

    let path = format!("/runs/{run_id}/redrive");
    // Another company's key: the same 404 as a missing run.
    assert_problem(
        app.post_json_as(&path, &json!({}), Some(&other)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_problem(
        app.post_json_as("/runs/run_nope/redrive", &json!({}), Some(&key))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    broken.store(false, Ordering::SeqCst);
    let response = app
        .request(reqwest::Method::POST, &path, Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()["location"],
        format!("/runs/{run_id}").as_str()
    );
    let body = json_body(response).await;
    assert_eq!(body["status"], "queued", "{body}");
    assert_eq!(body["redrive_count"], 1);
    assert_eq!(body["run_id"], run_id.as_str());

    let run = app.wait_for_run(&run_id, &key).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let executions = executions.lock().unwrap().clone();
    let count = |node: &str| {
        executions
            .get(&format!("{run_id}:{node}"))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(
        count("a"),
        1,
        "a succeeded the first time: never executed again"
    );
    assert_eq!(
        count("d"),
        1,
        "d succeeded the first time: never executed again"
    );
    assert_eq!(count("b"), 2, "b failed, then ran again");
    assert_eq!(count("c"), 1, "c was skipped, then ran");
    let nodes = run["nodes"].as_array().unwrap();
    let b = nodes.iter().find(|n| n["node_id"] == "b").unwrap();
    assert_eq!(b["attempts"], 1);
    assert_eq!(b["history"][0]["state"], "failure");
    assert_eq!(b["history"][0]["attempts"], 1);
    assert_eq!(
        b["history"][0]["error"]["message"],
        "the downstream system is broken"
    );

    // Only a failed run: a succeeded one is a 409 that says so.
    let problem = assert_problem(
        app.request(reqwest::Method::POST, &path, Some(&app.admin_token))
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
    )
    .await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("succeeded") && detail.contains("only failed runs"),
        "{detail}"
    );

    // The run's events tell the story, numbered without a gap.
    let events = SseReader::open(&app, &format!("/runs/{run_id}/events"), &key, None)
        .await
        .rest()
        .await;
    let story: Vec<String> = events
        .iter()
        .map(|e| match e.event.as_str() {
            "node.finished" => format!(
                "{}:{}",
                e.data["data"]["node_id"].as_str().unwrap(),
                e.data["data"]["state"].as_str().unwrap()
            ),
            "run.finished" => format!("finished:{}", e.data["data"]["status"].as_str().unwrap()),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(
        story,
        [
            "run.queued",
            "run.started",
            "a:success",
            "b:failure",
            "c:skipped",
            "d:success",
            "finished:failed",
            "run.redriven",
            "run.started",
            "b:success",
            "c:success",
            "finished:succeeded",
        ]
    );
    let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
    let expected: Vec<String> = (1..=events.len()).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    let redriven = &events[7].data["data"];
    assert_eq!(redriven["failed_nodes"], json!(["b"]));
    assert_eq!(redriven["skipped_nodes"], json!(["c"]));

    // Listed with its redrive count.
    let page = json_body(app.get_as("/runs?status=succeeded", Some(&key)).await).await;
    assert_eq!(page["items"][0]["redrive_count"], 1);
}

mod a_redriven_run_whose_failing_task_now_succeeds_ends_succeeded_without_rerunning_successes {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        a_redriven_run_finishes_what_failed(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        a_redriven_run_finishes_what_failed(Backend::Postgres).await
    }
}
