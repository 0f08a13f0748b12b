//! `moneyflow bench`: load a running MoneyFlow over HTTP and measure it end
//! to end, as a payment provider would see it.
//!
//! It creates a company with an API key and a 14-node rule (every built-in
//! local task type, conditions on each event type), sends the events —
//! closed loop with `-c` connections, or open loop at `--rate` events per
//! second for `--duration` seconds — waits until the server's run queue is
//! empty, and reports accepted events/s with p50/p99 accept latency,
//! finished runs/s with p50/p99 event-to-finished latency (from the
//! server's own timestamps: `created_at` is when the event was accepted,
//! `finished_at` when the run ended), and from the server's `/metrics`: its
//! CPU time and store growth per run and its resident memory. `--json`
//! prints the same as one JSON object.
//!
//! - `load.rs`: the HTTP client and the two ways of sending;
//! - `server.rs`: `/metrics` scrapes, the wait for the queue, the runs list;
//! - `report.rs`: the figures, as text or JSON.
//!
//! The server should run nothing but the bench: the queue depth and the
//! process gauges are the whole server's.

mod load;
mod report;
mod server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use load::Client;
pub use report::Report;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The server to load.
    #[arg(long, env = "MONEYFLOW_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The admin token (to create the bench company, its key and rule, and to read /metrics).
    #[arg(long, env = "MONEYFLOW_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
    /// How many events to send (with `--rate` and `--duration`: rate × duration).
    #[arg(long, short = 'n', default_value_t = 20_000)]
    pub events: usize,
    /// How many requests in flight at once (closed loop).
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: start this many events per second on a fixed schedule,
    /// whatever the answers do.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: for this many seconds (events = rate × duration).
    #[arg(long, requires = "rate")]
    pub duration: Option<f64>,
    /// Send the events and stop, without waiting for their runs (e.g. a
    /// server whose runs are held back, to measure a backlog).
    #[arg(long)]
    pub send_only: bool,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
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

fn bar(len: usize, what: &str, hidden: bool) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if hidden {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_owned());
    bar
}

/// Creates the bench company, its key and the 14-node rule; returns the
/// company id and the key.
async fn set_up(client: &Client, admin: &str) -> anyhow::Result<(String, String)> {
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
    // The bench measures the engine, not the rate limit: lift it for the
    // bench company.
    let (status, body) = client
        .put(
            &format!("/companies/{company_id}/limits"),
            admin,
            &json!({"payments_per_second": 1_000_000, "payments_burst": 1_000_000}),
        )
        .await?;
    if status != 200 {
        bail!("lifting the bench company's rate limit answered {status}: {body}");
    }
    let (status, body) = client
        .post("/payment-rules/", admin, &bench_rules(&company_id))
        .await?;
    if status != 201 {
        bail!("saving the bench rule answered {status}: {body}");
    }
    Ok((company_id, key))
}

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let events = match (args.rate, args.duration) {
        (Some(rate), _) if !(rate.is_finite() && rate > 0.0) => {
            bail!("--rate must be a number of events per second above 0")
        }
        (Some(rate), Some(duration)) if duration.is_finite() && duration > 0.0 => {
            // A whole number of events, at least one.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let events = (rate * duration).round().max(1.0) as usize;
            events
        }
        (_, Some(_)) => bail!("--duration must be a number of seconds above 0"),
        _ => args.events,
    };
    if events == 0 || args.concurrency == 0 {
        bail!("--events and --concurrency must be at least 1");
    }
    let client = Arc::new(Client::new(&args.url, args.concurrency)?);
    let admin = args.admin_token.as_str();
    let (company_id, key) = set_up(&client, admin).await?;
    let setup = report::Setup {
        url: &client.url,
        events,
        concurrency: args.rate.is_none().then_some(args.concurrency),
        rate: args.rate,
    };
    if !args.json {
        match args.rate {
            Some(rate) => println!(
                "MoneyFlow bench: {events} events at {rate} events/s (open loop), 14-node rule, against {}",
                client.url
            ),
            None => println!(
                "MoneyFlow bench: {events} events, {} connections, 14-node rule, against {}",
                args.concurrency, client.url
            ),
        }
    }
    let bodies: Vec<Value> = (0..events).map(|i| event(&company_id, i)).collect();
    let before = server::scrape(&client, admin).await?;

    let sending = bar(events, "accepted", args.json);
    let sent = match args.rate {
        Some(rate) => load::open_loop(client.clone(), &key, bodies, rate, &sending).await,
        None => load::closed_loop(client.clone(), &key, bodies, args.concurrency, &sending).await,
    };
    sending.finish();

    let report = if args.send_only {
        let after = server::scrape(&client, admin).await?;
        report::build(&setup, &sent, &before, &after, None)
    } else {
        let accepted = sent.accept_latencies.len();
        let waiting = bar(accepted, "finished", args.json);
        let after = server::wait_until_drained(
            &client,
            admin,
            accepted,
            Duration::from_secs(args.timeout_seconds),
            &waiting,
        )
        .await?;
        waiting.finish();
        let reading = bar(accepted, "read", args.json);
        let finished = server::finished_runs(&client, &key, &company_id, &reading).await?;
        reading.finish();
        report::build(&setup, &sent, &before, &after, Some(&finished))
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        report.print();
    }
    Ok(report)
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
}
