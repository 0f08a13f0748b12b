//! `moneyflow bench`: load a running MoneyFlow over HTTP and measure it end
//! to end, as a payment provider would see it.
//!
//! It creates a company with an API key and a 14-node rule (every built-in
//! local task type, conditions on each event type), sends N events with C
//! concurrent connections, waits until every run has finished, and prints
//! accepted events/s with p50/p99 accept latency, then finished runs/s with
//! p50/p99 event-to-finished latency (from the server's own timestamps:
//! `created_at` is when the event was accepted, `finished_at` when the run
//! ended).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The server to load.
    #[arg(long, env = "MONEYFLOW_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The admin token (to create the bench company, its key and rule).
    #[arg(long, env = "MONEYFLOW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// How many events to send.
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub events: usize,
    /// How many requests in flight at once.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// Give up waiting for runs after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
}

/// The 14-node rule the benchmark runs: the original flowchart plus the
/// other event types, every built-in local task type represented.
pub fn bench_rules(company_id: &str) -> Value {
    let condition = |id: &str, field: &str, op: &str, value: Value, deps: Value| {
        json!({"node_type": "condition", "node_id": id, "depends_on": deps,
               "expect": [{"field": field, "operator": op, "value": value}]})
    };
    let task = |id: &str, name: &str, parameters: Value, deps: Value| {
        json!({"node_type": "task", "node_id": id, "depends_on": deps,
               "task_name": format!("payment.tasks.{name}"), "parameters": parameters})
    };
    let after = |id: &str| json!([{"node_id": id, "state": "success"}]);
    json!({"company_id": company_id, "rules": [
        condition("is-product", "$context.event.type", "eq", json!(["product"]), json!([])),
        task("invoice", "generate_invoice", json!({"product_id": "$context.event.product.id"}), json!([])),
        task("shipment", "generate_shipment", json!({"product_id": "$context.event.product.id"}), after("is-product")),
        condition("is-book", "$context.event.product.type", "in", json!(["book", "ebook"]), after("shipment")),
        task("slip-copy", "duplicate_shipment", json!({"department": "royalties"}), after("is-book")),
        task("royalty", "generate_royalty", json!({"product_id": "$context.event.product.id"}), after("is-book")),
        task("notify-royalties", "notify", json!({"channel": "royalties", "shipment": "$context.nodes.slip-copy.output.shipment_id"}), after("slip-copy")),
        task("commission", "generate_commission", json!({"agent_id": "$context.event.agent_id"}), after("is-product")),
        condition("is-digital", "$context.event.type", "eq", json!(["digital_product"]), json!([])),
        task("access", "grant_digital_access", json!({"product_id": "$context.event.digital_product.id"}), after("is-digital")),
        condition("is-subscription", "$context.event.type", "eq", json!(["subscription"]), json!([])),
        task("activate", "activate_subscription", json!({"subscription_id": "$context.event.subscription.id"}), after("is-subscription")),
        condition("is-big", "$context.event.total", "gte", json!([1000]), json!([])),
        task("notify-finance", "notify", json!({"channel": "email", "to": "finance@example.com"}), after("is-big"))
    ]})
}

fn event(company_id: &str, i: usize) -> Value {
    let (kind, extra) = match i % 4 {
        0 => (
            "product",
            json!({"product": {"id": format!("book-{i}"), "type": "book"}}),
        ),
        1 => (
            "product",
            json!({"product": {"id": format!("toy-{i}"), "type": "toy"}}),
        ),
        2 => (
            "digital_product",
            json!({"digital_product": {"id": format!("ebook-{i}")}}),
        ),
        _ => (
            "subscription",
            json!({"subscription": {"id": format!("sub-{i}")}}),
        ),
    };
    let mut body = json!({
        "company_id": company_id, "event_id": format!("bench-{i}"), "type": kind,
        "total": format!("{}.90", 10 + (i * 37) % 1500), "currency": "BRL", "agent_id": "agent-7"
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest-rank percentile over a sorted sample.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.events == 0 || args.concurrency == 0 {
        bail!("--events and --concurrency must be at least 1");
    }
    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .timeout(Duration::from_secs(60))
            .build()?,
        url: args.url.trim_end_matches('/').to_owned(),
    });
    let admin = args.admin_token.as_str();
    let company_id = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = client
        .post(
            "/companies",
            admin,
            &json!({"id": company_id, "name": "Benchmark"}),
        )
        .await?;
    if status != 201 {
        bail!("creating the bench company answered {status}: {body}");
    }
    let (status, body) = client
        .post(
            &format!("/companies/{company_id}/api-keys"),
            admin,
            &json!({}),
        )
        .await?;
    let key = body["key"]
        .as_str()
        .map(str::to_owned)
        .filter(|_| status == 201);
    let Some(key) = key else {
        bail!("creating the bench key answered {status}: {body}");
    };
    let (status, body) = client
        .post("/payment-rules/", admin, &bench_rules(&company_id))
        .await?;
    if status != 201 {
        bail!("saving the bench rule answered {status}: {body}");
    }
    println!(
        "MoneyFlow bench: {} events, {} connections, 14-node rule, against {}",
        args.events, args.concurrency, client.url
    );

    // Phase 1: send.
    let next = Arc::new(AtomicUsize::new(0));
    let run_ids: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::with_capacity(args.events)));
    let latencies: Arc<Mutex<Vec<Duration>>> =
        Arc::new(Mutex::new(Vec::with_capacity(args.events)));
    let rejected = Arc::new(AtomicUsize::new(0));
    let sending = bar(args.events, "accepted");
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, next, run_ids, latencies, rejected, sending, key, company_id) = (
            client.clone(),
            next.clone(),
            run_ids.clone(),
            latencies.clone(),
            rejected.clone(),
            sending.clone(),
            key.clone(),
            company_id.clone(),
        );
        let total = args.events;
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = event(&company_id, i);
                // A 503 is back-pressure: wait as asked and send the same event again.
                loop {
                    let sent = Instant::now();
                    match client.post("/payment", &key, &body).await {
                        Ok((202, answer)) => {
                            times.push(sent.elapsed());
                            if let Some(run_id) = answer["run_id"].as_str() {
                                mine.push(run_id.to_owned());
                            }
                            break;
                        }
                        Ok((503, _)) => tokio::time::sleep(Duration::from_millis(50)).await,
                        _ => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                sending.inc(1);
            }
            run_ids.lock().await.extend(mine);
            latencies.lock().await.extend(times);
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let send_time = started.elapsed();
    sending.finish();
    let run_ids = Arc::try_unwrap(run_ids)
        .map_err(|_| anyhow::anyhow!("senders still running"))?
        .into_inner();
    let mut accept = Arc::try_unwrap(latencies)
        .map_err(|_| anyhow::anyhow!("senders still running"))?
        .into_inner();
    accept.sort_unstable();

    // Phase 2: wait for every run to finish, reading the server's timestamps.
    let waiting = bar(run_ids.len(), "finished");
    let pending = Arc::new(Mutex::new(
        run_ids
            .iter()
            .cloned()
            .collect::<std::collections::VecDeque<String>>(),
    ));
    let finished: Arc<Mutex<Vec<(OffsetDateTime, OffsetDateTime, String)>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let mut pollers = Vec::new();
    for _ in 0..args.concurrency.min(32) {
        let (client, pending, finished, waiting, key) = (
            client.clone(),
            pending.clone(),
            finished.clone(),
            waiting.clone(),
            key.clone(),
        );
        pollers.push(tokio::spawn(async move {
            loop {
                let Some(run_id) = pending.lock().await.pop_front() else {
                    break;
                };
                let (status, run) = client.get(&format!("/runs/{run_id}"), &key).await?;
                let done = status == 200
                    && matches!(
                        run["status"].as_str(),
                        Some("succeeded" | "failed" | "aborted")
                    );
                if done {
                    let at = |field: &str| {
                        run[field]
                            .as_str()
                            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                    };
                    if let (Some(created), Some(ended)) = (at("created_at"), at("finished_at")) {
                        finished.lock().await.push((
                            created,
                            ended,
                            run["status"].as_str().unwrap_or("").to_owned(),
                        ));
                    }
                    waiting.inc(1);
                } else {
                    if Instant::now() > deadline {
                        bail!(
                            "runs still unfinished after the timeout (e.g. {run_id}: {})",
                            run["status"]
                        );
                    }
                    // Not done yet: look again later, after the others.
                    pending.lock().await.push_back(run_id);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for poller in pollers {
        poller.await??;
    }
    waiting.finish();
    let finished = Arc::try_unwrap(finished)
        .map_err(|_| anyhow::anyhow!("pollers still running"))?
        .into_inner();

    let first_accepted = finished.iter().map(|(c, _, _)| *c).min();
    let last_finished = finished.iter().map(|(_, f, _)| *f).max();
    let mut end_to_end: Vec<Duration> = finished
        .iter()
        .map(|(c, f, _)| (*f - *c).try_into().unwrap_or_default())
        .collect();
    end_to_end.sort_unstable();
    let succeeded = finished.iter().filter(|(_, _, s)| s == "succeeded").count();
    let span: Duration = match (first_accepted, last_finished) {
        (Some(a), Some(b)) => (b - a).try_into().unwrap_or_default(),
        _ => Duration::ZERO,
    };

    println!();
    println!("  events sent            {}", args.events);
    println!(
        "  accepted (202)         {}   rejected {}",
        accept.len(),
        rejected.load(Ordering::Relaxed)
    );
    println!(
        "  accepted events/s      {:.0}   (over {:.2} s)",
        accept.len() as f64 / send_time.as_secs_f64(),
        send_time.as_secs_f64()
    );
    println!(
        "  accept latency         p50 {}   p99 {}",
        millis(percentile(&accept, 50.0)),
        millis(percentile(&accept, 99.0))
    );
    println!(
        "  finished runs          {}   ({} succeeded)",
        finished.len(),
        succeeded
    );
    println!(
        "  finished runs/s        {:.0}   (first accept to last finish: {:.2} s)",
        finished.len() as f64 / span.as_secs_f64().max(f64::EPSILON),
        span.as_secs_f64()
    );
    println!(
        "  event→finished         p50 {}   p99 {}",
        millis(percentile(&end_to_end, 50.0)),
        millis(percentile(&end_to_end, 99.0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use moneyflow_core::catalogue::Catalogue;
    use moneyflow_core::validation::validate_rule_set;

    #[test]
    fn the_bench_rule_is_valid_and_has_14_nodes() {
        let rules = validate_rule_set(&bench_rules("bench"), Catalogue::builtin()).unwrap();
        assert_eq!(rules.rules.len(), 14);
    }

    #[test]
    fn every_bench_event_is_valid() {
        for i in 0..8 {
            assert!(
                moneyflow_core::event::validate_event(&event("bench", i)).is_ok(),
                "{i}"
            );
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sample: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sample, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&sample, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
