//! Two server processes on one PostgreSQL database: run events one of them
//! commits reach the event streams of the other through `LISTEN/NOTIFY`,
//! well before the streams' 2 s fallback poll.

use std::time::{Duration, Instant};

use moneyflow_server::config::Role;
use moneyflow_server::startup::builtin_registry;
use moneyflow_store::Store;
use moneyflow_store::testing::fresh_postgres;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::sse::SseReader;

/// The streams' fallback poll: what must be beaten.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_one_process_sees_runs_another_process_executes() {
    let database = fresh_postgres().await;
    let url = database.url().to_owned();
    // A: takes payments and runs them (`moneyflow up`). B: the Composer API
    // only (no payments, no workers), on a store of its own.
    let config = test_config();
    let registry = builtin_registry(&config);
    let a = spawn_on(database, fresh_handle(&url).await, config, registry).await;
    let mut config = test_config();
    config.role = Role::Composer;
    let registry = builtin_registry(&config);
    let b = spawn_on(
        fresh_postgres().await,
        fresh_handle(&url).await,
        config,
        registry,
    )
    .await;

    let key = a.company_with_demo_rules("acme").await;
    let mut stream = SseReader::open(&b, "/companies/acme/events", &key, None).await;

    let mut latencies = Vec::new();
    for i in 0..5 {
        let mut event = book_payment("acme");
        event["event_id"] = json!(format!("evt-{i}"));
        let response = a.post_payment(&event, Some(&key)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let accepted = Instant::now();
        let run_id = json_body(response).await["run_id"]
            .as_str()
            .expect("run_id")
            .to_owned();
        let mut kinds = Vec::new();
        loop {
            let event = stream.next().await.expect("the company stream goes on");
            assert_eq!(event.data["run_id"], run_id.as_str(), "{event:?}");
            kinds.push(event.event.clone());
            if event.event == "run.finished" {
                break;
            }
        }
        let latency = accepted.elapsed();
        assert_eq!(kinds.first().map(String::as_str), Some("run.queued"));
        assert!(
            latency < Duration::from_millis(1500),
            "run {i}'s events reached the other process after {latency:?}"
        );
        latencies.push(latency);
    }
    println!("cross-process event latencies: {latencies:?}");
    // Each run's last event, as the poll alone would deliver it, comes up to
    // 2 s late; five in a row well under it are the notifications' doing.
    let quick = latencies.iter().filter(|l| **l < POLL_INTERVAL / 4).count();
    assert!(quick >= 4, "{latencies:?}");
    drop(b);
}

/// Another handle on the database at `url` (another process's pool).
async fn fresh_handle(url: &str) -> Store {
    Store::connect(url).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_runs_wait_in_the_queue_until_a_server_without_hold_runs_them() {
    let database = fresh_postgres().await;
    let url = database.url().to_owned();
    let mut config = test_config();
    config.hold_runs = true;
    let registry = builtin_registry(&config);
    let held = spawn_on(database, fresh_handle(&url).await, config, registry).await;
    let key = held.company_with_demo_rules("acme").await;
    let response = held.post_payment(&book_payment("acme"), Some(&key)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let run_id = json_body(response).await["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    // An orchestrator would have finished it in milliseconds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let run = json_body(held.get_run(&run_id, Some(&key)).await).await;
    assert_eq!(run["status"], "queued", "{run}");
    assert!(run["started_at"].is_null(), "{run}");

    let config = test_config();
    let registry = builtin_registry(&config);
    let running = spawn_on(
        fresh_postgres().await,
        fresh_handle(&url).await,
        config,
        registry,
    )
    .await;
    let run = running.wait_for_run(&run_id, &key).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}
