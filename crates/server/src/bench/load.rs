//! Sending the bench's events: closed loop (C connections, each sending its
//! next event when the previous one is answered) or open loop (events start
//! on a fixed schedule whatever the answers do, so a slow answer cannot
//! hold back the requests behind it: latencies are free of coordinated
//! omission, measured from when each request was due).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use serde_json::Value;
use tokio::sync::Mutex;

/// The bench's HTTP client for one server.
pub(super) struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    pub fn new(url: &str, connections: usize) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(connections)
                .timeout(Duration::from_secs(60))
                .build()?,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send_json(reqwest::Method::PUT, path, token, body)
            .await
    }

    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get_text(&self, path: &str, token: &str) -> anyhow::Result<(u16, String)> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let (status, text) = self.get_text(path, token).await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// What the send phase saw.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// Each accepted event's latency, from when it was due to its 202.
    pub accept_latencies: Vec<Duration>,
    pub rejected: usize,
    pub elapsed: Duration,
}

/// One event posted until it is accepted or refused; a 503 is back-pressure:
/// wait a moment and send the same event again. Returns whether it was accepted.
async fn send_one(client: &Client, key: &str, body: &Value) -> bool {
    loop {
        match client.post("/payment", key, body).await {
            Ok((202, _)) => return true,
            Ok((503 | 429, _)) => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => return false,
        }
    }
}

/// `events` events over `connections` connections, each sending its next
/// one when the previous one is answered.
pub(super) async fn closed_loop(
    client: Arc<Client>,
    key: &str,
    events: Vec<Value>,
    connections: usize,
    progress: &ProgressBar,
) -> Sent {
    let events = Arc::new(events);
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, events, next, sent, progress, key) = (
            client.clone(),
            events.clone(),
            next.clone(),
            sent.clone(),
            progress.clone(),
            key.to_owned(),
        );
        workers.push(tokio::spawn(async move {
            let mut mine = Sent::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = events.get(i) else { break };
                let due = Instant::now();
                if send_one(&client, &key, body).await {
                    mine.accept_latencies.push(due.elapsed());
                } else {
                    mine.rejected += 1;
                }
                progress.inc(1);
            }
            let mut sent = sent.lock().await;
            sent.accept_latencies.extend(mine.accept_latencies);
            sent.rejected += mine.rejected;
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    finish(sent, started).await
}

/// `events` events at `rate` per second, each started when it is due
/// whether or not earlier ones were answered.
pub(super) async fn open_loop(
    client: Arc<Client>,
    key: &str,
    events: Vec<Value>,
    rate: f64,
    progress: &ProgressBar,
) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let started = Instant::now();
    let mut requests = Vec::with_capacity(events.len());
    for (i, body) in events.into_iter().enumerate() {
        // Event counts stay far below 2^53: exact in an f64.
        #[allow(clippy::cast_precision_loss)]
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, sent, progress, key) = (
            client.clone(),
            sent.clone(),
            progress.clone(),
            key.to_owned(),
        );
        requests.push(tokio::spawn(async move {
            let accepted = send_one(&client, &key, &body).await;
            let latency = due.elapsed();
            let mut sent = sent.lock().await;
            if accepted {
                sent.accept_latencies.push(latency);
            } else {
                sent.rejected += 1;
            }
            progress.inc(1);
        }));
    }
    for request in requests {
        let _ = request.await;
    }
    finish(sent, started).await
}

async fn finish(sent: Arc<Mutex<Sent>>, started: Instant) -> Sent {
    let mut sent = std::mem::take(&mut *sent.lock().await);
    sent.elapsed = started.elapsed();
    sent.accept_latencies.sort_unstable();
    sent
}
