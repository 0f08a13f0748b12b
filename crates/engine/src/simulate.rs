//! Simulation (DESIGN §4): a rule version, or a draft, evaluated against an
//! event with no effects and nothing stored.
//!
//! The evaluation is the executor's own ([`crate::executor`]), in simulation
//! mode: conditions are explained (each expectation's actual value, whether
//! it held, why not), pure tasks (every built-in) execute and their
//! documents are reported but not stored, other tasks (`http_request`,
//! custom ones) are not executed and are reported as `success` with a null
//! output and a note, and a retryable error is reported as the failure it
//! would end in, without waiting for retries.
//!
//! [`Simulator::replay`] does the same with a stored run's checkpoints at
//! hand: a task that is not executed takes its recorded result, so a
//! backtest ([`crate::backtest`]) compares like with like.

use std::sync::Arc;

use moneyflow_core::ports::NodeRecord;
use moneyflow_core::run::{CompiledRules, NodeState, RunStatus, Step};
use moneyflow_core::size::SizeLimits;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Clock;
use crate::executor::{Evaluation, Evaluator, Mode, NoCheckpoint, RunInfo};
use crate::task::Registry;

/// The run id a simulation's idempotency keys and `$context.run.id` use.
pub const SIMULATION_RUN_ID: &str = "run_simulation";

/// What a simulation needs besides the rules.
#[derive(Debug, Clone, Copy)]
pub struct SimulationInput<'a> {
    pub company_id: &'a str,
    /// The payment event (validated by the caller).
    pub event: &'a Value,
    /// `$context.company`: `{"id", "name"}`.
    pub company: &'a Value,
    /// The version simulated; `None` for a draft.
    pub rule_version: Option<i64>,
}

/// Every node's state after a simulation, and how the run would end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// `succeeded`, `failed` or `aborted`.
    pub status: RunStatus,
    /// The rule version simulated; `null` for a draft.
    pub rule_version: Option<i64>,
    /// The nodes that were evaluated, in the order they were: the path the
    /// run would take.
    pub path: Vec<String>,
    /// Every node, in rule order.
    pub nodes: Vec<SimulatedNode>,
    /// The documents pure tasks produced (not stored).
    pub documents: Vec<SimulatedDocument>,
}

/// One node's simulated result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedNode {
    pub node_id: String,
    /// `condition` or `task`.
    pub node_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    pub state: NodeState,
    pub attempts: u32,
    /// A task's resolved parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// A task's output, or a condition's explanation
    /// (`{matched, match, expectations: [{field, operator, value, actual, held, reason?}]}`).
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// Why the result is not the task's own (not executed, replayed, retries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A document a simulated task would have stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulatedDocument {
    pub node_id: String,
    pub kind: String,
    pub body: Value,
}

/// Runs simulations with a registry's tasks.
#[derive(Clone)]
pub struct Simulator {
    evaluator: Evaluator,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("registry", &self.evaluator.registry)
            .finish()
    }
}

impl Simulator {
    pub fn new(registry: Arc<Registry>, clock: Clock) -> Self {
        Self {
            evaluator: Evaluator {
                registry,
                clock,
                propagate_panics: false,
                limits: SizeLimits::default(),
            },
        }
    }

    /// Checks every node against `limits` instead of the defaults (the
    /// server's, so a simulation fails a node where a run would).
    pub fn with_limits(mut self, limits: SizeLimits) -> Self {
        self.evaluator.limits = limits;
        self
    }

    /// Evaluates `rules` against the event, from the start to the end.
    pub async fn simulate(&self, rules: &CompiledRules, input: SimulationInput<'_>) -> Simulation {
        self.run(rules, input, None).await
    }

    /// [`Self::simulate`], with a stored run's checkpoints (`recorded`,
    /// node id → record) standing in for the tasks it does not execute.
    pub async fn replay(
        &self,
        rules: &CompiledRules,
        input: SimulationInput<'_>,
        recorded: &Map<String, Value>,
    ) -> Simulation {
        self.run(rules, input, Some(recorded)).await
    }

    #[tracing::instrument(skip_all, fields(company_id = %input.company_id))]
    async fn run(
        &self,
        rules: &CompiledRules,
        input: SimulationInput<'_>,
        recorded: Option<&Map<String, Value>>,
    ) -> Simulation {
        let event_id = input
            .event
            .get("event_id")
            .and_then(Value::as_str)
            .unwrap_or("evt_simulation");
        let info = RunInfo {
            run_id: SIMULATION_RUN_ID,
            company_id: input.company_id,
            event_id,
            rule_version: input.rule_version,
        };
        let records = vec![NodeRecord::default(); rules.len()];
        let mut evaluation = Evaluation::new(rules, info, input.event, input.company, records);
        // Without checkpoints nothing can fail: the result is always Ok.
        let evaluated = self
            .evaluator
            .evaluate(
                &mut evaluation,
                Mode::Simulation { recorded },
                &mut NoCheckpoint,
            )
            .await;
        debug_assert!(
            evaluated.is_ok(),
            "a simulation stores nothing, so cannot fail"
        );
        let status = evaluation.status();
        let nodes = rules
            .nodes
            .iter()
            .zip(evaluation.records)
            .zip(evaluation.notes)
            .map(|((node, record), note)| {
                let (node_type, task_name) = match &node.step {
                    Step::Condition(_) => ("condition", None),
                    Step::Task { task_name, .. } => ("task", Some(task_name.clone())),
                };
                SimulatedNode {
                    node_id: node.node_id.clone(),
                    node_type,
                    task_name,
                    state: record.state,
                    attempts: record.attempts,
                    parameters: record.parameters,
                    output: record.output,
                    error: record.error,
                    note,
                }
            })
            .collect();
        Simulation {
            status,
            rule_version: input.rule_version,
            path: evaluation
                .path
                .iter()
                .map(|&i| rules.nodes[i].node_id.clone())
                .collect(),
            nodes,
            documents: evaluation
                .documents
                .into_iter()
                .map(|d| SimulatedDocument {
                    node_id: d.node_id,
                    kind: d.kind,
                    body: d.body,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use moneyflow_core::validation::validate_rule_set;
    use serde_json::json;

    use super::*;
    use crate::http::HttpPolicy;

    fn compile(registry: &Registry, rules: Value) -> CompiledRules {
        let rule_set = validate_rule_set(
            &json!({"company_id": "acme", "rules": rules}),
            registry.catalogue(),
        )
        .unwrap_or_else(|report| panic!("invalid test rules: {report:#?}"));
        CompiledRules::compile(&rule_set).unwrap()
    }

    fn simulator() -> (Simulator, Arc<Registry>) {
        let registry = Arc::new(Registry::builtin(HttpPolicy::default()));
        (Simulator::new(registry.clone(), Clock::manual()), registry)
    }

    async fn simulate(rules: Value, event: Value) -> Simulation {
        let (simulator, registry) = simulator();
        let rules = compile(&registry, rules);
        let company = json!({"id": "acme", "name": "Acme"});
        simulator
            .simulate(
                &rules,
                SimulationInput {
                    company_id: "acme",
                    event: &event,
                    company: &company,
                    rule_version: None,
                },
            )
            .await
    }

    fn node<'a>(simulation: &'a Simulation, id: &str) -> &'a SimulatedNode {
        simulation
            .nodes
            .iter()
            .find(|n| n.node_id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    #[tokio::test]
    async fn conditions_are_explained_and_pure_tasks_run() {
        let simulation = simulate(
            json!([
                {"node_type": "condition", "node_id": "big",
                 "expect": [{"field": "$context.event.total", "operator": "gt", "value": [100]}]},
                {"node_type": "task", "node_id": "invoice", "task_name": "payment.tasks.generate_invoice",
                 "depends_on": [{"node_id": "big", "state": "success"}], "parameters": {"customer": "$context.event.customer"}},
                {"node_type": "task", "node_id": "small", "task_name": "payment.tasks.notify",
                 "depends_on": [{"node_id": "big", "state": "failure"}], "parameters": {"channel": "email"}}
            ]),
            json!({"company_id": "acme", "type": "product", "total": "120.00", "customer": "ana"}),
        )
        .await;
        assert_eq!(simulation.status, RunStatus::Succeeded);
        assert_eq!(simulation.path, ["big", "invoice"]);
        let big = node(&simulation, "big");
        assert_eq!(big.state, NodeState::Success);
        let expectation = &big.output.as_ref().unwrap()["expectations"][0];
        assert_eq!(expectation["actual"], json!("120.00"));
        assert_eq!(expectation["held"], json!(true));
        let invoice = node(&simulation, "invoice");
        assert_eq!(invoice.state, NodeState::Success);
        assert_eq!(invoice.parameters.as_ref().unwrap()["customer"], "ana");
        assert_eq!(invoice.output.as_ref().unwrap()["total"], "120.00");
        assert_eq!(invoice.note, None);
        assert_eq!(node(&simulation, "small").state, NodeState::Skipped);
        assert_eq!(simulation.documents.len(), 1);
        assert_eq!(simulation.documents[0].kind, "invoice");
    }

    #[tokio::test]
    async fn remote_tasks_are_not_executed() {
        let simulation = simulate(
            json!([
                {"node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
                 "parameters": {"url": "http://127.0.0.1:9/never"}},
                {"node_type": "task", "node_id": "after", "task_name": "payment.tasks.notify",
                 "depends_on": [{"node_id": "call", "state": "success"}], "parameters": {"channel": "email"}}
            ]),
            json!({"company_id": "acme", "type": "product", "total": "1"}),
        )
        .await;
        let call = node(&simulation, "call");
        assert_eq!(call.state, NodeState::Success);
        assert_eq!(call.output, Some(Value::Null));
        assert_eq!(
            call.note.as_deref(),
            Some(crate::executor::NOT_EXECUTED_NOTE)
        );
        assert_eq!(node(&simulation, "after").state, NodeState::Success);
        assert_eq!(simulation.status, RunStatus::Succeeded);
    }

    #[tokio::test]
    async fn a_replay_takes_the_recorded_result_of_remote_tasks() {
        let (simulator, registry) = simulator();
        let rules = compile(
            &registry,
            json!([
                {"node_type": "task", "node_id": "call", "task_name": "payment.tasks.http_request",
                 "parameters": {"url": "http://127.0.0.1:9/never"}}
            ]),
        );
        let event = json!({"company_id": "acme", "type": "product", "total": "1"});
        let company = json!({"id": "acme"});
        let mut recorded = Map::new();
        recorded.insert(
            "call".into(),
            json!({"state": "failure", "attempts": 3, "error": {"message": "the endpoint answered 503"}}),
        );
        let simulation = simulator
            .replay(
                &rules,
                SimulationInput {
                    company_id: "acme",
                    event: &event,
                    company: &company,
                    rule_version: Some(1),
                },
                &recorded,
            )
            .await;
        assert_eq!(simulation.status, RunStatus::Failed);
        let call = node(&simulation, "call");
        assert_eq!(call.state, NodeState::Failure);
        assert_eq!(
            call.error.as_ref().unwrap()["message"],
            "the endpoint answered 503"
        );
        assert_eq!(call.note.as_deref(), Some(crate::executor::REPLAYED_NOTE));
    }

    /// A pure task that always fails with a retryable error.
    struct Flaky(moneyflow_core::catalogue::TaskSpec);

    #[async_trait::async_trait]
    impl crate::task::Task for Flaky {
        fn spec(&self) -> &moneyflow_core::catalogue::TaskSpec {
            &self.0
        }
        fn is_pure(&self) -> bool {
            true
        }
        async fn execute(
            &self,
            _input: crate::task::TaskInput<'_>,
        ) -> Result<crate::task::TaskOutput, crate::task::TaskError> {
            Err(crate::task::TaskError::retryable("try again later"))
        }
    }

    #[tokio::test]
    async fn a_retryable_error_is_the_failure_it_would_end_in_without_waiting() {
        let mut registry = Registry::builtin(HttpPolicy::default());
        registry.register(Arc::new(Flaky(moneyflow_core::catalogue::TaskSpec {
            name: "test.flaky",
            title: "flaky",
            description: "fails",
            params: Vec::new(),
            open_params: true,
            output: &[],
        })));
        let registry = Arc::new(registry);
        let rules = compile(
            &registry,
            json!([{"node_type": "task", "node_id": "flaky", "task_name": "test.flaky",
                    "retry": {"max_attempts": 5, "initial_backoff_ms": 60000, "max_backoff_ms": 600000}}]),
        );
        let event = json!({"company_id": "acme", "type": "product", "total": "1"});
        let company = json!({"id": "acme"});
        let simulation = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            Simulator::new(registry, Clock::manual()).simulate(
                &rules,
                SimulationInput {
                    company_id: "acme",
                    event: &event,
                    company: &company,
                    rule_version: None,
                },
            ),
        )
        .await
        .expect("no retry is waited for");
        assert_eq!(simulation.status, RunStatus::Failed);
        let flaky = node(&simulation, "flaky");
        assert_eq!(flaky.state, NodeState::Failure);
        assert_eq!(flaky.attempts, 1);
        assert_eq!(flaky.error.as_ref().unwrap()["retryable"], true);
        assert!(
            flaky.note.as_deref().unwrap().contains("up to 5 attempts"),
            "{flaky:?}"
        );
    }

    #[tokio::test]
    async fn abort_skips_the_rest() {
        let simulation = simulate(
            json!([
                {"node_type": "task", "node_id": "stop", "task_name": "payment.tasks.abort_flow",
                 "parameters": {"reason": "test"}},
                {"node_type": "task", "node_id": "later", "task_name": "payment.tasks.notify",
                 "depends_on": [{"node_id": "stop", "state": "success"}], "parameters": {"channel": "email"}}
            ]),
            json!({"company_id": "acme", "type": "product", "total": "1"}),
        )
        .await;
        assert_eq!(simulation.status, RunStatus::Aborted);
        assert_eq!(node(&simulation, "later").state, NodeState::Skipped);
    }
}
