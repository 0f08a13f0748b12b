//! Crash recovery, end to end, with `moneyflow up` as a child process.
//!
//! - It takes 2,000 payments, is killed with SIGKILL midway, and is started
//!   again on the same data. Every accepted event must end with exactly one
//!   finished run, no document twice, and no completed node executed again.
//! - A run whose step is under way at every SIGKILL (the process dies with
//!   its lease, as it would on a crash the step causes) is quarantined after
//!   `--max-step-attempts` such deaths, and the restarted server serves the
//!   other companies.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

const EVENTS: usize = 2_000;
const KILL_AFTER: usize = 900;
const ADMIN: &str = "mfa_crash_test_admin_token";

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data_dir: &std::path::Path, port: u16) -> Self {
        Self::start_with(data_dir, port, &[])
    }

    /// [`Self::start`] with more flags.
    fn start_with(data_dir: &std::path::Path, port: u16, flags: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_moneyflow"))
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(flags)
            .env("MONEYFLOW_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start moneyflow up");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moneyflow up did not answer within 60 s");
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown path runs.
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn event(i: usize) -> Value {
    // Alternate books, other products and services, so every branch of the demo rule runs.
    let (kind, product_type) = match i % 3 {
        0 => ("product", "book"),
        1 => ("product", "toy"),
        _ => ("service", "consulting"),
    };
    json!({
        "company_id": "demo", "event_id": format!("crash-{i}"), "type": kind, "total": format!("{}.50", 10 + i % 90),
        "currency": "BRL", "product": {"id": format!("p-{i}"), "type": product_type}, "agent_id": "agent-7"
    })
}

/// Sends events `indexes` with 32 at a time; records accepted run ids.
async fn send(
    client: &reqwest::Client,
    url: &str,
    indexes: Vec<usize>,
    accepted: Arc<Mutex<HashMap<usize, String>>>,
    progress: Arc<AtomicUsize>,
) {
    let queue = Arc::new(Mutex::new(indexes));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (client, url, queue, accepted, progress) = (
            client.clone(),
            url.to_owned(),
            queue.clone(),
            accepted.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let Some(i) = queue.lock().await.pop() else {
                    break;
                };
                let response = client
                    .post(format!("{url}/payment"))
                    .bearer_auth(ADMIN)
                    .json(&event(i))
                    .send()
                    .await;
                // A connection torn by the kill is not an acceptance: it is resent later.
                let Ok(response) = response else { continue };
                if response.status().as_u16() == 202 {
                    let body: Value = response.json().await.unwrap_or_default();
                    if let Some(run_id) = body["run_id"].as_str() {
                        accepted.lock().await.insert(i, run_id.to_owned());
                        progress.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_midway_loses_and_repeats_nothing() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let port = free_port();
    let mut server = Server::start(data.path(), port);
    server.wait_ready(&client).await;

    // Phase 1: send everything; kill the server once KILL_AFTER are accepted.
    let accepted: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let progress = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn({
        let (client, url, accepted, progress) = (
            client.clone(),
            server.url.clone(),
            accepted.clone(),
            progress.clone(),
        );
        async move { send(&client, &url, (0..EVENTS).collect(), accepted, progress).await }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while progress.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(
            Instant::now() < deadline,
            "too slow to accept {KILL_AFTER} events"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    sender.await.unwrap();
    let accepted_before_kill = accepted.lock().await.len();
    assert!(
        (KILL_AFTER..EVENTS).contains(&accepted_before_kill),
        "{accepted_before_kill}"
    );

    // Phase 2: start again on the same data; send what was not accepted.
    let mut server = Server::start(data.path(), port);
    server.wait_ready(&client).await;
    let missing: Vec<usize> = {
        let accepted = accepted.lock().await;
        (0..EVENTS).filter(|i| !accepted.contains_key(i)).collect()
    };
    send(
        &client,
        &server.url,
        missing,
        accepted.clone(),
        progress.clone(),
    )
    .await;
    let accepted = accepted.lock().await.clone();
    assert_eq!(accepted.len(), EVENTS, "every event is accepted in the end");

    // Replaying any event returns its one run: exactly one run per event.
    for i in (0..EVENTS).step_by(97) {
        let response = client
            .post(format!("{}/payment", server.url))
            .bearer_auth(ADMIN)
            .json(&event(i))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["run_id"].as_str(),
            Some(accepted[&i].as_str()),
            "event {i} has one run"
        );
    }

    // Every run finishes; no document twice; no node executed twice.
    let mut documents_seen = HashSet::new();
    let mut documents = 0;
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (i, run_id) in &accepted {
        let run = wait_finished(&client, &server.url, run_id).await;
        *statuses
            .entry(run["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
        assert_eq!(run["status"], json!("succeeded"), "event {i}: {run}");
        for node in run["nodes"].as_array().unwrap() {
            let attempts = node["attempts"].as_u64().unwrap();
            assert!(
                attempts <= 1,
                "event {i}: node executed {attempts} times: {node}"
            );
        }
        let kinds: Vec<&str> = run["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["kind"].as_str().unwrap())
            .collect();
        let expected: &[&str] = match i % 3 {
            0 => &[
                "shipment",
                "packing_slip_copy",
                "notification",
                "commission",
            ],
            1 => &["shipment", "commission"],
            _ => &[],
        };
        let mut sorted_kinds = kinds.clone();
        sorted_kinds.sort_unstable();
        let mut sorted_expected = expected.to_vec();
        sorted_expected.sort_unstable();
        assert_eq!(
            sorted_kinds, sorted_expected,
            "event {i}: documents {kinds:?}"
        );
        for document in run["documents"].as_array().unwrap() {
            assert!(
                documents_seen.insert(document["key"].as_str().unwrap().to_owned()),
                "document twice: {document}"
            );
            documents += 1;
        }
    }
    println!(
        "crash test: {EVENTS} events, {accepted_before_kill} accepted before SIGKILL, {} runs finished {statuses:?}, {documents} documents, none twice",
        accepted.len()
    );
    server.kill();
}

async fn wait_finished(client: &reqwest::Client, url: &str, run_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = client
            .get(format!("{url}/runs/{run_id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "GET /runs/{run_id}");
        let run: Value = response.json().await.unwrap();
        if matches!(
            run["status"].as_str(),
            Some("succeeded" | "failed" | "aborted")
        ) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} did not finish: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A local endpoint that accepts connections and never answers, holding
/// them open; counts them. A step calling it is under way until the
/// process dies.
async fn hanging_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hang", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (url, connections)
}

async fn post(client: &reqwest::Client, url: &str, path: &str, body: &Value) -> Value {
    let response = client
        .post(format!("{url}{path}"))
        .bearer_auth(ADMIN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    assert!((200..300).contains(&status), "POST {path}: {status} {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_whose_step_dies_with_the_server_three_times_is_quarantined() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let port = free_port();
    let flags = ["--allow-private-addresses", "--max-step-attempts", "3"];
    let (endpoint, connections) = hanging_endpoint().await;
    let mut server = Server::start_with(data.path(), port, &flags);
    server.wait_ready(&client).await;
    post(&client, &server.url, "/payment-rules", &json!({
        "company_id": "poison",
        "rules": [{"node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
                   "timeout_ms": 600_000, "parameters": {"url": endpoint}}]
    }))
    .await;
    let accepted = post(
        &client,
        &server.url,
        "/payment",
        &json!({
            "company_id": "poison", "event_id": "poison-1", "type": "product", "total": "1.00",
            "currency": "BRL", "product": {"id": "p", "type": "book"}
        }),
    )
    .await;
    let poison_run = accepted["run_id"].as_str().unwrap().to_owned();

    // Three starts; each dies (SIGKILL) while the run's step waits on the
    // endpoint, holding the run's lease.
    for death in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(60);
        while connections.load(Ordering::SeqCst) < death {
            assert!(
                Instant::now() < deadline,
                "start {death}: the step did not begin"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.kill();
        server = Server::start_with(data.path(), port, &flags);
        server.wait_ready(&client).await;
    }

    // The fourth start quarantines it instead of calling the endpoint again.
    let run = wait_finished(&client, &server.url, &poison_run).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["quarantined"], true, "{run:#}");
    assert_eq!(run["error"]["code"], "quarantined", "{run:#}");
    let reason = run["error"]["message"].as_str().unwrap();
    assert!(reason.contains("--max-step-attempts"), "{reason}");
    assert_eq!(run["nodes"][0]["state"], "failure", "{run:#}");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        3,
        "not executed a fourth time"
    );
    let listed: Value = client
        .get(format!("{}/runs?company_id=poison", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["run_id"],
        poison_run.as_str(),
        "{listed:#}"
    );
    assert_eq!(listed["items"][0]["quarantined"], true, "{listed:#}");

    // Everyone else is served.
    let accepted = post(&client, &server.url, "/payment", &event(0)).await;
    let run = wait_finished(&client, &server.url, accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    server.kill();
}
