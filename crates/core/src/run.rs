//! The run state machine (DESIGN §3), pure: given a compiled rule version and
//! the state of each node, which nodes are ready, which can no longer run
//! (skipped), and how the run ends. The engine does the waiting and the I/O.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::eval::CompiledCondition;
use crate::model::{DependencyState, NodeKind, RetryPolicy, RuleSet, Trigger};

/// Where a node is in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    #[default]
    Pending,
    Running,
    Success,
    Failure,
    Skipped,
}

impl NodeState {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Failure | Self::Skipped)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
        }
    }
}

/// How a run is doing, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Aborted,
}

impl RunStatus {
    pub const ALLOWED: &'static [&'static str] =
        &["queued", "running", "succeeded", "failed", "aborted"];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Aborted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(Self::Queued),
            "running" => Some(Self::Running),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "aborted" => Some(Self::Aborted),
            _ => None,
        }
    }
}

/// What a compiled node does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Condition(CompiledCondition),
    Task {
        task_name: String,
        /// The parameters with `$context.` strings still in them.
        parameters: Value,
        retry: RetryPolicy,
        timeout_ms: Option<u64>,
    },
}

/// A node ready to evaluate: edges resolved to indexes.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledNode {
    pub node_id: String,
    pub dependencies: Vec<(usize, DependencyState)>,
    pub trigger: Trigger,
    pub step: Step,
}

/// A rule version compiled once and cached by the engine: ids resolved to
/// indexes, paths parsed, operands pre-read.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledRules {
    pub nodes: Vec<CompiledNode>,
    index: HashMap<String, usize>,
    /// Whether some node depends on node i's `failure` (so its failure is handled).
    failure_handled: Vec<bool>,
}

/// Why a rule set could not be compiled (it was not validated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("node `{node_id}` depends on `{missing}`, which does not exist")]
    UnknownDependency { node_id: String, missing: String },
    #[error("node `{0}` has an invalid path in its condition")]
    InvalidPath(String),
}

impl CompiledRules {
    /// Compiles a validated rule set.
    pub fn compile(rules: &RuleSet) -> Result<Self, CompileError> {
        let index: HashMap<String, usize> = rules
            .rules
            .iter()
            .enumerate()
            .map(|(i, n)| (n.node_id.clone(), i))
            .collect();
        let mut failure_handled = vec![false; rules.rules.len()];
        let mut nodes = Vec::with_capacity(rules.rules.len());
        for node in &rules.rules {
            let mut dependencies = Vec::with_capacity(node.depends_on.len());
            for dependency in &node.depends_on {
                let &d = index.get(&dependency.node_id).ok_or_else(|| {
                    CompileError::UnknownDependency {
                        node_id: node.node_id.clone(),
                        missing: dependency.node_id.clone(),
                    }
                })?;
                if dependency.state == DependencyState::Failure {
                    failure_handled[d] = true;
                }
                dependencies.push((d, dependency.state));
            }
            let step = match &node.kind {
                NodeKind::Condition(condition) => Step::Condition(
                    CompiledCondition::compile(condition)
                        .ok_or_else(|| CompileError::InvalidPath(node.node_id.clone()))?,
                ),
                NodeKind::Task(task) => Step::Task {
                    task_name: task.task_name.clone(),
                    parameters: task
                        .parameters
                        .clone()
                        .map(Value::Object)
                        .unwrap_or(Value::Object(Map::new())),
                    retry: task.retry.clone().unwrap_or_default(),
                    timeout_ms: task.timeout_ms,
                },
            };
            nodes.push(CompiledNode {
                node_id: node.node_id.clone(),
                dependencies,
                trigger: node.trigger,
                step,
            });
        }
        Ok(Self {
            nodes,
            index,
            failure_handled,
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn index_of(&self, node_id: &str) -> Option<usize> {
        self.index.get(node_id).copied()
    }

    /// Whether node `i`'s trigger holds, can never hold, or must wait.
    pub fn readiness(&self, i: usize, states: &[NodeState]) -> Readiness {
        let node = &self.nodes[i];
        if node.dependencies.is_empty() {
            return Readiness::Ready;
        }
        let (mut held, mut broken) = (0, 0);
        for &(d, required) in &node.dependencies {
            match (states[d], required) {
                (NodeState::Success, DependencyState::Success)
                | (NodeState::Failure, DependencyState::Failure) => held += 1,
                // A skipped dependency never satisfies a requirement.
                (state, _) if state.is_terminal() => broken += 1,
                _ => {}
            }
        }
        let total = node.dependencies.len();
        match node.trigger {
            Trigger::All if held == total => Readiness::Ready,
            Trigger::All if broken > 0 => Readiness::Never,
            Trigger::Any if held > 0 => Readiness::Ready,
            Trigger::Any if broken == total => Readiness::Never,
            _ => Readiness::Waiting,
        }
    }

    /// Marks every pending node whose trigger can no longer hold as skipped,
    /// until nothing changes; returns the indexes of pending nodes that are ready.
    pub fn settle(&self, states: &mut [NodeState]) -> Vec<usize> {
        loop {
            let mut changed = false;
            for i in 0..self.nodes.len() {
                if states[i] == NodeState::Pending && self.readiness(i, states) == Readiness::Never
                {
                    states[i] = NodeState::Skipped;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        (0..self.nodes.len())
            .filter(|&i| {
                states[i] == NodeState::Pending && self.readiness(i, states) == Readiness::Ready
            })
            .collect()
    }

    /// How the run ends once every node is terminal; `None` while some is not.
    /// `aborted` wins; a task failure that no node depends on makes it `failed`.
    pub fn outcome(&self, states: &[NodeState], aborted: bool) -> Option<RunStatus> {
        if aborted {
            return Some(RunStatus::Aborted);
        }
        if !states.iter().all(|s| s.is_terminal()) {
            return None;
        }
        let unhandled_failure = self.nodes.iter().enumerate().any(|(i, node)| {
            states[i] == NodeState::Failure
                && matches!(node.step, Step::Task { .. })
                && !self.failure_handled[i]
        });
        Some(if unhandled_failure {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        })
    }
}

/// Whether a node may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Waiting,
    /// Its trigger can no longer hold: the node is skipped.
    Never,
}

/// The delay before retry number `attempt` (1 = the first retry): exponential
/// from `initial_backoff_ms`, capped at `max_backoff_ms`, with "equal jitter"
/// (half fixed, half random from `jitter` in `[0, 1)`) so retries spread out.
pub fn backoff_ms(policy: &RetryPolicy, attempt: u32, jitter: f64) -> u64 {
    let exponent = attempt.saturating_sub(1).min(40);
    let base = policy
        .initial_backoff_ms
        .saturating_mul(1u64 << exponent)
        .min(policy.max_backoff_ms);
    let half = base / 2;
    // Jitter is a fraction of a delay, not money: f64 is right here.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let random = (half as f64 * jitter.clamp(0.0, 1.0)) as u64;
    base - half + random
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::validation::validate_rule_set;
    use serde_json::json;

    fn compile(rules: Value) -> CompiledRules {
        let rule_set = validate_rule_set(
            &json!({"company_id": "acme", "rules": rules}),
            Catalogue::builtin(),
        )
        .unwrap();
        CompiledRules::compile(&rule_set).unwrap()
    }

    fn task(id: &str, deps: Value) -> Value {
        json!({"node_type": "task", "node_id": id, "task_name": "payment.tasks.notify",
               "parameters": {"channel": "email"}, "depends_on": deps})
    }

    #[test]
    fn roots_are_ready_and_dependents_wait() {
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([{"node_id": "a", "state": "success"}]))
        ]));
        let mut states = vec![NodeState::Pending; 2];
        assert_eq!(rules.settle(&mut states), vec![0]);
        states[0] = NodeState::Success;
        assert_eq!(rules.settle(&mut states), vec![1]);
    }

    #[test]
    fn skips_propagate_down_the_graph() {
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([{"node_id": "a", "state": "failure"}])),
            task("c", json!([{"node_id": "b", "state": "success"}])),
            task("d", json!([{"node_id": "c", "state": "failure"}]))
        ]));
        let mut states = vec![
            NodeState::Success,
            NodeState::Pending,
            NodeState::Pending,
            NodeState::Pending,
        ];
        assert!(rules.settle(&mut states).is_empty());
        assert_eq!(
            states,
            vec![
                NodeState::Success,
                NodeState::Skipped,
                NodeState::Skipped,
                NodeState::Skipped
            ]
        );
        assert_eq!(rules.outcome(&states, false), Some(RunStatus::Succeeded));
    }

    #[test]
    fn any_trigger_needs_one_and_skips_when_none_can_hold() {
        let mut any = task(
            "c",
            json!([{"node_id": "a", "state": "success"}, {"node_id": "b", "state": "success"}]),
        );
        any["trigger"] = json!("any");
        let rules = compile(json!([task("a", json!([])), task("b", json!([])), any]));
        let mut states = vec![NodeState::Failure, NodeState::Pending, NodeState::Pending];
        assert_eq!(rules.settle(&mut states), vec![1]);
        states[1] = NodeState::Success;
        assert_eq!(rules.settle(&mut states), vec![2]);
        let mut states = vec![NodeState::Failure, NodeState::Skipped, NodeState::Pending];
        assert!(rules.settle(&mut states).is_empty());
        assert_eq!(states[2], NodeState::Skipped);
    }

    #[test]
    fn all_trigger_waits_for_every_dependency() {
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([])),
            task(
                "c",
                json!([{"node_id": "a", "state": "success"}, {"node_id": "b", "state": "success"}])
            )
        ]));
        let mut states = vec![NodeState::Success, NodeState::Running, NodeState::Pending];
        assert!(rules.settle(&mut states).is_empty());
        assert_eq!(states[2], NodeState::Pending);
    }

    #[test]
    fn outcome_is_failed_only_for_unhandled_task_failures() {
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([{"node_id": "a", "state": "failure"}]))
        ]));
        let states = vec![NodeState::Failure, NodeState::Success];
        assert_eq!(rules.outcome(&states, false), Some(RunStatus::Succeeded));
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([{"node_id": "a", "state": "success"}]))
        ]));
        let states = vec![NodeState::Failure, NodeState::Skipped];
        assert_eq!(rules.outcome(&states, false), Some(RunStatus::Failed));
        assert_eq!(
            rules.outcome(&[NodeState::Running, NodeState::Pending], false),
            None
        );
        assert_eq!(
            rules.outcome(&[NodeState::Running, NodeState::Pending], true),
            Some(RunStatus::Aborted)
        );
    }

    #[test]
    fn a_failed_condition_is_branching_not_failure() {
        let rules = compile(json!([
            {"node_type": "condition", "node_id": "c", "expect": [{"field": "$context.event.x", "operator": "isnull"}]}
        ]));
        assert_eq!(
            rules.outcome(&[NodeState::Failure], false),
            Some(RunStatus::Succeeded)
        );
    }

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        assert_eq!(backoff_ms(&policy, 1, 0.0), 50);
        assert_eq!(backoff_ms(&policy, 1, 0.999_999), 99);
        assert_eq!(backoff_ms(&policy, 2, 0.0), 100);
        assert_eq!(backoff_ms(&policy, 3, 0.0), 200);
        assert_eq!(backoff_ms(&policy, 10, 0.0), 500);
        assert_eq!(backoff_ms(&policy, 10, 1.0), 1_000);
        assert_eq!(backoff_ms(&policy, u32::MAX, 0.5), 750);
    }
}
