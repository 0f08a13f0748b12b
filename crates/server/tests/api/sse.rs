//! Live run events (Server-Sent Events): a client that disconnects and
//! resumes with `Last-Event-ID` receives every event of a run exactly once,
//! in order; the company stream likewise by global id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moneyflow_core::catalogue::TaskSpec;
use moneyflow_engine::{Registry, Task, TaskError, TaskInput, TaskOutput};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::*;

/// One event as a client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// A minimal Server-Sent Events client over a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

impl SseReader {
    /// `GET path` with `token`, resuming after `last_event_id` when given;
    /// asserts a 200 event stream.
    pub async fn open(app: &TestApp, path: &str, token: &str, last_event_id: Option<&str>) -> Self {
        let mut request = app.request(reqwest::Method::GET, path, Some(token));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        if status != StatusCode::OK {
            panic!(
                "GET {path}: {status} {}",
                response.text().await.unwrap_or_default()
            );
        }
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response,
            buffer: Vec::new(),
            comments: 0,
        }
    }

    /// The next event; `None` when the server ended the stream. Panics
    /// after 20 s without one.
    pub async fn next(&mut self) -> Option<SseEvent> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                if let Some(event) = self.parse(&text) {
                    return Some(event);
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no event within 20 s");
            match tokio::time::timeout(left, self.response.chunk()).await {
                Err(_) => panic!("no event within 20 s"),
                Ok(Ok(Some(chunk))) => self.buffer.extend_from_slice(&chunk),
                Ok(Ok(None)) => return None,
                Ok(Err(error)) => panic!("stream failed: {error}"),
            }
        }
    }

    /// Reads events until the stream ends.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }

    fn parse(&mut self, block: &str) -> Option<SseEvent> {
        let (mut id, mut event, mut data) = (None, None, Vec::new());
        for line in block.lines() {
            if line.is_empty() {
                continue;
            }
            if line.starts_with(':') {
                self.comments += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = Some(value.to_owned()),
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value.to_owned()),
                other => panic!("unexpected SSE field {other:?} in {block:?}"),
            }
        }
        if data.is_empty() {
            return None;
        }
        let data = serde_json::from_str(&data.join("\n")).expect("data is JSON");
        Some(SseEvent {
            id: id.expect("every event has an id"),
            event: event.expect("every event has a kind"),
            data,
        })
    }
}

/// A remote task that waits for a permit of its gate before it succeeds:
/// the test decides how far a run gets. Remote, so the executor commits
/// (and the events flow) before each wave.
struct Gated {
    spec: TaskSpec,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Task for Gated {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn execute(&self, _input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        self.gate
            .acquire()
            .await
            .map_err(|_| TaskError::permanent("gate closed"))?
            .forget();
        Ok(TaskOutput::new(json!({"passed": true})))
    }
}

pub fn registry_with(tasks: Vec<Arc<dyn Task>>) -> Registry {
    let mut registry = moneyflow_server::startup::builtin_registry(&Default::default());
    for task in tasks {
        registry.register(task);
    }
    registry
}

pub fn spec(name: &'static str) -> TaskSpec {
    TaskSpec {
        name,
        title: name,
        description: "Test only.",
        params: Vec::new(),
        open_params: false,
        output: &[],
    }
}

/// `n` gated tasks in a chain: node-00 → node-01 → …
fn chain(company_id: &str, n: usize) -> Value {
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            let mut node = json!({"node_type": "task", "node_id": format!("node-{i:02}"),
                                  "task_name": "test.tasks.gated", "parameters": null});
            if i > 0 {
                node["depends_on"] =
                    json!([{"node_id": format!("node-{:02}", i - 1), "state": "success"}]);
            }
            node
        })
        .collect();
    json!({"company_id": company_id, "rules": rules})
}

async fn a_client_that_resumes_gets_every_event_once(backend: Backend) {
    const NODES: usize = 50;
    let gate = Arc::new(Semaphore::new(0));
    let registry = registry_with(vec![Arc::new(Gated {
        spec: spec("test.tasks.gated"),
        gate: gate.clone(),
    })]);
    let app = spawn_app_with_registry(backend, registry).await;
    let (_, key) = app.company_with_key("acme").await;
    let response = app.save_rules(&chain("acme", NODES)).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{}",
        json_body(response).await
    );
    let response = app.post_payment(&book_payment("acme"), Some(&key)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let run_id = json_body(response).await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/runs/{run_id}/events");

    // Part of the run: 20 nodes may pass; read 15 events, then hang up.
    let mut first = SseReader::open(&app, &path, &key, None).await;
    gate.add_permits(20);
    let mut received = Vec::new();
    while received.len() < 15 {
        received.push(first.next().await.expect("the run is not over"));
    }
    drop(first);

    // The rest of the run goes on while the client reconnects.
    let releaser = {
        let gate = gate.clone();
        tokio::spawn(async move {
            for _ in 0..NODES - 20 {
                gate.add_permits(1);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let last = received.last().unwrap().id.clone();
    let mut second = SseReader::open(&app, &path, &key, Some(&last)).await;
    received.extend(second.rest().await);
    releaser.await.unwrap();

    let mut expected_kinds = vec!["run.queued", "run.started"];
    expected_kinds.extend(std::iter::repeat_n("node.finished", NODES));
    expected_kinds.push("run.finished");
    let kinds: Vec<&str> = received.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, expected_kinds);
    let ids: Vec<String> = received.iter().map(|e| e.id.clone()).collect();
    let expected_ids: Vec<String> = (1..=NODES + 3).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected_ids, "every seq once, in order");
    for (i, event) in received.iter().enumerate() {
        assert_eq!(event.data["seq"], json!(i + 1));
        assert_eq!(event.data["run_id"], run_id.as_str());
        assert_eq!(event.data["kind"], event.event.as_str());
    }
    let nodes: Vec<String> = received[2..2 + NODES]
        .iter()
        .map(|e| e.data["data"]["node_id"].as_str().unwrap().to_owned())
        .collect();
    let expected_nodes: Vec<String> = (0..NODES).map(|i| format!("node-{i:02}")).collect();
    assert_eq!(nodes, expected_nodes);
    assert_eq!(received[2].data["data"]["state"], "success");
    assert_eq!(received[2].data["data"]["task_name"], "test.tasks.gated");
    assert_eq!(received[NODES + 2].data["data"]["status"], "succeeded");

    // A finished run's stream replays and ends; resuming at its end ends at once.
    let mut replay = SseReader::open(&app, &path, &key, Some("50")).await;
    let tail: Vec<String> = replay.rest().await.into_iter().map(|e| e.id).collect();
    assert_eq!(tail, ["51", "52", "53"]);
    let mut at_end = SseReader::open(&app, &path, &key, Some("53")).await;
    assert_eq!(at_end.next().await, None);
}

mod a_client_that_resumes_with_last_event_id_gets_every_event_of_a_50_node_run_once {
    use super::*;

    #[tokio::test]
    async fn sqlite() {
        a_client_that_resumes_gets_every_event_once(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        a_client_that_resumes_gets_every_event_once(Backend::Postgres).await
    }
}

backend_test!(
    async fn the_company_stream_carries_every_run_of_the_company_by_global_id(app) {
        let key = app.company_with_demo_rules("acme").await;
        let other = app.company_with_demo_rules("globex").await;
        let mut stream = SseReader::open(&app, "/companies/acme/events", &key, None).await;
        let mut runs = Vec::new();
        for _ in 0..3 {
            let run = app.pay_and_wait(&book_payment("acme"), &key).await;
            runs.push(run["run_id"].as_str().unwrap().to_owned());
            app.pay_and_wait(&book_payment("globex"), &other).await;
        }
        let mut events = Vec::new();
        let mut finished = 0;
        while finished < 3 {
            let event = stream.next().await.expect("the company stream does not end");
            if event.event == "run.finished" {
                finished += 1;
            }
            events.push(event);
        }
        drop(stream);
        assert!(events.iter().all(|e| e.data["company_id"] == "acme"));
        let ids: Vec<i64> = events.iter().map(|e| e.id.parse().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().zip(&events).all(|(id, e)| e.data["id"] == json!(id)));
        let seen: Vec<&str> = events.iter().map(|e| e.data["run_id"].as_str().unwrap()).collect();
        for run in &runs {
            assert!(seen.contains(&run.as_str()));
            assert_eq!(
                events.iter().filter(|e| e.data["run_id"] == run.as_str() && e.event == "run.queued").count(),
                1
            );
        }

        // Resuming in the middle (query fallback) gives exactly what followed.
        let middle = events.len() / 2;
        let path = format!("/companies/acme/events?last_event_id={}", events[middle].id);
        let mut resumed = SseReader::open(&app, &path, &key, None).await;
        for expected in &events[middle + 1..] {
            assert_eq!(&resumed.next().await.expect("more events"), expected);
        }
    }
);

backend_test!(
    async fn streams_are_authorised_like_the_run(app) {
        let key = app.company_with_demo_rules("acme").await;
        let other = app.company_with_demo_rules("globex").await;
        let run = app.pay_and_wait(&book_payment("acme"), &key).await;
        let run_id = run["run_id"].as_str().unwrap();
        let path = format!("/runs/{run_id}/events");

        assert_problem(app.get_as(&path, None).await, StatusCode::UNAUTHORIZED).await;
        assert_problem(app.get_as(&path, Some(&other)).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_as("/runs/run_nope/events", Some(&key)).await, StatusCode::NOT_FOUND).await;
        assert_problem(app.get_as("/companies/acme/events", Some(&other)).await, StatusCode::NOT_FOUND).await;
        assert_problem(
            app.get_as("/companies/ghost/events", Some(&app.admin_token)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        let bad = app
            .request(reqwest::Method::GET, &path, Some(&key))
            .header("last-event-id", "seven")
            .send()
            .await
            .unwrap();
        let problem = assert_problem(bad, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_paths(&problem), ["Last-Event-ID"]);

        // The admin reads any run's stream: the whole finished run, then the end.
        let mut admin = SseReader::open(&app, &path, &app.admin_token, None).await;
        let events = admin.rest().await;
        assert_eq!(events.first().unwrap().event, "run.queued");
        assert_eq!(events.last().unwrap().event, "run.finished");
    }
);

backend_test!(
    async fn a_stream_ends_when_the_key_that_opened_it_is_revoked(app) {
        let (key_id, key) = app.company_with_key("acme").await;
        let response = app.save_rules(&demo_rules("acme")).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let admin_key = app.company_with_demo_rules("globex").await;
        let run = app.pay_and_wait(&book_payment("acme"), &key).await;
        let mut company = SseReader::open(&app, "/companies/acme/events", &key, None).await;
        assert_eq!(company.next().await.expect("the stored events").event, "run.queued");
        // The admin's stream of another company, which must stay open.
        let mut admin = SseReader::open(&app, "/companies/globex/events", &app.admin_token, None).await;
        assert_eq!(app.revoke_api_key("acme", &key_id).await.status(), StatusCode::NO_CONTENT);
        // Whatever was buffered, then the end (`next` panics after 20 s).
        while company.next().await.is_some() {}
        // The revoked key opens nothing more; the admin's stream lives on.
        assert_problem(app.get_as(&format!("/runs/{}/events", run["run_id"].as_str().unwrap()), Some(&key)).await, StatusCode::UNAUTHORIZED).await;
        app.pay_and_wait(&book_payment("globex"), &admin_key).await;
        assert_eq!(admin.next().await.expect("the admin's stream lives").event, "run.queued");
    }
);
