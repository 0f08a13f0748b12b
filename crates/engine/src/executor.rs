//! One step of one run (DESIGN §3, §8): everything that is ready is evaluated
//! in memory (conditions at once, tasks in parallel), wave after wave, until
//! the run ends or only waits on a retry. The step's checkpoints, documents
//! and queue move are committed together; before awaiting a remote task (the
//! network) the progress so far is committed first, so nothing completed is
//! ever executed again after a crash.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use moneyflow_core::model::limits;
use moneyflow_core::path::{ContextPath, PREFIX, PathContext, resolve_template};
use moneyflow_core::ports::{
    Document, NodeRecord, QueueNext, RunStore, RunWork, StepCommit, StoreResult,
};
use moneyflow_core::run::{CompiledRules, NodeState, RunStatus, Step, backoff_ms};
use rand::Rng;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::task::{Registry, TaskError, TaskInput, TaskOutput};

/// The longest a task may run when its node sets no `timeout_ms`.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30);

/// What paths resolve against during a step.
struct StepContext<'a> {
    event: &'a Value,
    company: &'a Value,
    run: Value,
    /// `{"state", "output"}` per node, by index.
    views: Vec<Value>,
    rules: &'a CompiledRules,
}

impl PathContext for StepContext<'_> {
    fn event(&self) -> &Value {
        self.event
    }
    fn company(&self) -> &Value {
        self.company
    }
    fn run(&self) -> &Value {
        &self.run
    }
    fn node(&self, node_id: &str) -> Option<&Value> {
        self.rules.index_of(node_id).map(|i| &self.views[i])
    }
}

fn view(record: &NodeRecord) -> Value {
    json!({"state": record.state, "output": record.output.clone().unwrap_or(Value::Null)})
}

/// A task about to run in this wave.
struct Prepared {
    index: usize,
    parameters: Map<String, Value>,
    timeout: Duration,
}

/// Executes steps of runs against a store.
pub struct Executor<S> {
    store: S,
    registry: Arc<Registry>,
    clock: Clock,
}

impl<S: RunStore> Executor<S> {
    pub fn new(store: S, registry: Arc<Registry>, clock: Clock) -> Self {
        Self {
            store,
            registry,
            clock,
        }
    }

    /// Runs one step of `work` under `owner`'s lease and commits it.
    #[tracing::instrument(skip_all, fields(run_id = %work.run.run_id, company_id = %work.run.company_id))]
    pub async fn step(
        &self,
        work: &RunWork,
        rules: &CompiledRules,
        company: &Value,
        owner: &str,
    ) -> StoreResult<RunStatus> {
        let run = &work.run;
        let mut records: Vec<NodeRecord> = rules
            .nodes
            .iter()
            .map(|node| {
                let mut record: NodeRecord = run
                    .nodes
                    .get(&node.node_id)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                // In flight when the previous worker stopped: run it again,
                // under the same idempotency key.
                if record.state == NodeState::Running {
                    record.state = NodeState::Pending;
                }
                record
            })
            .collect();
        let mut states: Vec<NodeState> = records.iter().map(|r| r.state).collect();
        let mut context = StepContext {
            event: &work.event,
            company,
            run: json!({"id": run.run_id, "rule_version": run.rule_version, "event_id": run.event_id}),
            views: records.iter().map(view).collect(),
            rules,
        };
        let started_at = run.started_at.unwrap_or_else(|| self.clock.now());
        let mut documents: Vec<Document> = Vec::new();
        let mut aborted = false;

        loop {
            let ready = rules.settle(&mut states);
            for (record, state) in records.iter_mut().zip(&states) {
                if *state == NodeState::Skipped && record.state != NodeState::Skipped {
                    record.state = NodeState::Skipped;
                }
            }
            let now = self.clock.now();
            let mut progressed = false;
            let mut due = Vec::new();
            for i in ready {
                match &rules.nodes[i].step {
                    Step::Condition(condition) => {
                        let outcome = condition.explain(&context);
                        let record = &mut records[i];
                        record.attempts += 1;
                        record.started_at = Some(now);
                        record.finished_at = Some(now);
                        record.state = if outcome.matched {
                            NodeState::Success
                        } else {
                            NodeState::Failure
                        };
                        record.output = serde_json::to_value(&outcome).ok();
                        states[i] = record.state;
                        context.views[i] = view(record);
                        progressed = true;
                    }
                    Step::Task { .. } => {
                        if records[i].next_attempt_at.is_none_or(|at| at <= now) {
                            due.push(i);
                        }
                    }
                }
            }
            if due.is_empty() {
                if progressed {
                    continue;
                }
                break;
            }

            let mut prepared = Vec::with_capacity(due.len());
            for i in due {
                let Step::Task {
                    task_name,
                    parameters,
                    timeout_ms,
                    ..
                } = &rules.nodes[i].step
                else {
                    continue;
                };
                let record = &mut records[i];
                record.attempts += 1;
                record.started_at = Some(now);
                record.finished_at = None;
                record.next_attempt_at = None;
                let resolved = match resolve_template(parameters, &context) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                record.parameters = Some(Value::Object(resolved.clone()));
                if let Some(message) = self.unresolved_required(task_name, parameters, &resolved) {
                    self.finish(record, Err(TaskError::permanent(message)), i, rules, now);
                    states[i] = record.state;
                    context.views[i] = view(record);
                    continue;
                }
                record.state = NodeState::Running;
                states[i] = NodeState::Running;
                prepared.push(Prepared {
                    index: i,
                    parameters: resolved,
                    timeout: timeout_ms.map_or(DEFAULT_TASK_TIMEOUT, Duration::from_millis),
                });
            }
            if prepared.is_empty() {
                continue;
            }

            let remote = prepared.iter().any(|p| {
                let Step::Task { task_name, .. } = &rules.nodes[p.index].step else {
                    return false;
                };
                self.registry.get(task_name).is_some_and(|t| t.is_remote())
            });
            if remote {
                // Make the progress so far durable before waiting on the network.
                self.store
                    .commit_step(StepCommit {
                        run_id: run.run_id.clone(),
                        owner: owner.to_owned(),
                        status: RunStatus::Running,
                        nodes: node_map(rules, &records),
                        started_at: Some(started_at),
                        finished_at: None,
                        documents: std::mem::take(&mut documents),
                        next: QueueNext::Keep,
                    })
                    .await?;
            }

            let earlier: Vec<(&str, &Value)> = rules
                .nodes
                .iter()
                .zip(&records)
                .filter(|(_, r)| r.state == NodeState::Success)
                .filter_map(|(node, r)| match (&node.step, &r.output) {
                    (Step::Task { task_name, .. }, Some(output)) => {
                        Some((task_name.as_str(), output))
                    }
                    _ => None,
                })
                .collect();
            let keys: Vec<String> = prepared
                .iter()
                .map(|p| format!("{}:{}", run.run_id, rules.nodes[p.index].node_id))
                .collect();
            let executions = prepared.iter().zip(&keys).map(|(p, key)| {
                let node = &rules.nodes[p.index];
                let Step::Task { task_name, .. } = &node.step else {
                    unreachable!("only tasks are prepared")
                };
                let input = TaskInput {
                    run_id: &run.run_id,
                    node_id: &node.node_id,
                    company_id: &run.company_id,
                    idempotency_key: key,
                    attempt: records[p.index].attempts,
                    parameters: &p.parameters,
                    event: &work.event,
                    earlier_outputs: &earlier,
                };
                self.execute(task_name, input, p.timeout)
            });
            let results = futures::future::join_all(executions).await;
            drop(earlier);

            let finished_at = self.clock.now();
            for (p, result) in prepared.iter().zip(results) {
                let i = p.index;
                if let Ok(output) = &result {
                    if output.abort.is_some() {
                        aborted = true;
                    }
                    for (n, draft) in output.documents.iter().enumerate() {
                        let node_id = &rules.nodes[i].node_id;
                        let base = format!("{}:{node_id}", run.run_id);
                        let key = match (&draft.suffix, n) {
                            (Some(suffix), _) => format!("{base}:{suffix}"),
                            (None, 0) => base,
                            (None, n) => format!("{base}:{n}"),
                        };
                        documents.push(Document {
                            key,
                            run_id: run.run_id.clone(),
                            company_id: run.company_id.clone(),
                            node_id: node_id.clone(),
                            kind: draft.kind.clone(),
                            body: draft.body.clone(),
                            created_at: finished_at,
                        });
                    }
                }
                let record = &mut records[i];
                self.finish(record, result.map(|o| o.output), i, rules, finished_at);
                states[i] = record.state;
                context.views[i] = view(record);
            }
            if aborted {
                for (record, state) in records.iter_mut().zip(states.iter_mut()) {
                    if !state.is_terminal() {
                        *state = NodeState::Skipped;
                        record.state = NodeState::Skipped;
                        record.next_attempt_at = None;
                    }
                }
                break;
            }
        }

        let now = self.clock.now();
        let status = rules
            .outcome(&states, aborted)
            .unwrap_or(RunStatus::Running);
        let next = if status.is_terminal() {
            QueueNext::Done
        } else {
            let due = records.iter().filter_map(|r| r.next_attempt_at).min();
            QueueNext::At(due.unwrap_or(now + Duration::from_secs(1)))
        };
        self.store
            .commit_step(StepCommit {
                run_id: run.run_id.clone(),
                owner: owner.to_owned(),
                status,
                nodes: node_map(rules, &records),
                started_at: Some(started_at),
                finished_at: status.is_terminal().then_some(now),
                documents,
                next,
            })
            .await?;
        Ok(status)
    }

    /// Runs a task with its timeout; a panic is a retryable failure, not a crash.
    async fn execute(
        &self,
        task_name: &str,
        input: TaskInput<'_>,
        timeout: Duration,
    ) -> Result<TaskOutput, TaskError> {
        let Some(task) = self.registry.get(task_name) else {
            return Err(TaskError::permanent(format!(
                "no task named `{task_name}` is registered on this server"
            )));
        };
        let execution = AssertUnwindSafe(task.execute(input)).catch_unwind();
        match tokio::time::timeout(timeout, execution).await {
            Ok(Ok(result)) => result,
            Ok(Err(_panic)) => Err(TaskError::retryable(format!(
                "the task `{task_name}` panicked"
            ))),
            Err(_elapsed) => Err(TaskError::retryable(format!(
                "timed out after {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// A required parameter given as a path that resolved to null.
    fn unresolved_required(
        &self,
        task_name: &str,
        template: &Value,
        resolved: &Map<String, Value>,
    ) -> Option<String> {
        let task = self.registry.get(task_name)?;
        task.spec()
            .params
            .iter()
            .filter(|p| p.required)
            .find_map(|param| {
                let path = template.get(param.name)?.as_str()?;
                if !path.starts_with(PREFIX) || ContextPath::parse(path).is_err() {
                    return None;
                }
                resolved
                    .get(param.name)
                    .is_none_or(Value::is_null)
                    .then(|| {
                        format!(
                            "the required parameter `{}` resolved to null: `{path}` is missing",
                            param.name
                        )
                    })
            })
    }

    /// Records an attempt's result: success, failure, or a scheduled retry.
    fn finish(
        &self,
        record: &mut NodeRecord,
        result: Result<Value, TaskError>,
        index: usize,
        rules: &CompiledRules,
        now: OffsetDateTime,
    ) {
        match result {
            Ok(output) => {
                record.state = NodeState::Success;
                record.output = Some(output);
                record.error = None;
                record.finished_at = Some(now);
            }
            Err(error) => {
                let Step::Task { retry, .. } = &rules.nodes[index].step else {
                    return;
                };
                let retryable = error.is_retryable();
                record.error = Some(
                    json!({"message": error.to_string(), "retryable": retryable, "attempt": record.attempts}),
                );
                if retryable && record.attempts < retry.max_attempts {
                    let jitter: f64 = rand::thread_rng().r#gen();
                    let mut delay = backoff_ms(retry, record.attempts, jitter);
                    if let TaskError::Retryable {
                        retry_after: Some(after),
                        ..
                    } = &error
                    {
                        let asked = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                        delay = delay.max(asked).min(limits::MAX_BACKOFF_MS);
                    }
                    record.state = NodeState::Pending;
                    record.next_attempt_at = Some(now + Duration::from_millis(delay));
                    record.finished_at = None;
                } else {
                    record.state = NodeState::Failure;
                    record.finished_at = Some(now);
                }
            }
        }
    }
}

/// The checkpoint of every node, in rule order.
fn node_map(rules: &CompiledRules, records: &[NodeRecord]) -> Map<String, Value> {
    rules
        .nodes
        .iter()
        .zip(records)
        .map(|(node, record)| {
            (
                node.node_id.clone(),
                serde_json::to_value(record).unwrap_or(Value::Null),
            )
        })
        .collect()
}
