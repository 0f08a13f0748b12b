//! One step of one run (DESIGN §3, §8): everything that is ready is evaluated
//! in memory (conditions at once, tasks in parallel), wave after wave, until
//! the run ends or only waits on a retry. The step's checkpoints, documents
//! and queue move are committed together; before awaiting a remote task (the
//! network) the progress so far is committed first, so nothing completed is
//! ever executed again after a crash.
//!
//! The in-memory part — settle, evaluate conditions, resolve parameters, run
//! the ready tasks in parallel, apply results, retries and abort — is
//! `Evaluator::evaluate`, shared by the durable [`Executor::step`] and by
//! the simulator ([`crate::simulate`]), which differ only in their `Mode`
//! (which tasks execute, whether retries wait) and their `Checkpoint` (the
//! store, or nothing).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use moneyflow_core::model::limits;
use moneyflow_core::path::{ContextPath, PREFIX, PathContext, resolve_template, resolved_size};
use moneyflow_core::ports::{
    Document, NodeRecord, QueueNext, RunStore, RunWork, StepCommit, StoreResult,
};
use moneyflow_core::run::{CompiledRules, NodeState, RunStatus, Step, backoff_ms};
use moneyflow_core::size::{LimitExceeded, Measured, SizeLimits, json_size};
use rand::Rng;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::clock::Clock;
use crate::metrics::EngineMetrics;
use crate::run_events::EventTracker;
use crate::task::{Registry, TaskError, TaskInput, TaskOutput};

/// The longest a task may run when its node sets no `timeout_ms`.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30);

/// The note on a task a simulation does not execute (it has effects).
pub const NOT_EXECUTED_NOTE: &str = "not executed in a simulation";
/// The note on such a task when a stored run's result stands in for it.
pub const REPLAYED_NOTE: &str =
    "not executed in a simulation: the stored run's recorded result is replayed";

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

/// How an evaluation treats tasks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode<'a> {
    /// A real run: every task executes; a retryable failure waits for its
    /// retry (the step ends, the run is due again then).
    Durable,
    /// A simulation: only pure tasks execute (their documents are reported,
    /// not stored); retries are not waited for.
    Simulation {
        /// A stored run's checkpoints: a task that is not executed takes its
        /// recorded result instead of an assumed success (backtests).
        recorded: Option<&'a Map<String, Value>>,
    },
}

/// What an evaluation does before it awaits a remote task.
pub(crate) trait Checkpoint: Send {
    /// Makes the progress so far durable; takes the documents it stored.
    fn save(
        &mut self,
        rules: &CompiledRules,
        records: &[NodeRecord],
        documents: &mut Vec<Document>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// No checkpoints: a simulation stores nothing.
pub(crate) struct NoCheckpoint;

impl Checkpoint for NoCheckpoint {
    fn save(
        &mut self,
        _rules: &CompiledRules,
        _records: &[NodeRecord],
        _documents: &mut Vec<Document>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// A durable step's checkpoint: a commit under the worker's lease that
/// keeps the run queued.
struct StoreCheckpoint<'a, S> {
    store: &'a S,
    run_id: &'a str,
    owner: &'a str,
    started_at: OffsetDateTime,
    /// What the commits so far reported as run events.
    tracker: EventTracker,
}

impl<S: RunStore> Checkpoint for StoreCheckpoint<'_, S> {
    fn save(
        &mut self,
        rules: &CompiledRules,
        records: &[NodeRecord],
        documents: &mut Vec<Document>,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        self.store.commit_step(StepCommit {
            run_id: self.run_id.to_owned(),
            owner: self.owner.to_owned(),
            status: RunStatus::Running,
            nodes: node_map(rules, records),
            started_at: Some(self.started_at),
            finished_at: None,
            documents: std::mem::take(documents),
            next: QueueNext::Keep,
            events: self.tracker.take(rules, records, None),
        })
    }
}

/// Who the evaluated run is, for `$context.run` and idempotency keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunInfo<'a> {
    pub run_id: &'a str,
    pub company_id: &'a str,
    pub event_id: &'a str,
    /// `None` for a draft rule set (a simulation).
    pub rule_version: Option<i64>,
}

/// A run's state while it is evaluated in memory.
pub(crate) struct Evaluation<'a> {
    rules: &'a CompiledRules,
    run: RunInfo<'a>,
    event: &'a Value,
    /// Each node's checkpoint, by index.
    pub records: Vec<NodeRecord>,
    states: Vec<NodeState>,
    context: StepContext<'a>,
    /// Documents produced and not checkpointed yet.
    pub documents: Vec<Document>,
    pub aborted: bool,
    /// Why a node is reported as it is; only simulations write notes.
    pub notes: Vec<Option<String>>,
    /// Nodes in the order they were evaluated (conditions, and tasks whose
    /// execution ended), by index: the path the run took.
    pub path: Vec<usize>,
    /// Where task durations and retries are counted; `None` (a simulation)
    /// counts nothing.
    pub metrics: Option<Arc<EngineMetrics>>,
    /// What the run stores so far (checkpoints and this step's documents),
    /// in bytes, against [`SizeLimits::run_bytes`].
    run_bytes: usize,
}

impl<'a> Evaluation<'a> {
    pub(crate) fn new(
        rules: &'a CompiledRules,
        run: RunInfo<'a>,
        event: &'a Value,
        company: &'a Value,
        records: Vec<NodeRecord>,
    ) -> Self {
        let states = records.iter().map(|r| r.state).collect();
        // Documents of earlier steps are not at hand; their size is close
        // to the parameters they were made from, which are counted.
        let run_bytes = records
            .iter()
            .flat_map(|r| [&r.parameters, &r.output])
            .flatten()
            .fold(0usize, |total, value| {
                total.saturating_add(json_size(value))
            });
        let context = StepContext {
            event,
            company,
            run: json!({"id": run.run_id, "rule_version": run.rule_version, "event_id": run.event_id}),
            views: records.iter().map(view).collect(),
            rules,
        };
        Self {
            rules,
            run,
            event,
            notes: vec![None; records.len()],
            records,
            states,
            context,
            documents: Vec::new(),
            aborted: false,
            path: Vec::new(),
            metrics: None,
            run_bytes,
        }
    }

    /// How the run stands: terminal once every node is, else `running`.
    pub(crate) fn status(&self) -> RunStatus {
        self.rules
            .outcome(&self.states, self.aborted)
            .unwrap_or(RunStatus::Running)
    }

    /// Records node `i`'s new state where paths and the state machine see it.
    fn publish(&mut self, i: usize) {
        self.states[i] = self.records[i].state;
        self.context.views[i] = view(&self.records[i]);
    }
}

/// The in-memory evaluation of runs: the registry's tasks and a clock.
#[derive(Clone)]
pub(crate) struct Evaluator {
    pub registry: Arc<Registry>,
    pub clock: Clock,
    /// Let a task's panic unwind out of the step instead of counting it as
    /// a retryable failure. Distributed mode sets it: the panic becomes a
    /// failed broker delivery, so a run that crashes every worker is
    /// dead-lettered after the delivery limit instead of looping.
    pub propagate_panics: bool,
    /// How large a node's parameters, output and documents, and a run's
    /// total, may grow.
    pub limits: SizeLimits,
}

impl Evaluator {
    /// Evaluates what is ready, wave after wave, until every node is
    /// terminal, the run aborts, or what is left waits on a retry.
    pub(crate) async fn evaluate<C: Checkpoint>(
        &self,
        eval: &mut Evaluation<'_>,
        mode: Mode<'_>,
        checkpoint: &mut C,
    ) -> StoreResult<()> {
        let rules = eval.rules;
        loop {
            let ready = rules.settle(&mut eval.states);
            for (record, state) in eval.records.iter_mut().zip(&eval.states) {
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
                        let outcome = condition.explain(&eval.context);
                        let record = &mut eval.records[i];
                        record.attempts += 1;
                        record.started_at = Some(now);
                        record.finished_at = Some(now);
                        let output = serde_json::to_value(&outcome).unwrap_or(Value::Null);
                        match self.limits.admit(
                            Measured::Output,
                            json_size(&output),
                            eval.run_bytes,
                        ) {
                            Ok(total) => {
                                eval.run_bytes = total;
                                record.state = if outcome.matched {
                                    NodeState::Success
                                } else {
                                    NodeState::Failure
                                };
                                record.output = Some(output);
                            }
                            Err(exceeded) => fail_at_limit(record, &exceeded, now),
                        }
                        eval.publish(i);
                        eval.path.push(i);
                        progressed = true;
                    }
                    Step::Task { .. } => {
                        if eval.records[i].next_attempt_at.is_none_or(|at| at <= now) {
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
                let record = &mut eval.records[i];
                record.attempts += 1;
                record.started_at = Some(now);
                record.finished_at = None;
                record.next_attempt_at = None;
                // Sized before anything is copied: parameters that repeat a
                // large value would otherwise be built in memory first.
                let size = resolved_size(parameters, &eval.context);
                // A retry replaces the parameters its earlier attempt stored.
                let earlier = record.parameters.take().map_or(0, |p| json_size(&p));
                let stored = eval.run_bytes.saturating_sub(earlier);
                match self.limits.admit(Measured::Parameters, size, stored) {
                    Ok(total) => eval.run_bytes = total,
                    Err(exceeded) => {
                        eval.run_bytes = stored;
                        fail_at_limit(record, &exceeded, now);
                        eval.publish(i);
                        eval.path.push(i);
                        continue;
                    }
                }
                let resolved = match resolve_template(parameters, &eval.context) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                record.parameters = Some(Value::Object(resolved.clone()));
                if let Some(message) = self.unresolved_required(task_name, parameters, &resolved) {
                    self.finish(
                        record,
                        Err(TaskError::permanent(message)),
                        i,
                        rules,
                        now,
                        mode,
                    );
                    eval.publish(i);
                    eval.path.push(i);
                    continue;
                }
                record.state = NodeState::Running;
                eval.states[i] = NodeState::Running;
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
                checkpoint
                    .save(rules, &eval.records, &mut eval.documents)
                    .await?;
            }

            let earlier: Vec<(&str, &Value)> = rules
                .nodes
                .iter()
                .zip(&eval.records)
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
                .map(|p| format!("{}:{}", eval.run.run_id, rules.nodes[p.index].node_id))
                .collect();
            let executions = prepared.iter().zip(&keys).map(|(p, key)| {
                let node = &rules.nodes[p.index];
                let Step::Task { task_name, .. } = &node.step else {
                    unreachable!("only tasks are prepared")
                };
                let input = TaskInput {
                    run_id: eval.run.run_id,
                    node_id: &node.node_id,
                    company_id: eval.run.company_id,
                    idempotency_key: key,
                    attempt: eval.records[p.index].attempts,
                    parameters: &p.parameters,
                    event: eval.event,
                    earlier_outputs: &earlier,
                };
                let metrics = eval.metrics.as_deref();
                let span = tracing::info_span!("task", node_id = %node.node_id, task = %task_name);
                async move {
                    let started = std::time::Instant::now();
                    let result = self.run_task(task_name, input, p.timeout, mode).await;
                    if let Some(metrics) = metrics {
                        metrics
                            .task_duration
                            .with(task_name)
                            .observe_duration(started.elapsed());
                    }
                    result
                }
                .instrument(span)
            });
            let results = futures::future::join_all(executions).await;
            drop(earlier);

            let finished_at = self.clock.now();
            for (p, (result, note)) in prepared.iter().zip(results) {
                let i = p.index;
                let result = match result {
                    Ok(output) => match self.admit_output(&output, &mut eval.run_bytes) {
                        Ok(()) => Ok(output),
                        Err(exceeded) => {
                            let record = &mut eval.records[i];
                            fail_at_limit(record, &exceeded, finished_at);
                            eval.path.push(i);
                            eval.publish(i);
                            continue;
                        }
                    },
                    Err(error) => Err(error),
                };
                if let Ok(output) = &result {
                    if output.abort.is_some() {
                        eval.aborted = true;
                    }
                    let node_id = &rules.nodes[i].node_id;
                    for (n, draft) in output.documents.iter().enumerate() {
                        let base = format!("{}:{node_id}", eval.run.run_id);
                        let key = match (&draft.suffix, n) {
                            (Some(suffix), _) => format!("{base}:{suffix}"),
                            (None, 0) => base,
                            (None, n) => format!("{base}:{n}"),
                        };
                        eval.documents.push(Document {
                            key,
                            run_id: eval.run.run_id.to_owned(),
                            company_id: eval.run.company_id.to_owned(),
                            node_id: node_id.clone(),
                            kind: draft.kind.clone(),
                            body: draft.body.clone(),
                            created_at: finished_at,
                        });
                    }
                }
                let record = &mut eval.records[i];
                let retry_note = self.finish(
                    record,
                    result.map(|o| o.output),
                    i,
                    rules,
                    finished_at,
                    mode,
                );
                if record.state.is_terminal() {
                    eval.path.push(i);
                } else if let (Some(_), Some(metrics), Step::Task { task_name, .. }) =
                    (record.next_attempt_at, &eval.metrics, &rules.nodes[i].step)
                {
                    // A retry was scheduled.
                    metrics.task_retries.inc(task_name);
                }
                if let Some(note) = note.or(retry_note) {
                    eval.notes[i] = Some(note);
                }
                eval.publish(i);
            }
            if eval.aborted {
                for (record, state) in eval.records.iter_mut().zip(eval.states.iter_mut()) {
                    if !state.is_terminal() {
                        *state = NodeState::Skipped;
                        record.state = NodeState::Skipped;
                        record.next_attempt_at = None;
                    }
                }
                break;
            }
        }
        Ok(())
    }

    /// Executes a task as `mode` allows, with a note when the result is not
    /// the task's own.
    async fn run_task(
        &self,
        task_name: &str,
        input: TaskInput<'_>,
        timeout: Duration,
        mode: Mode<'_>,
    ) -> (Result<TaskOutput, TaskError>, Option<String>) {
        let Mode::Simulation { recorded } = mode else {
            return (self.execute(task_name, input, timeout).await, None);
        };
        if self.registry.get(task_name).is_some_and(|t| t.is_pure()) {
            return (self.execute(task_name, input, timeout).await, None);
        }
        // Its effects are outside the process: never executed in a simulation.
        if let Some(result) = recorded.and_then(|nodes| replay(nodes, input.node_id)) {
            return (result, Some(REPLAYED_NOTE.to_owned()));
        }
        (
            Ok(TaskOutput::new(Value::Null)),
            Some(NOT_EXECUTED_NOTE.to_owned()),
        )
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
            Ok(Err(panic)) if self.propagate_panics => std::panic::resume_unwind(panic),
            Ok(Err(_panic)) => Err(TaskError::retryable(format!(
                "the task `{task_name}` panicked"
            ))),
            Err(_elapsed) => Err(TaskError::retryable(format!(
                "timed out after {} ms",
                timeout.as_millis()
            ))),
        }
    }

    /// Checks a task's output and documents against the limits and adds
    /// them to the run's total; nothing is added when one is past a limit.
    fn admit_output(
        &self,
        output: &TaskOutput,
        run_bytes: &mut usize,
    ) -> Result<(), LimitExceeded> {
        let mut total =
            self.limits
                .admit(Measured::Output, json_size(&output.output), *run_bytes)?;
        for document in &output.documents {
            total = self
                .limits
                .admit(Measured::Document, json_size(&document.body), total)?;
        }
        *run_bytes = total;
        Ok(())
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

    /// Records an attempt's result: success, failure, or a scheduled retry
    /// (durable mode only). Returns a note when a simulation reports a
    /// retryable error as a failure.
    fn finish(
        &self,
        record: &mut NodeRecord,
        result: Result<Value, TaskError>,
        index: usize,
        rules: &CompiledRules,
        now: OffsetDateTime,
        mode: Mode<'_>,
    ) -> Option<String> {
        match result {
            Ok(output) => {
                record.state = NodeState::Success;
                record.output = Some(output);
                record.error = None;
                record.finished_at = Some(now);
                None
            }
            Err(error) => {
                let Step::Task { retry, .. } = &rules.nodes[index].step else {
                    return None;
                };
                let retryable = error.is_retryable();
                record.error = Some(
                    json!({"message": error.to_string(), "retryable": retryable, "attempt": record.attempts}),
                );
                let retries_left = retryable && record.attempts < retry.max_attempts;
                if retries_left && matches!(mode, Mode::Durable) {
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
                    return None;
                }
                record.state = NodeState::Failure;
                record.finished_at = Some(now);
                // A simulation does not wait for retries: it shows the
                // failure the node would end in if every retry failed too.
                retries_left.then(|| {
                    format!(
                        "a retryable error: a run would retry it (up to {} attempts in all); a simulation does not wait for retries and reports the failure it would end in if every attempt failed",
                        retry.max_attempts
                    )
                })
            }
        }
    }
}

/// Fails a node whose data passed a size limit: permanently (the same rule
/// on the same event passes it again), with an error naming the limit;
/// what passed it is not kept.
fn fail_at_limit(record: &mut NodeRecord, exceeded: &LimitExceeded, now: OffsetDateTime) {
    record.state = NodeState::Failure;
    record.output = None;
    record.error = Some(exceeded.to_error_json(record.attempts));
    record.finished_at = Some(now);
    record.next_attempt_at = None;
}

/// A stored checkpoint's result for a node that ended: its output, or its
/// error as a permanent one.
fn replay(recorded: &Map<String, Value>, node_id: &str) -> Option<Result<TaskOutput, TaskError>> {
    let record: NodeRecord = serde_json::from_value(recorded.get(node_id)?.clone()).ok()?;
    match record.state {
        NodeState::Success => Some(Ok(TaskOutput::new(record.output.unwrap_or(Value::Null)))),
        NodeState::Failure => {
            let message = record
                .error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("failed in the stored run")
                .to_owned();
            Some(Err(TaskError::permanent(message)))
        }
        _ => None,
    }
}

/// Executes steps of runs against a store.
pub struct Executor<S> {
    store: S,
    evaluator: Evaluator,
    metrics: Arc<EngineMetrics>,
}

impl<S: RunStore> Executor<S> {
    pub fn new(store: S, registry: Arc<Registry>, clock: Clock) -> Self {
        Self {
            store,
            evaluator: Evaluator {
                registry,
                clock,
                propagate_panics: false,
                limits: SizeLimits::default(),
            },
            metrics: Arc::default(),
        }
    }

    /// Checks every node against `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: SizeLimits) -> Self {
        self.evaluator.limits = limits;
        self
    }

    /// See `Evaluator::propagate_panics` (distributed mode).
    pub fn set_propagate_panics(&mut self, propagate: bool) {
        self.evaluator.propagate_panics = propagate;
    }

    /// Counts into `metrics` (task durations, retries, runs finished).
    pub fn with_metrics(mut self, metrics: Arc<EngineMetrics>) -> Self {
        self.set_metrics(metrics);
        self
    }

    pub(crate) fn set_metrics(&mut self, metrics: Arc<EngineMetrics>) {
        self.metrics = metrics;
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
        let clock = &self.evaluator.clock;
        let records: Vec<NodeRecord> = rules
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
        let started_at = run.started_at.unwrap_or_else(|| clock.now());
        let info = RunInfo {
            run_id: &run.run_id,
            company_id: &run.company_id,
            event_id: &run.event_id,
            rule_version: Some(run.rule_version),
        };
        let tracker = EventTracker::new(run.status, &records);
        let mut evaluation = Evaluation::new(rules, info, &work.event, company, records);
        evaluation.metrics = Some(self.metrics.clone());
        let mut checkpoint = StoreCheckpoint {
            store: &self.store,
            run_id: &run.run_id,
            owner,
            started_at,
            tracker,
        };
        self.evaluator
            .evaluate(&mut evaluation, Mode::Durable, &mut checkpoint)
            .await?;

        let now = clock.now();
        let status = evaluation.status();
        let next = if status.is_terminal() {
            QueueNext::Done
        } else {
            let due = evaluation
                .records
                .iter()
                .filter_map(|r| r.next_attempt_at)
                .min();
            QueueNext::At(due.unwrap_or(now + Duration::from_secs(1)))
        };
        let events = checkpoint
            .tracker
            .take(rules, &evaluation.records, Some(status));
        self.store
            .commit_step(StepCommit {
                run_id: run.run_id.clone(),
                owner: owner.to_owned(),
                status,
                nodes: node_map(rules, &evaluation.records),
                started_at: Some(started_at),
                finished_at: status.is_terminal().then_some(now),
                documents: evaluation.documents,
                next,
                events,
            })
            .await?;
        self.metrics.run_finished(status);
        Ok(status)
    }
}

impl<S: RunStore> Executor<S> {
    /// Fails `work` without executing anything: its step was started
    /// `work.claims - 1` times and never committed (each one crashed the
    /// process or lost its lease), so executing it again would likely do the
    /// same. Nodes that were running fail with the reason, pending ones are
    /// skipped, and the run leaves the queue marked quarantined; its
    /// notifications go out as for any failed run. A redrive takes it back.
    #[tracing::instrument(skip_all, fields(run_id = %work.run.run_id, company_id = %work.run.company_id))]
    pub async fn quarantine(
        &self,
        work: &RunWork,
        rules: &CompiledRules,
        owner: &str,
        max_step_attempts: u32,
    ) -> StoreResult<RunStatus> {
        let run = &work.run;
        let now = self.evaluator.clock.now();
        let reason = format!(
            "quarantined: the run's step started {} times without committing (it crashed the process or lost its lease each time; --max-step-attempts is {max_step_attempts}), so it was failed without being executed again; redrive it once the cause is fixed",
            work.claims.saturating_sub(1)
        );
        let loaded: Vec<NodeRecord> = rules
            .nodes
            .iter()
            .map(|node| {
                run.nodes
                    .get(&node.node_id)
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default()
            })
            .collect();
        let mut tracker = EventTracker::new(run.status, &loaded);
        let mut records = loaded;
        for record in &mut records {
            match record.state {
                NodeState::Running => {
                    record.state = NodeState::Failure;
                    record.finished_at = Some(now);
                    record.error = Some(json!({
                        "message": reason, "retryable": false, "attempt": record.attempts,
                        "code": "quarantined",
                    }));
                }
                NodeState::Pending => {
                    record.state = NodeState::Skipped;
                    record.next_attempt_at = None;
                }
                _ => {}
            }
        }
        let mut nodes = node_map(rules, &records);
        nodes.insert(
            moneyflow_core::redrive::RUN_ENTRY.to_owned(),
            json!({"state": "failure", "error": {
                "message": reason, "code": "quarantined", "quarantined": true,
                "claims": work.claims,
            }}),
        );
        let mut events = tracker.take(rules, &records, Some(RunStatus::Failed));
        if let Some(finished) = events.last_mut() {
            finished.data["quarantined"] = json!(true);
            finished.data["error"] = json!(reason);
        }
        self.store
            .commit_step(StepCommit {
                run_id: run.run_id.clone(),
                owner: owner.to_owned(),
                status: RunStatus::Failed,
                nodes,
                started_at: Some(run.started_at.unwrap_or(now)),
                finished_at: Some(now),
                documents: Vec::new(),
                next: QueueNext::Quarantine,
                events,
            })
            .await?;
        tracing::error!(
            claims = work.claims,
            "run quarantined: its step never committed"
        );
        self.metrics.run_finished(RunStatus::Failed);
        self.metrics.runs_quarantined.inc();
        Ok(RunStatus::Failed)
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
