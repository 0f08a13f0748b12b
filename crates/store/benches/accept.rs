//! Throughput of the store's hot writes on SQLite (`moneyflow up`'s store,
//! WAL, synchronous=FULL), with group commit batching concurrent callers:
//!
//! - `accept_event/sqlite_256_callers`: 256 concurrent callers, as the
//!   router's connections would be, each waiting for its durable answer. One
//!   iteration accepts 10,000 events; criterion reports events/s.
//! - `run_cycle/sqlite_4_workers`: the orchestrator's side for runs that
//!   finish in one step: 4 workers claim 64 runs at a time, load them and
//!   commit each (one document, `Done`) concurrently. One iteration finishes
//!   10,000 runs (accepted beforehand, untimed); criterion reports runs/s.
//!
//! Run with `cargo bench -p moneyflow-store --bench accept`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use moneyflow_core::ports::{
    AcceptOutcome, CompanyStore, Document, EventStore, NewEvent, QueueNext, RunStore, StepCommit,
};
use moneyflow_core::run::RunStatus;
use moneyflow_store::Store;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

const CALLERS: u64 = 256;
const EVENTS_PER_ITERATION: u64 = 10_000;

/// A payment event of realistic size (~600 bytes).
const BODY: &str = r#"{"company_id":"bench","event_id":"EVENT","type":"product","currency":"EUR",
"total":"120.00","discount":"0.00","tax":"22.80","fees":"3.10",
"product":{"id":"sku-1234","name":"Rust in Action","type":"book","author_id":"auth-9","quantity":1},
"customer":{"id":"cus-42","email":"reader@example.com","address":{"line1":"1 Main St","city":"Lisbon","country":"PT"}},
"agent":{"id":"agent-7","commission_rate":"0.05"},"metadata":{"channel":"web","campaign":"spring"}}"#;

fn new_event(n: u64) -> NewEvent {
    let id = format!("evt-{n:012}");
    NewEvent {
        company_id: "bench".to_owned(),
        event_id: id.clone(),
        idempotency_key: id.clone(),
        webhook_id: None,
        body_sha256: format!("{n:064x}"),
        body: BODY.replace("EVENT", &id),
        event_type: "product".to_owned(),
        rule_version: 1,
        run_id: format!("run-{n:012}"),
        received_at: OffsetDateTime::now_utc(),
    }
}

/// Accepts `EVENTS_PER_ITERATION` fresh events from `CALLERS` tasks.
async fn accept_batch(store: &Store, next: &Arc<AtomicU64>) {
    let per_caller = EVENTS_PER_ITERATION / CALLERS;
    let extra = EVENTS_PER_ITERATION % CALLERS;
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let store = store.clone();
            let next = next.clone();
            let count = per_caller + u64::from(caller < extra);
            tokio::spawn(async move {
                for _ in 0..count {
                    let event = new_event(next.fetch_add(1, Ordering::Relaxed));
                    match store.accept_event(event).await {
                        Ok(AcceptOutcome::Accepted { .. }) => {}
                        other => panic!("accept failed: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller panicked");
    }
}

/// Finishes every queued run: `WORKERS` workers claim, load and commit.
async fn finish_all(store: &Store) -> u64 {
    const WORKERS: usize = 4;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{w}");
                let mut finished = 0;
                loop {
                    let now = OffsetDateTime::now_utc();
                    let ids = store
                        .claim_runs(&owner, 64, Duration::from_secs(60), now)
                        .await
                        .expect("claim");
                    if ids.is_empty() {
                        return finished;
                    }
                    let work = store.load_runs(&ids).await.expect("load");
                    let commits: Vec<_> = work
                        .into_iter()
                        .map(|w| {
                            let store = store.clone();
                            let owner = owner.clone();
                            tokio::spawn(async move {
                                store
                                    .commit_step(finished_step(&w.run.run_id, &owner, &w.event))
                                    .await
                            })
                        })
                        .collect();
                    for commit in commits {
                        commit.await.expect("a commit panicked").expect("commit");
                        finished += 1;
                    }
                }
            })
        })
        .collect();
    let mut finished = 0;
    for worker in workers {
        finished += worker.await.expect("a worker panicked");
    }
    finished
}

/// A one-step run's result: a few node checkpoints and an invoice.
fn finished_step(run_id: &str, owner: &str, event: &Value) -> StepCommit {
    let now = OffsetDateTime::now_utc();
    let mut nodes = Map::new();
    for node in ["is_product", "invoice", "royalty", "notify"] {
        nodes.insert(
            node.to_owned(),
            json!({"state": "success", "attempts": 1, "output": {"ok": true}}),
        );
    }
    StepCommit {
        run_id: run_id.to_owned(),
        owner: owner.to_owned(),
        status: RunStatus::Succeeded,
        nodes,
        started_at: Some(now),
        finished_at: Some(now),
        documents: vec![Document {
            key: format!("{run_id}:invoice"),
            run_id: run_id.to_owned(),
            company_id: "bench".to_owned(),
            node_id: "invoice".to_owned(),
            kind: "invoice".to_owned(),
            body: json!({"number": run_id, "total": event["total"]}),
            created_at: now,
        }],
        next: QueueNext::Done,
        events: Vec::new(),
    }
}

fn accept(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("build the runtime");
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = runtime.block_on(async {
        let store = Store::open_data_dir(dir.path())
            .await
            .expect("open the store");
        store.migrate().await.expect("migrate");
        store
            .create_company("bench", "Bench")
            .await
            .expect("create the company");
        store
    });
    let next = Arc::new(AtomicU64::new(0));

    let mut group = c.benchmark_group("accept_event");
    group.throughput(Throughput::Elements(EVENTS_PER_ITERATION));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("sqlite_256_callers", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let batches_before = store.write_batches();
                let started = Instant::now();
                for _ in 0..iterations {
                    accept_batch(&store, &next).await;
                }
                let elapsed = started.elapsed();
                let batches = store.write_batches() - batches_before;
                let events = iterations * EVENTS_PER_ITERATION;
                eprintln!(
                    "  {events} events in {batches} commits ({:.0} per commit), {:.0} events/s",
                    events as f64 / batches.max(1) as f64,
                    events as f64 / elapsed.as_secs_f64()
                );
                elapsed
            })
        });
    });
    group.finish();

    let mut group = c.benchmark_group("run_cycle");
    group.throughput(Throughput::Elements(EVENTS_PER_ITERATION));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("sqlite_4_workers", |b| {
        b.iter_custom(|iterations| {
            runtime.block_on(async {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    // Whatever is queued (the accept benchmark's runs too)
                    // is finished untimed first.
                    finish_all(&store).await;
                    accept_batch(&store, &next).await;
                    let batches_before = store.write_batches();
                    let started = Instant::now();
                    let finished = finish_all(&store).await;
                    let took = started.elapsed();
                    elapsed += took;
                    let batches = store.write_batches() - batches_before;
                    eprintln!(
                        "  {finished} runs in {batches} commits ({:.0} writes per commit), {:.0} runs/s",
                        // Each run: its share of a claim, and its step.
                        finished as f64 / batches.max(1) as f64,
                        finished as f64 / took.as_secs_f64()
                    );
                    assert_eq!(finished, EVENTS_PER_ITERATION);
                }
                elapsed
            })
        });
    });
    group.finish();
    drop(store);
}

criterion_group!(benches, accept);
criterion_main!(benches);
