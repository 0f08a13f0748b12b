//! The orchestrator against a real store: every test runs on SQLite and on
//! PostgreSQL. Test-only tasks (sleep, flaky, always failing, counting) are
//! registered beside the built-in ones through the public task interface.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use moneyflow_core::catalogue::{ParamSpec, ParamType, TaskSpec};
use moneyflow_core::ports::{
    AcceptOutcome, CompanyStore, EventStore, NewEvent, RuleStore, RunRecord, RunStore,
};
use moneyflow_core::run::{NodeState, RunStatus};
use moneyflow_engine::executor::Executor;
use moneyflow_engine::http::HttpPolicy;
use moneyflow_engine::task::{Registry, Task, TaskError, TaskInput, TaskOutput};
use moneyflow_engine::{Clock, Orchestrator, OrchestratorConfig};
use moneyflow_store::Store;
use serde_json::{Value, json};
use time::OffsetDateTime;

macro_rules! engine_test {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let test_store = moneyflow_store::testing::fresh_sqlite().await;
                let $store: Store = (*test_store).clone();
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let test_store = moneyflow_store::testing::fresh_postgres().await;
                let $store: Store = (*test_store).clone();
                $body
            }
        }
    };
}

fn spec(name: &'static str) -> TaskSpec {
    TaskSpec {
        name,
        title: name,
        description: "test task",
        params: vec![ParamSpec {
            name: "label",
            kind: ParamType::Any,
            required: false,
            description: "anything",
        }],
        open_params: true,
        output: &[],
    }
}

/// Sleeps `ms` milliseconds (a remote task: the engine checkpoints first).
struct Sleep(TaskSpec);

#[async_trait]
impl Task for Sleep {
    fn spec(&self) -> &TaskSpec {
        &self.0
    }
    fn is_remote(&self) -> bool {
        true
    }
    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let ms = input.param("ms").and_then(Value::as_u64).unwrap_or(100);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(TaskOutput::new(json!({"slept_ms": ms})))
    }
}

/// Fails (retryably) on its first `fail` attempts, then succeeds; counts executions per node.
#[derive(Default)]
struct Counting {
    executions: Mutex<HashMap<String, u32>>,
}

impl Counting {
    fn executions(&self, key: &str) -> u32 {
        self.executions
            .lock()
            .unwrap()
            .get(key)
            .copied()
            .unwrap_or(0)
    }
}

struct Flaky(TaskSpec, Arc<Counting>);

#[async_trait]
impl Task for Flaky {
    fn spec(&self) -> &TaskSpec {
        &self.0
    }
    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        *self
            .1
            .executions
            .lock()
            .unwrap()
            .entry(input.idempotency_key.to_owned())
            .or_default() += 1;
        let fail = input.param("fail").and_then(Value::as_u64).unwrap_or(0);
        if u64::from(input.attempt) <= fail {
            return Err(TaskError::retryable(format!(
                "attempt {} fails on purpose",
                input.attempt
            )));
        }
        Ok(TaskOutput::new(json!({"attempt": input.attempt}))
            .with_document("test", json!({"node": input.node_id})))
    }
}

fn registry(counting: &Arc<Counting>) -> Arc<Registry> {
    let mut registry = Registry::builtin(HttpPolicy::default());
    registry.register(Arc::new(Sleep(spec("test.sleep"))));
    registry.register(Arc::new(Flaky(spec("test.flaky"), counting.clone())));
    Arc::new(registry)
}

async fn save_rules(store: &Store, registry: &Registry, rules: Value) -> i64 {
    if store.get_company("acme").await.unwrap().is_none() {
        store.create_company("acme", "Acme").await.unwrap();
    }
    let input = json!({"company_id": "acme", "rules": rules});
    let rule_set = moneyflow_core::validation::validate_rule_set(&input, registry.catalogue())
        .unwrap_or_else(|report| panic!("invalid test rules: {report:#?}"));
    let saved = store
        .save_rule_version("acme", &rule_set.to_json(), rule_set.rules.len() as i64)
        .await
        .unwrap();
    saved.version
}

async fn enqueue(store: &Store, version: i64, event: Value, now: OffsetDateTime) -> String {
    let n = uuid::Uuid::now_v7().simple().to_string();
    let outcome = store
        .accept_event(NewEvent {
            company_id: "acme".into(),
            event_id: format!("evt_{n}"),
            idempotency_key: format!("evt_{n}"),
            webhook_id: None,
            body_sha256: "0".repeat(64),
            body: event.to_string(),
            event_type: event["type"].as_str().unwrap_or("product").into(),
            rule_version: version,
            run_id: format!("run_{n}"),
            received_at: now,
        })
        .await
        .unwrap();
    match outcome {
        AcceptOutcome::Accepted { run_id, .. } => run_id,
        other => panic!("not accepted: {other:?}"),
    }
}

async fn wait_finished(store: &Store, run_id: &str) -> RunRecord {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let run = store.get_run(run_id).await.unwrap().expect("run exists");
        if run.status.is_terminal() {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run_id} did not finish: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn node<'a>(run: &'a RunRecord, id: &str) -> &'a Value {
    run.nodes
        .get(id)
        .unwrap_or_else(|| panic!("node {id} in {:?}", run.nodes))
}

fn state(run: &RunRecord, id: &str) -> NodeState {
    serde_json::from_value(node(run, id)["state"].clone()).unwrap()
}

fn timestamp(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(
        value.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

fn start(store: &Store, registry: Arc<Registry>) -> moneyflow_engine::OrchestratorHandle {
    Orchestrator::new(
        store.clone(),
        registry,
        OrchestratorConfig::default(),
        Clock::System,
    )
    .spawn()
}

engine_test!(independent_tasks_overlap_in_time, |store| {
    let counting = Arc::new(Counting::default());
    let registry = registry(&counting);
    let version = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "slow-a", "task_name": "test.sleep", "parameters": {"ms": 300}},
        {"node_type": "task", "node_id": "slow-b", "task_name": "test.sleep", "parameters": {"ms": 300}}
    ]))
    .await;
    let orchestrator = start(&store, registry);
    let run_id = enqueue(
        &store,
        version,
        json!({"type": "product", "total": 1}),
        OffsetDateTime::now_utc(),
    )
    .await;
    orchestrator.waker().notify_one();
    let run = wait_finished(&store, &run_id).await;
    orchestrator.shutdown().await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let (a, b) = (node(&run, "slow-a"), node(&run, "slow-b"));
    let (a_start, a_end) = (timestamp(&a["started_at"]), timestamp(&a["finished_at"]));
    let (b_start, b_end) = (timestamp(&b["started_at"]), timestamp(&b["finished_at"]));
    assert!(
        b_start < a_end && a_start < b_end,
        "no overlap: a {a_start}..{a_end}, b {b_start}..{b_end}"
    );
});

engine_test!(a_flaky_task_succeeds_on_the_backoff_schedule, |store| {
    let counting = Arc::new(Counting::default());
    let registry = registry(&counting);
    let version = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "flaky", "task_name": "test.flaky", "parameters": {"fail": 2},
         "retry": {"max_attempts": 5, "initial_backoff_ms": 1000, "max_backoff_ms": 60000}}
    ]))
    .await;
    let clock = Clock::manual();
    let executor = Executor::new(store.clone(), registry.clone(), clock.clone());
    let run_id = enqueue(
        &store,
        version,
        json!({"type": "product", "total": 1}),
        clock.now(),
    )
    .await;
    let rules = compiled(&store, &registry, version).await;
    let company = json!({"id": "acme"});
    let lease = Duration::from_secs(60);

    // Attempt 1 fails: the retry is due after the first backoff, 500..1000 ms (equal jitter).
    let t0 = clock.now();
    assert_eq!(
        store.claim_runs("w", 10, lease, clock.now()).await.unwrap(),
        vec![run_id.clone()]
    );
    let work = store
        .load_runs(std::slice::from_ref(&run_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        executor.step(&work, &rules, &company, "w").await.unwrap(),
        RunStatus::Running
    );
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(state(&run, "flaky"), NodeState::Pending);
    let due1 = timestamp(&node(&run, "flaky")["next_attempt_at"]);
    let wait1 = (due1 - t0).whole_milliseconds();
    assert!((500..=1000).contains(&wait1), "first backoff {wait1} ms");
    // Not claimable before it is due, and no worker holds it meanwhile.
    clock.advance(Duration::from_millis(wait1 as u64 - 1));
    assert!(
        store
            .claim_runs("w", 10, lease, clock.now())
            .await
            .unwrap()
            .is_empty()
    );
    clock.advance(Duration::from_millis(1));

    // Attempt 2 fails: the second backoff is 1000..2000 ms.
    let t1 = clock.now();
    assert_eq!(
        store.claim_runs("w", 10, lease, clock.now()).await.unwrap(),
        vec![run_id.clone()]
    );
    let work = store
        .load_runs(std::slice::from_ref(&run_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        executor.step(&work, &rules, &company, "w").await.unwrap(),
        RunStatus::Running
    );
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    let due2 = timestamp(&node(&run, "flaky")["next_attempt_at"]);
    let wait2 = (due2 - t1).whole_milliseconds();
    assert!((1000..=2000).contains(&wait2), "second backoff {wait2} ms");
    clock.advance(Duration::from_millis(wait2 as u64));

    // Attempt 3 succeeds.
    assert_eq!(
        store.claim_runs("w", 10, lease, clock.now()).await.unwrap(),
        vec![run_id.clone()]
    );
    let work = store
        .load_runs(std::slice::from_ref(&run_id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        executor.step(&work, &rules, &company, "w").await.unwrap(),
        RunStatus::Succeeded
    );
    let run = store.get_run(&run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(state(&run, "flaky"), NodeState::Success);
    assert_eq!(node(&run, "flaky")["attempts"], json!(3));
    assert_eq!(counting.executions(&format!("{run_id}:flaky")), 3);
    assert_eq!(store.list_documents(&run_id).await.unwrap().len(), 1);
    assert!(
        store
            .claim_runs("w", 10, lease, clock.now() + Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
});

async fn compiled(
    store: &Store,
    registry: &Registry,
    version: i64,
) -> moneyflow_core::run::CompiledRules {
    let stored = store
        .get_rule_version("acme", version)
        .await
        .unwrap()
        .unwrap();
    let rule_set =
        moneyflow_core::validation::validate_rule_set(&stored.rules, registry.catalogue()).unwrap();
    moneyflow_core::run::CompiledRules::compile(&rule_set).unwrap()
}

engine_test!(
    a_task_that_always_fails_fails_the_run_unless_its_failure_is_handled,
    |store| {
        let counting = Arc::new(Counting::default());
        let registry = registry(&counting);
        let fast_retry = json!({"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 1});
        let unhandled = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "doomed", "task_name": "test.flaky", "parameters": {"fail": 99}, "retry": fast_retry},
        {"node_type": "task", "node_id": "after", "task_name": "payment.tasks.notify", "parameters": {"channel": "email"},
         "depends_on": [{"node_id": "doomed", "state": "success"}]}
    ]))
    .await;
        let orchestrator = start(&store, registry.clone());
        let run_id = enqueue(
            &store,
            unhandled,
            json!({"type": "product", "total": 1}),
            OffsetDateTime::now_utc(),
        )
        .await;
        orchestrator.waker().notify_one();
        let run = wait_finished(&store, &run_id).await;
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(state(&run, "doomed"), NodeState::Failure);
        assert_eq!(node(&run, "doomed")["attempts"], json!(2));
        assert_eq!(node(&run, "doomed")["error"]["retryable"], json!(true));
        assert_eq!(state(&run, "after"), NodeState::Skipped);

        let handled = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "doomed", "task_name": "test.flaky", "parameters": {"fail": 99}, "retry": fast_retry},
        {"node_type": "task", "node_id": "fallback", "task_name": "payment.tasks.notify", "parameters": {"channel": "email"},
         "depends_on": [{"node_id": "doomed", "state": "failure"}]}
    ]))
    .await;
        let run_id = enqueue(
            &store,
            handled,
            json!({"type": "product", "total": 1}),
            OffsetDateTime::now_utc(),
        )
        .await;
        orchestrator.waker().notify_one();
        let run = wait_finished(&store, &run_id).await;
        orchestrator.shutdown().await;
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(state(&run, "fallback"), NodeState::Success);
    }
);

engine_test!(a_task_over_its_timeout_is_retried_then_fails, |store| {
    let counting = Arc::new(Counting::default());
    let registry = registry(&counting);
    let version = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "slow", "task_name": "test.sleep", "parameters": {"ms": 5000}, "timeout_ms": 50,
         "retry": {"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 1}}
    ]))
    .await;
    let orchestrator = start(&store, registry);
    let run_id = enqueue(
        &store,
        version,
        json!({"type": "product", "total": 1}),
        OffsetDateTime::now_utc(),
    )
    .await;
    orchestrator.waker().notify_one();
    let run = wait_finished(&store, &run_id).await;
    orchestrator.shutdown().await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(node(&run, "slow")["attempts"], json!(2));
    assert_eq!(
        node(&run, "slow")["error"]["message"],
        json!("timed out after 50 ms")
    );
});

engine_test!(abort_flow_skips_what_has_not_finished, |store| {
    let counting = Arc::new(Counting::default());
    let registry = registry(&counting);
    let version = save_rules(&store, &registry, json!([
        {"node_type": "condition", "node_id": "is-product", "expect": [{"field": "$context.event.type", "operator": "eq", "value": ["product"]}]},
        {"node_type": "task", "node_id": "stop", "task_name": "payment.tasks.abort_flow", "parameters": {"reason": "not a product"},
         "depends_on": [{"node_id": "is-product", "state": "failure"}]},
        {"node_type": "task", "node_id": "later", "task_name": "payment.tasks.notify", "parameters": {"channel": "email"},
         "depends_on": [{"node_id": "stop", "state": "success"}]}
    ]))
    .await;
    let orchestrator = start(&store, registry);
    let run_id = enqueue(
        &store,
        version,
        json!({"type": "service", "total": 1}),
        OffsetDateTime::now_utc(),
    )
    .await;
    orchestrator.waker().notify_one();
    let run = wait_finished(&store, &run_id).await;
    orchestrator.shutdown().await;
    assert_eq!(run.status, RunStatus::Aborted);
    assert_eq!(state(&run, "is-product"), NodeState::Failure);
    assert_eq!(state(&run, "stop"), NodeState::Success);
    assert_eq!(state(&run, "later"), NodeState::Skipped);
    assert!(store.list_documents(&run_id).await.unwrap().is_empty());
});

engine_test!(
    later_nodes_read_earlier_outputs_and_a_resumed_run_skips_completed_nodes,
    |store| {
        let counting = Arc::new(Counting::default());
        let registry = registry(&counting);
        let version = save_rules(&store, &registry, json!([
        {"node_type": "task", "node_id": "first", "task_name": "test.flaky", "parameters": {"fail": 0}},
        {"node_type": "task", "node_id": "wait", "task_name": "test.sleep", "parameters": {"ms": 300},
         "depends_on": [{"node_id": "first", "state": "success"}]},
        {"node_type": "task", "node_id": "second", "task_name": "test.flaky",
         "parameters": {"fail": 0, "label": "$context.nodes.first.output.attempt"},
         "depends_on": [{"node_id": "wait", "state": "success"}]}
    ]))
    .await;
        let clock = Clock::manual();
        let rules = compiled(&store, &registry, version).await;
        let company = json!({"id": "acme"});
        let run_id = enqueue(
            &store,
            version,
            json!({"type": "product", "total": 1}),
            clock.now(),
        )
        .await;
        let lease = Duration::from_secs(60);

        // Worker A runs the step; its checkpoint before the remote `wait` task
        // commits `first`. Then it "dies": its final commit is rejected because
        // its lease was taken over meanwhile.
        assert_eq!(
            store
                .claim_runs("a", 10, lease, clock.now())
                .await
                .unwrap()
                .len(),
            1
        );
        let work = store
            .load_runs(std::slice::from_ref(&run_id))
            .await
            .unwrap()
            .remove(0);
        let executor = Executor::new(store.clone(), registry.clone(), clock.clone());
        let takeover = {
            let store = store.clone();
            let clock = clock.clone();
            let run_id = run_id.clone();
            async move {
                // Wait for A's checkpoint, then let the lease lapse and claim as B.
                loop {
                    let run = store.get_run(&run_id).await.unwrap().unwrap();
                    if run
                        .nodes
                        .get("first")
                        .is_some_and(|n| n["state"] == json!("success"))
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                clock.advance(lease + Duration::from_secs(1));
                store.claim_runs("b", 10, lease, clock.now()).await.unwrap()
            }
        };
        let (a_result, claimed_by_b) =
            tokio::join!(executor.step(&work, &rules, &company, "a"), takeover);
        assert_eq!(claimed_by_b, vec![run_id.clone()]);
        assert!(
            matches!(
                a_result,
                Err(moneyflow_core::ports::StoreError::Conflict(_))
            ),
            "{a_result:?}"
        );

        // Worker B resumes: the checkpointed `first` is not executed again;
        // `second`, which A ran but never committed, runs again under the same key.
        let work = store
            .load_runs(std::slice::from_ref(&run_id))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            executor.step(&work, &rules, &company, "b").await.unwrap(),
            RunStatus::Succeeded
        );
        assert_eq!(counting.executions(&format!("{run_id}:first")), 1);
        assert_eq!(counting.executions(&format!("{run_id}:second")), 2);
        let run = store.get_run(&run_id).await.unwrap().unwrap();
        assert_eq!(node(&run, "second")["parameters"]["label"], json!(1));
        let documents = store.list_documents(&run_id).await.unwrap();
        assert_eq!(documents.len(), 2, "{documents:?}");
    }
);

// The notification delivery worker, with a manual clock.
#[path = "engine/delivery.rs"]
mod delivery;

engine_test!(
    a_run_whose_step_never_commits_is_quarantined_after_max_step_attempts,
    |store| {
        use moneyflow_core::ports::{
            NewNotificationEndpoint, NotificationStore, RunEventKind, RunEventStore,
        };
        let counting = Arc::new(Counting::default());
        let registry = registry(&counting);
        let version = save_rules(&store, &registry, json!([
            {"node_type": "task", "node_id": "flaky", "task_name": "test.flaky", "parameters": {"fail": 0}}
        ]))
        .await;
        let event_types = vec!["run.failed".to_owned()];
        store
            .create_notification_endpoint(NewNotificationEndpoint {
                id: "nep_poison",
                company_id: "acme",
                url: "https://example.com/hook",
                description: None,
                event_types: &event_types,
                secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                now: OffsetDateTime::now_utc(),
                max_per_company: 20,
            })
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let lease = Duration::from_secs(60);
        // Steps that each died before committing: the process crashed and
        // the next start released the leases. `poison` dies three times,
        // `survivor` (queued after the first) twice.
        let poison = enqueue(&store, version, json!({"type": "product", "total": 1}), now).await;
        let mut survivor = String::new();
        for crash in 0..3 {
            if crash == 1 {
                survivor =
                    enqueue(&store, version, json!({"type": "product", "total": 2}), now).await;
            }
            let claimed = store.claim_runs("crashed", 10, lease, now).await.unwrap();
            assert_eq!(claimed.len(), if crash == 0 { 1 } else { 2 }, "{claimed:?}");
            store.release_all_leases().await.unwrap();
        }
        let orchestrator = Orchestrator::new(
            store.clone(),
            registry,
            OrchestratorConfig {
                max_step_attempts: 3,
                ..OrchestratorConfig::default()
            },
            Clock::System,
        )
        .spawn();
        orchestrator.waker().notify_one();
        let quarantined = wait_finished(&store, &poison).await;
        let finished = wait_finished(&store, &survivor).await;
        orchestrator.shutdown().await;

        assert_eq!(finished.status, RunStatus::Succeeded);
        assert_eq!(quarantined.status, RunStatus::Failed);
        assert_eq!(
            counting.executions(&format!("{poison}:flaky")),
            0,
            "a quarantined run is not executed again"
        );
        assert_eq!(state(&quarantined, "flaky"), NodeState::Skipped);
        let entry = &quarantined.nodes["_run"]["error"];
        assert_eq!(entry["code"], "quarantined");
        assert_eq!(entry["quarantined"], true);
        assert!(
            entry["message"]
                .as_str()
                .unwrap()
                .contains("--max-step-attempts")
        );
        let summary = store.get_run_summary(&poison).await.unwrap().unwrap();
        assert!(summary.quarantined);
        assert!(
            !store
                .get_run_summary(&survivor)
                .await
                .unwrap()
                .unwrap()
                .quarantined
        );
        let events = store.list_run_events(&poison, 0, 100).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.kind, RunEventKind::Finished);
        assert_eq!(last.data["status"], "failed");
        assert_eq!(last.data["quarantined"], true);
        // Told like any failed run.
        let deliveries = store
            .list_deliveries("acme", "nep_poison", 10)
            .await
            .unwrap();
        assert!(
            deliveries
                .iter()
                .any(|d| d.run_id == poison && d.event_type == "run.failed"),
            "{deliveries:?}"
        );
    }
);
