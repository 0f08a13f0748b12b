//! Redriving a failed run (pure): which checkpoints go back to `pending`.
//!
//! A run fails when a task ended in `failure` and no node depended on that
//! failure (DESIGN §3). A redrive resets exactly those tasks, and every node
//! skipped downstream of them (their skip may no longer hold), to `pending`
//! with 0 attempts; each reset task keeps its earlier execution in its
//! `history`. Every other checkpoint — every success, handled failures,
//! condition branches — is kept as it is, so the orchestrator executes only
//! what is not done.

use serde_json::{Map, Value, json};

use crate::model::DependencyState;
use crate::ports::NodeRecord;
use crate::run::{CompiledRules, NodeState, Step};

/// The key under which the engine records a failure of the run as a whole
/// (its rules could not be prepared); a redrive drops it.
pub const RUN_ENTRY: &str = "_run";

/// What a redrive changes.
#[derive(Debug, Clone, PartialEq)]
pub struct RedrivePlan {
    /// The run's checkpoints after the redrive.
    pub nodes: Map<String, Value>,
    /// The failed tasks reset, in rule order.
    pub failed: Vec<String>,
    /// The skipped nodes reset because they are downstream of those, in rule order.
    pub skipped: Vec<String>,
}

/// Why a run's checkpoints cannot be redriven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedriveError {
    #[error("the checkpoint of node `{node_id}` is not readable: {detail}")]
    UnreadableCheckpoint { node_id: String, detail: String },
}

/// Plans the redrive of a failed run whose checkpoints are `nodes`, under its
/// pinned (compiled) rule version.
pub fn plan_redrive(
    rules: &CompiledRules,
    nodes: &Map<String, Value>,
) -> Result<RedrivePlan, RedriveError> {
    let mut records = Vec::with_capacity(rules.len());
    for node in &rules.nodes {
        let record: NodeRecord = match nodes.get(&node.node_id) {
            Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
                RedriveError::UnreadableCheckpoint {
                    node_id: node.node_id.clone(),
                    detail: e.to_string(),
                }
            })?,
            None => NodeRecord::default(),
        };
        records.push(record);
    }

    // A failure some node depends on is branching, not why the run failed.
    let mut handled = vec![false; rules.len()];
    for node in &rules.nodes {
        for &(d, state) in &node.dependencies {
            if state == DependencyState::Failure {
                handled[d] = true;
            }
        }
    }
    let mut reset: Vec<bool> = rules
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            records[i].state == NodeState::Failure
                && matches!(node.step, Step::Task { .. })
                && !handled[i]
        })
        .collect();
    let failed_reset = reset.clone();
    // Skips downstream of a reset node, to a fixed point (the rule order
    // need not be topological).
    loop {
        let mut changed = false;
        for (i, node) in rules.nodes.iter().enumerate() {
            if !reset[i]
                && records[i].state == NodeState::Skipped
                && node.dependencies.iter().any(|&(d, _)| reset[d])
            {
                reset[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    let mut out = nodes.clone();
    out.remove(RUN_ENTRY);
    let (mut failed, mut skipped) = (Vec::new(), Vec::new());
    for (i, node) in rules.nodes.iter().enumerate() {
        if !reset[i] {
            continue;
        }
        let old = &records[i];
        let mut history = old.history.clone();
        if failed_reset[i] {
            history.push(json!({
                "state": old.state,
                "attempts": old.attempts,
                "error": old.error,
                "started_at": old.started_at.and_then(rfc3339),
                "finished_at": old.finished_at.and_then(rfc3339),
            }));
            failed.push(node.node_id.clone());
        } else {
            skipped.push(node.node_id.clone());
        }
        let fresh = NodeRecord {
            history,
            ..NodeRecord::default()
        };
        out.insert(
            node.node_id.clone(),
            serde_json::to_value(&fresh).unwrap_or(Value::Null),
        );
    }
    Ok(RedrivePlan {
        nodes: out,
        failed,
        skipped,
    })
}

fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;
    use crate::validation::validate_rule_set;

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
    fn resets_unhandled_failures_and_their_skips_and_keeps_the_rest() {
        let rules = compile(json!([
            task("a", json!([])),
            task("b", json!([{"node_id": "a", "state": "success"}])),
            task("c", json!([{"node_id": "b", "state": "success"}])),
            task("d", json!([])),
            task("e", json!([{"node_id": "d", "state": "failure"}])),
            task("f", json!([{"node_id": "d", "state": "success"}])),
        ]));
        let nodes = json!({
            "a": {"state": "success", "attempts": 1, "output": {"x": 1}},
            "b": {"state": "failure", "attempts": 3, "error": {"message": "boom"}},
            "c": {"state": "skipped", "attempts": 0},
            "d": {"state": "failure", "attempts": 1, "error": {"message": "handled"}},
            "e": {"state": "success", "attempts": 1},
            "f": {"state": "skipped", "attempts": 0},
            "_run": {"state": "failure"},
        });
        let plan = plan_redrive(&rules, nodes.as_object().unwrap()).unwrap();
        assert_eq!(plan.failed, ["b"]);
        assert_eq!(plan.skipped, ["c"]);
        assert_eq!(plan.nodes["a"], nodes["a"]);
        assert_eq!(plan.nodes["d"], nodes["d"], "a handled failure is kept");
        assert_eq!(plan.nodes["f"], nodes["f"]);
        assert!(!plan.nodes.contains_key(RUN_ENTRY));
        let b: NodeRecord = serde_json::from_value(plan.nodes["b"].clone()).unwrap();
        assert_eq!((b.state, b.attempts), (NodeState::Pending, 0));
        assert_eq!(b.history.len(), 1);
        assert_eq!(b.history[0]["attempts"], 3);
        assert_eq!(b.history[0]["error"]["message"], "boom");
        let c: NodeRecord = serde_json::from_value(plan.nodes["c"].clone()).unwrap();
        assert_eq!(c.state, NodeState::Pending);
        assert!(c.history.is_empty(), "a skip is no execution");
    }

    #[test]
    fn history_accumulates_over_redrives() {
        let rules = compile(json!([task("a", json!([]))]));
        let nodes = json!({"a": {"state": "failure", "attempts": 1,
                                 "history": [{"state": "failure", "attempts": 2}]}});
        let plan = plan_redrive(&rules, nodes.as_object().unwrap()).unwrap();
        let a: NodeRecord = serde_json::from_value(plan.nodes["a"].clone()).unwrap();
        assert_eq!(a.history.len(), 2);
        assert_eq!(a.history[1]["attempts"], 1);
    }
}
