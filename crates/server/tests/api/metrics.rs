//! `GET /metrics`: valid Prometheus text whose counters follow the traffic.

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

/// One sample: its name and labels, and its value.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

/// Parses the Prometheus text exposition format strictly enough to catch a
/// malformed line: `# HELP name text`, `# TYPE name kind` (once per family,
/// before its samples), and `name{label="value",…} number`.
fn parse_prometheus(text: &str) -> Samples {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Samples::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let keyword = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("no metric name: {line:?}"));
            assert!(valid_name(name), "bad metric name in {line:?}");
            match keyword {
                "HELP" => assert!(
                    parts.next().is_some_and(|h| !h.is_empty()),
                    "empty HELP: {line:?}"
                ),
                "TYPE" => {
                    let kind = parts.next().unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad TYPE: {line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "TYPE twice: {name}"
                    );
                }
                _ => panic!("unknown comment keyword: {line:?}"),
            }
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "bad line: {line:?}"
        );
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => (
                name,
                parse_labels(
                    rest.strip_suffix('}')
                        .unwrap_or_else(|| panic!("unclosed labels: {line:?}")),
                    line,
                ),
            ),
        };
        assert!(valid_name(name), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        if types[family] == "counter" {
            assert!(value >= 0.0, "negative counter: {line:?}");
        }
        samples.insert((name.to_owned(), labels), value);
    }
    samples
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_labels(text: &str, line: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line:?}"));
        assert!(
            valid_name(name) && !name.contains(':'),
            "bad label name in {line:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line:?}"),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = (
        name.to_owned(),
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    *samples
        .get(&key)
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

async fn scrape(app: &TestApp) -> Samples {
    let response = app.get_as("/metrics", Some(&app.admin_token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse_prometheus(&response.text().await.unwrap())
}

backend_test!(
    async fn metrics_parse_as_prometheus_text_and_follow_the_traffic(app) {
        let before = scrape(&app).await;
        assert_eq!(value(&before, "moneyflow_events_accepted_total", &[]), 0.0);
        assert_eq!(value(&before, "moneyflow_events_rejected_total", &[("reason", "validation")]), 0.0);

        let key = app.company_with_demo_rules("acme").await;
        let (_, bare_key) = app.company_with_key("bare").await;
        let mut runs = Vec::new();
        for i in 0..3 {
            let mut event = book_payment("acme");
            event["event_id"] = json!(format!("evt-{i}"));
            let response = app.post_payment(&event, Some(&key)).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            runs.push(json_body(response).await["run_id"].as_str().unwrap().to_owned());
        }
        // A replay is not a new event.
        let mut replay = book_payment("acme");
        replay["event_id"] = json!("evt-0");
        assert_eq!(app.post_payment(&replay, Some(&key)).await.status(), StatusCode::ACCEPTED);
        // Rejections, one per reason.
        let mut invalid = book_payment("acme");
        invalid.as_object_mut().unwrap().remove("total");
        assert_eq!(app.post_payment(&invalid, Some(&key)).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.post_payment(&book_payment("acme"), Some("mfk_nope")).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.post_payment(&book_payment("bare"), Some(&bare_key)).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let mut reused = book_payment("acme");
        reused["event_id"] = json!("evt-1");
        reused["total"] = json!("1.00");
        assert_eq!(app.post_payment(&reused, Some(&key)).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        for run in &runs {
            assert_eq!(app.wait_for_run(run, &key).await["status"], "succeeded");
        }

        let after = scrape(&app).await;
        let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
        assert_eq!(delta("moneyflow_events_accepted_total", &[]), 3.0);
        assert_eq!(delta("moneyflow_events_replayed_total", &[]), 1.0);
        for reason in ["validation", "auth", "no_rule_set", "idempotency_conflict"] {
            assert_eq!(delta("moneyflow_events_rejected_total", &[("reason", reason)]), 1.0, "{reason}");
        }
        assert_eq!(delta("moneyflow_events_rejected_total", &[("reason", "unavailable")]), 0.0);
        assert_eq!(delta("moneyflow_runs_finished_total", &[("outcome", "succeeded")]), 3.0);
        assert_eq!(value(&after, "moneyflow_runs_finished_total", &[("outcome", "failed")]), 0.0);
        let invoices = value(
            &after,
            "moneyflow_task_duration_seconds_count",
            &[("task", "payment.tasks.generate_shipment")],
        );
        assert_eq!(invoices, 3.0, "one shipment per run");
        assert_eq!(
            value(&after, "moneyflow_task_duration_seconds_bucket", &[("task", "payment.tasks.generate_shipment"), ("le", "+Inf")]),
            invoices
        );
        assert!(value(&after, "moneyflow_steps_total", &[]) >= 3.0);
        assert!(value(&after, "moneyflow_store_write_batches_total", &[]) > value(&before, "moneyflow_store_write_batches_total", &[]));
        assert_eq!(value(&after, "moneyflow_store_up", &[]), 1.0);
        assert_eq!(value(&after, "moneyflow_queue_depth", &[]), 0.0);
        assert_eq!(value(&after, "moneyflow_queue_oldest_due_age_seconds", &[]), 0.0);
        // What `moneyflow bench` divides by the runs.
        assert!(value(&after, "process_cpu_seconds_total", &[]) > 0.0);
        assert!(value(&after, "process_resident_memory_bytes", &[]) > 1_000_000.0);
        assert!(value(&after, "moneyflow_store_bytes", &[]) > 0.0);
    }
);

#[test]
fn the_parser_refuses_malformed_exposition() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\\\"\"} 2\n";
    assert_eq!(parse_prometheus(good).len(), 1);
    for bad in [
        "a_total 1\n",                           // no TYPE
        "# TYPE a gauge\na{x=1} 1\n",            // unquoted label
        "# TYPE a gauge\na one\n",               // bad value
        "# TYPE a gauge\n# TYPE a gauge\na 1\n", // TYPE twice
        "# TYPE 1a gauge\n",                     // bad name
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(),
            "{bad:?}"
        );
    }
}

backend_test!(
    async fn metrics_need_the_admin_token_or_the_metrics_token(app) {
        let key = app.company_with_demo_rules("acme").await;
        assert_problem(app.get_as("/metrics", None).await, StatusCode::UNAUTHORIZED).await;
        assert_problem(app.get_as("/metrics", Some("mft_wrong")).await, StatusCode::UNAUTHORIZED).await;
        assert_problem(app.get_as("/metrics", Some(&key)).await, StatusCode::FORBIDDEN).await;
        assert_eq!(app.get_as("/metrics", Some(&app.admin_token)).await.status(), StatusCode::OK);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_metrics_token_reads_metrics_and_nothing_else() {
    let app = spawn_app_with_config(Backend::Sqlite, |config| {
        config.metrics_token = Some(moneyflow_server::secret::SecretString::new("mft_scraper"));
    })
    .await;
    assert_eq!(
        app.get_as("/metrics", Some("mft_scraper")).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.get_as("/companies", Some("mft_scraper")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
