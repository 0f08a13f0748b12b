//! Distributed mode in one process (role `all`) on the real PostgreSQL and
//! RabbitMQ: runs travel event → outbox → relay → queue → consumer, and
//! readiness and the dead-letter API see the broker. Each test has its own
//! queue names, deleted at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moneyflow_core::catalogue::TaskSpec;
use moneyflow_engine::{Task, TaskError, TaskInput, TaskOutput};
use moneyflow_server::secret::SecretString;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn spawn_distributed() -> (TestApp, moneyflow_broker::BrokerConfig) {
    let queue = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
    let mut broker_config = None;
    let app = spawn_app_with_config(Backend::Postgres, |config| {
        config.broker = Some(SecretString::new(BROKER_URL));
        config.broker_queue = queue.clone();
        config.broker_delivery_limit = 2;
        broker_config = config.broker_config();
    })
    .await;
    (app, broker_config.expect("a broker is configured"))
}

#[tokio::test]
async fn payments_run_through_the_outbox_and_the_broker() {
    let (app, broker_config) = spawn_distributed().await;
    let ready = app.get_as("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready = json_body(ready).await;
    assert_eq!(ready["checks"]["broker"]["status"], "up", "{ready}");

    let key = app.company_with_demo_rules("acme").await;
    let mut run_ids = Vec::new();
    for i in 0..20 {
        let mut event = book_payment("acme");
        event["event_id"] = serde_json::json!(format!("evt-{i}"));
        let response = app.post_payment(&event, Some(&key)).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        run_ids.push(body["run_id"].as_str().expect("run_id").to_owned());
    }
    for run_id in &run_ids {
        let run = app.wait_for_run(run_id, &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    // Every outbox row was published and marked sent.
    let moneyflow_store::Store::Postgres(pg) = app.store.store() else {
        panic!("PostgreSQL")
    };
    assert_eq!(pg.outbox_pending().await.unwrap(), 0);

    let letters = app
        .get_as("/admin/dead-letters", Some(&app.admin_token))
        .await;
    assert_eq!(letters.status(), StatusCode::OK);
    assert_eq!(json_body(letters).await["count"], 0);
    let replay = app
        .post_json_as(
            "/admin/dead-letters/no-such-run/replay",
            &serde_json::json!({}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);

    let broker = moneyflow_broker::Broker::connect(broker_config)
        .await
        .expect("broker");
    broker.delete_topology().await.expect("cleanup");
}

/// Panics while its switch is on; else succeeds with a `note` document.
struct Explode {
    spec: TaskSpec,
    armed: Arc<AtomicBool>,
}

#[async_trait]
impl Task for Explode {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    async fn execute(&self, _input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        assert!(
            !self.armed.load(Ordering::SeqCst),
            "test.tasks.explode is armed (an intended panic)"
        );
        Ok(TaskOutput::new(json!({"ok": true})).with_document("note", json!({"ok": true})))
    }
}

/// A task that panics is retried by redelivery up to the delivery limit,
/// then dead-lettered, without holding back the other runs; once the cause
/// is fixed, a replay finishes it.
#[tokio::test]
async fn a_panicking_task_is_dead_lettered_then_replayed() {
    let armed = Arc::new(AtomicBool::new(true));
    let queue = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
    let mut broker_config = None;
    let switch = armed.clone();
    let app = spawn_app_with_config_and_registry(
        Backend::Postgres,
        |config| {
            config.broker = Some(SecretString::new(BROKER_URL));
            config.broker_queue = queue.clone();
            config.broker_delivery_limit = 2;
            broker_config = config.broker_config();
        },
        move |config| {
            let mut registry = moneyflow_server::startup::builtin_registry(config);
            registry.register(Arc::new(Explode {
                spec: TaskSpec {
                    name: "test.tasks.explode",
                    title: "Explode",
                    description: "Test only: panics while armed.",
                    params: vec![],
                    open_params: false,
                    output: &[("ok", "Always true")],
                },
                armed: switch,
            }));
            registry
        },
    )
    .await;
    let broker = moneyflow_broker::Broker::connect(broker_config.expect("a broker"))
        .await
        .expect("broker");

    let (_, boom_key) = app.company_with_key("boom").await;
    let rules = json!({"company_id": "boom", "rules": [
        {"node_type": "task", "node_id": "explode", "task_name": "test.tasks.explode",
         "parameters": null}
    ]});
    let response = app.save_rules(&rules).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let key = app.company_with_demo_rules("acme").await;

    let response = app
        .post_payment(&book_payment("boom"), Some(&boom_key))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let boom_run = json_body(response).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    // Others, sent while the bad run is being redelivered, all finish.
    let mut run_ids = Vec::new();
    for i in 0..20 {
        let mut event = book_payment("acme");
        event["event_id"] = json!(format!("evt-{i}"));
        let response = app.post_payment(&event, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        run_ids.push(
            json_body(response).await["run_id"]
                .as_str()
                .expect("run_id")
                .to_owned(),
        );
    }
    for run_id in &run_ids {
        let run = app.wait_for_run(run_id, &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }

    // Dead-lettered after the delivery limit, listed with its run.
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        let response = app
            .get_as("/admin/dead-letters", Some(&app.admin_token))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = json_body(response).await;
        let found = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|item| item["run_id"] == boom_run.as_str())
            .cloned();
        if let Some(letter) = found {
            assert_eq!(body["count"], 1, "{body:#}");
            break letter;
        }
        assert!(
            Instant::now() < deadline,
            "run {boom_run} was not dead-lettered in 30 s: {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter["company_id"], "boom", "{letter:#}");
    assert!(
        !matches!(
            letter["run_status"].as_str(),
            Some("succeeded" | "failed" | "aborted")
        ),
        "{letter:#}"
    );
    let run = json_body(app.get_run(&boom_run, Some(&boom_key)).await).await;
    assert!(!is_finished(&run), "{run:#}");

    // The cause is fixed: the replay finishes the run.
    armed.store(false, Ordering::SeqCst);
    let replay = app
        .post_json_as(
            &format!("/admin/dead-letters/{boom_run}/replay"),
            &json!({}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(json_body(replay).await["replayed"], 1);
    let run = app.wait_for_run(&boom_run, &boom_key).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let letters = app
        .get_as("/admin/dead-letters", Some(&app.admin_token))
        .await;
    assert_eq!(json_body(letters).await["count"], 0);

    broker.delete_topology().await.expect("cleanup");
}

/// A step that panics every time is a failed delivery every time: the run
/// is quarantined once its step started `--max-step-attempts` times without
/// committing, before the broker's delivery limit, and shows so in the API
/// as in one-process mode; nothing is dead-lettered.
#[tokio::test]
async fn a_step_that_panics_every_time_is_quarantined_before_the_delivery_limit() {
    let queue = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
    let mut broker_config = None;
    let app = spawn_app_with_config_and_registry(
        Backend::Postgres,
        |config| {
            config.broker = Some(SecretString::new(BROKER_URL));
            config.broker_queue = queue.clone();
            config.broker_delivery_limit = 5;
            config.max_step_attempts = 2;
            broker_config = config.broker_config();
        },
        |config| {
            let mut registry = moneyflow_server::startup::builtin_registry(config);
            registry.register(Arc::new(Explode {
                spec: TaskSpec {
                    name: "test.tasks.explode",
                    title: "Explode",
                    description: "Test only: panics while armed.",
                    params: vec![],
                    open_params: false,
                    output: &[("ok", "Always true")],
                },
                armed: Arc::new(AtomicBool::new(true)),
            }));
            registry
        },
    )
    .await;
    let (_, boom_key) = app.company_with_key("boom").await;
    let rules = json!({"company_id": "boom", "rules": [
        {"node_type": "task", "node_id": "explode", "task_name": "test.tasks.explode",
         "parameters": null}
    ]});
    assert_eq!(app.save_rules(&rules).await.status(), StatusCode::CREATED);
    let key = app.company_with_demo_rules("acme").await;

    let run = app.pay_and_wait(&book_payment("boom"), &boom_key).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["quarantined"], true, "{run:#}");
    assert_eq!(run["error"]["code"], "quarantined", "{run:#}");
    let listed = json_body(app.get_as("/runs?company_id=boom", Some(&boom_key)).await).await;
    assert_eq!(listed["items"][0]["quarantined"], true, "{listed:#}");
    let letters = app
        .get_as("/admin/dead-letters", Some(&app.admin_token))
        .await;
    assert_eq!(json_body(letters).await["count"], 0);

    let run = app.pay_and_wait(&book_payment("acme"), &key).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    let broker = moneyflow_broker::Broker::connect(broker_config.expect("a broker"))
        .await
        .expect("broker");
    broker.delete_topology().await.expect("cleanup");
}
