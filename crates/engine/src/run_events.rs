//! The run events a durable step reports with its commits (DESIGN §1 step
//! 4): `run.started` on the first step (and the first after a redrive),
//! one `node.finished` per node that reached `success`, `failure` or
//! `skipped` since the last commit, and `run.finished` with the status.
//!
//! The executor knows what changed: [`EventTracker`] remembers each node's
//! state as last committed and, at each commit, reports the nodes that have
//! become terminal since, in rule order. The store appends the events in the
//! commit's transaction and numbers them.

use moneyflow_core::ports::{NewRunEvent, NodeRecord, RunEventKind};
use moneyflow_core::run::{CompiledRules, NodeState, RunStatus, Step};
use serde_json::{Map, Value};

/// What has been reported for a run so far in this step.
#[derive(Debug, Clone)]
pub(crate) struct EventTracker {
    /// Each node's state as of the last commit, by index.
    reported: Vec<NodeState>,
    /// `run.started` is still to be reported.
    start_pending: bool,
}

impl EventTracker {
    /// `records` as loaded; `status` the run's status as loaded (`queued`:
    /// this step starts it).
    pub(crate) fn new(status: RunStatus, records: &[NodeRecord]) -> Self {
        Self {
            reported: records.iter().map(|r| r.state).collect(),
            start_pending: status == RunStatus::Queued,
        }
    }

    /// The events of a commit of `records`; `finished` when the run ends with it.
    pub(crate) fn take(
        &mut self,
        rules: &CompiledRules,
        records: &[NodeRecord],
        finished: Option<RunStatus>,
    ) -> Vec<NewRunEvent> {
        let mut events = Vec::new();
        if std::mem::take(&mut self.start_pending) {
            events.push(NewRunEvent::started());
        }
        for (i, record) in records.iter().enumerate() {
            let Some(reported) = self.reported.get_mut(i) else {
                break;
            };
            if record.state.is_terminal() && !reported.is_terminal() {
                events.push(node_finished(rules, i, record));
            }
            *reported = record.state;
        }
        if let Some(status) = finished.filter(|s| s.is_terminal()) {
            events.push(NewRunEvent::finished(status));
        }
        events
    }
}

/// `node.finished`: `{node_id, state, attempts}`, plus `task_name` for a
/// task, the last error's `error` message, and `duration_ms` of the last
/// execution when it ran.
fn node_finished(rules: &CompiledRules, i: usize, record: &NodeRecord) -> NewRunEvent {
    let node = &rules.nodes[i];
    let mut data = Map::new();
    data.insert("node_id".into(), Value::String(node.node_id.clone()));
    data.insert("state".into(), Value::String(record.state.as_str().into()));
    data.insert("attempts".into(), Value::from(record.attempts));
    if let Step::Task { task_name, .. } = &node.step {
        data.insert("task_name".into(), Value::String(task_name.clone()));
    }
    let error = record
        .error
        .as_ref()
        .filter(|_| record.state == NodeState::Failure)
        .and_then(|e| e.get("message"))
        .cloned()
        .unwrap_or(Value::Null);
    data.insert("error".into(), error);
    if let (Some(start), Some(end)) = (record.started_at, record.finished_at) {
        let ms = (end - start).whole_milliseconds().max(0);
        data.insert(
            "duration_ms".into(),
            Value::from(i64::try_from(ms).unwrap_or(i64::MAX)),
        );
    }
    NewRunEvent::new(RunEventKind::NodeFinished, Value::Object(data))
}

#[cfg(test)]
mod tests {
    use moneyflow_core::catalogue::Catalogue;
    use moneyflow_core::validation::validate_rule_set;
    use serde_json::json;

    use super::*;

    fn rules() -> CompiledRules {
        let rule_set = validate_rule_set(
            &json!({"company_id": "acme", "rules": [
                {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.notify",
                 "parameters": {"channel": "email"}},
                {"node_type": "condition", "node_id": "b",
                 "expect": [{"field": "$context.event.x", "operator": "isnull"}]},
            ]}),
            Catalogue::builtin(),
        )
        .unwrap();
        CompiledRules::compile(&rule_set).unwrap()
    }

    fn record(state: NodeState) -> NodeRecord {
        NodeRecord {
            state,
            attempts: u32::from(state != NodeState::Pending),
            ..NodeRecord::default()
        }
    }

    #[test]
    fn reports_the_start_each_node_once_and_the_end() {
        let rules = rules();
        let loaded = vec![record(NodeState::Pending), record(NodeState::Pending)];
        let mut tracker = EventTracker::new(RunStatus::Queued, &loaded);

        let mut now = vec![record(NodeState::Running), record(NodeState::Success)];
        let first = tracker.take(&rules, &now, None);
        let kinds: Vec<_> = first.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [RunEventKind::Started, RunEventKind::NodeFinished]);
        assert_eq!(first[1].data["node_id"], "b");
        assert!(first[1].data.get("task_name").is_none());

        now[0] = NodeRecord {
            error: Some(json!({"message": "boom"})),
            ..record(NodeState::Failure)
        };
        let second = tracker.take(&rules, &now, Some(RunStatus::Failed));
        assert_eq!(second.len(), 2);
        assert_eq!(
            second[0].data,
            json!({"node_id": "a", "state": "failure", "attempts": 1,
                   "task_name": "payment.tasks.notify", "error": "boom"})
        );
        assert_eq!(second[1].data, json!({"status": "failed"}));
        assert!(tracker.take(&rules, &now, None).is_empty());
    }

    #[test]
    fn a_resumed_run_reports_no_start_and_no_node_finished_before() {
        let rules = rules();
        let loaded = vec![record(NodeState::Success), record(NodeState::Pending)];
        let mut tracker = EventTracker::new(RunStatus::Running, &loaded);
        let now = vec![record(NodeState::Success), record(NodeState::Success)];
        let events = tracker.take(&rules, &now, Some(RunStatus::Succeeded));
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [RunEventKind::NodeFinished, RunEventKind::Finished]);
    }
}
