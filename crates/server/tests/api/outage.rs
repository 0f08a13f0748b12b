//! PostgreSQL goes away under a running server (`moneyflow up`, no broker):
//! payments are refused with 503, never accepted; when the database is back
//! the same process accepts payments again and finishes their runs, with no
//! manual step. The database is reached through a TCP proxy the test takes
//! down (it stops accepting and drops the live connections) and brings back.

use std::str::FromStr;
use std::time::{Duration, Instant};

use moneyflow_server::startup::builtin_registry;
use moneyflow_store::testing::fresh_postgres;
use moneyflow_store::{PgStore, Store};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;

use crate::helpers::*;

/// A TCP proxy to PostgreSQL that the test can take down and bring back,
/// on the same port.
struct Proxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            upstream,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection: the database is "down".
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        }));
    }

    /// Down: the port refuses connections, the open ones are cut.
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn event(i: usize) -> serde_json::Value {
    let mut event = book_payment("acme");
    event["event_id"] = json!(format!("evt-{i}"));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_and_the_server_recovers_by_itself() {
    let database = fresh_postgres().await;
    let options = PgConnectOptions::from_str(database.url()).unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let mut proxy = Proxy::start(upstream).await;
    let served = Store::Postgres(
        PgStore::connect_with(options.host("127.0.0.1").port(proxy.port))
            .await
            .expect("connect through the proxy"),
    );
    let config = test_config();
    let registry = builtin_registry(&config);
    let app = spawn_on(database, served, config, registry).await;
    let key = app.company_with_demo_rules("acme").await;
    let run = app.pay_and_wait(&event(0), &key).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");

    proxy.stop().await;
    // Many at once: each waits at most the pool's acquire timeout (sqlx
    // retries refused connections until then), then answers 503.
    let started = Instant::now();
    let attempts: Vec<_> = (1..=30)
        .map(|i| {
            let request = app
                .request(reqwest::Method::POST, "/payment", Some(&key))
                .json(&event(i));
            tokio::spawn(async move {
                let response = request.send().await.expect("an answer");
                let status = response.status();
                (i, status, response.text().await.unwrap_or_default())
            })
        })
        .collect();
    for attempt in attempts {
        let (i, status, body) = attempt.await.expect("no panic");
        assert!(
            !status.is_success(),
            "payment {i} was accepted while the database is down: {status} {body}"
        );
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "payment {i}: {body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refusing took {:?}",
        started.elapsed()
    );
    let ready = app.get_as("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restart().await;
    // Back: the same process accepts again (the pool reconnects) and its
    // orchestrator finishes the runs, retried events included.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut run_ids = Vec::new();
    for i in 1..=30 {
        let run_id = loop {
            let response = app.post_payment(&event(i), Some(&key)).await;
            let status = response.status();
            let body = json_body(response).await;
            if status == StatusCode::ACCEPTED {
                break body["run_id"].as_str().expect("run_id").to_owned();
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert!(
                Instant::now() < deadline,
                "not accepting 30 s after the database came back: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        run_ids.push(run_id);
    }
    for run_id in &run_ids {
        let run = app.wait_for_run(run_id, &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    assert_eq!(app.count_rows("runs", "acme").await, 31);
    let ready = app.get_as("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_tells_strangers_what_is_down_but_not_what_it_said() {
    let database = fresh_postgres().await;
    let options = PgConnectOptions::from_str(database.url()).unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let mut proxy = Proxy::start(upstream).await;
    let served = Store::Postgres(
        PgStore::connect_with(options.host("127.0.0.1").port(proxy.port))
            .await
            .expect("connect through the proxy"),
    );
    let config = test_config();
    let registry = builtin_registry(&config);
    let app = spawn_on(database, served, config, registry).await;
    proxy.stop().await;

    let stranger = app.get_as("/ready", None).await;
    assert_eq!(stranger.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(stranger).await;
    assert_eq!(body["unavailable"], json!(["store"]), "{body}");
    assert_eq!(body["checks"]["store"], json!({"status": "down"}), "{body}");

    let admin = app.get_as("/ready", Some(&app.admin_token)).await;
    assert_eq!(admin.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json_body(admin).await;
    assert!(
        body["checks"]["store"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "the admin sees why: {body}"
    );
}
