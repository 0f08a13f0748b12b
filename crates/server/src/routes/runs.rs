//! `GET /runs/{run_id}`: a run with every node's state and the documents its
//! tasks produced.
//!
//! Nodes are listed in the order of the pinned rule version, each with its
//! checkpoint; a node without one (the run has not reached it, or has not
//! started) is `pending` with 0 attempts. A company key sees its own runs
//! only: another company's run answers the same 404 as a missing one.

use axum::Json;
use axum::extract::State;
use moneyflow_core::ports::{Document, NodeRecord, RuleStore, RunRecord, RunStore};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Path;
use crate::routes::companies::is_valid_id;
use crate::state::AppState;

/// The key in a run's checkpoint map under which the engine records a
/// failure of the run itself (its rules could not be prepared).
const RUN_ENTRY: &str = "_run";

#[derive(Debug, Serialize, ToSchema)]
pub struct RunBody {
    pub run_id: String,
    pub company_id: String,
    pub event_id: String,
    /// The event's `type`.
    pub event_type: String,
    /// The rule version the run is pinned to.
    pub rule_version: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `aborted`.
    #[schema(example = "succeeded")]
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Why the run as a whole failed (e.g. its rule version could not be
    /// prepared), when it did; node failures are on their nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    /// Failed by quarantine: its step started too many times without
    /// committing (it crashed the server or lost its lease each time), so
    /// it was failed without being executed again; `error` says why
    /// (`code: quarantined`). A redrive takes it back.
    pub quarantined: bool,
    /// In the rule version's order.
    pub nodes: Vec<NodeBody>,
    /// Oldest first.
    pub documents: Vec<DocumentBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeBody {
    pub node_id: String,
    /// `condition` or `task`.
    pub node_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// `pending`, `running`, `success`, `failure` or `skipped`.
    pub state: &'static str,
    /// Executions started so far.
    pub attempts: u32,
    /// The resolved parameters, as last executed.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// `{"message", "retryable", …}` of the last failed attempt.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// When a waiting retry is due.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Earlier executions a redrive reset, oldest first: `{state, attempts,
    /// error, started_at, finished_at}` each. Absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub history: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentBody {
    /// The idempotency key it is stored under: `{run_id}:{node_id}`.
    pub key: String,
    /// `invoice`, `shipment`, `packing_slip_copy`, `royalty`, `commission`, `notification`…
    pub kind: String,
    pub node_id: String,
    #[schema(value_type = Object)]
    pub body: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Document> for DocumentBody {
    fn from(document: Document) -> Self {
        Self {
            key: document.key,
            kind: document.kind,
            node_id: document.node_id,
            body: document.body,
            created_at: document.created_at,
        }
    }
}

fn run_not_found(run_id: &str) -> ApiError {
    ApiError::not_found(format!("run `{run_id}` not found"))
}

/// One run, with its nodes and documents.
#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs",
    params(("run_id" = String, Path, description = "The run's id (`run_…`), from the answer to `POST /payment`")),
    responses(
        (status = 200, description = "The run", body = RunBody),
        (status = 404, description = "No such run (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(run_id = %run_id))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(run_id): Path<String>,
) -> Result<Json<RunBody>, ApiError> {
    // Run ids are `run_` + hex: anything else names nothing stored.
    if !is_valid_id(&run_id) {
        return Err(run_not_found(&run_id));
    }
    let store = state.store();
    let run = match store.get_run(&run_id).await? {
        Some(run) if principal.may_act_for(&run.company_id) => run,
        _ => return Err(run_not_found(&run_id)),
    };
    let version = store
        .get_rule_version(&run.company_id, run.rule_version)
        .await?;
    let documents = store.list_documents(&run_id).await?;
    let rules = version.map(|v| v.rules);
    Ok(Json(run_body(run, rules.as_ref(), documents)?))
}

/// Puts a run's checkpoints in its rule version's node order.
fn run_body(
    mut run: RunRecord,
    rules: Option<&Value>,
    documents: Vec<Document>,
) -> Result<RunBody, ApiError> {
    let run_error = run
        .nodes
        .remove(RUN_ENTRY)
        .and_then(|entry| entry.get("error").cloned());
    let mut nodes = Vec::with_capacity(run.nodes.len());
    let declared = rules
        .and_then(|rules| rules.get("rules"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for node in declared {
        let Some(node_id) = node.get("node_id").and_then(Value::as_str) else {
            continue;
        };
        let record = match run.nodes.remove(node_id) {
            Some(checkpoint) => parse_record(node_id, checkpoint)?,
            None => NodeRecord::default(),
        };
        let node_type = node
            .get("node_type")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let task_name = node
            .get("task_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        nodes.push(node_body(node_id.to_owned(), node_type, task_name, record));
    }
    // Checkpoints of nodes the version does not declare cannot happen for a
    // valid run; show them rather than hide them.
    for (node_id, checkpoint) in std::mem::take(&mut run.nodes) {
        let record = parse_record(&node_id, checkpoint)?;
        nodes.push(node_body(node_id, "unknown", None, record));
    }
    Ok(RunBody {
        run_id: run.run_id,
        company_id: run.company_id,
        event_id: run.event_id,
        event_type: run.event_type,
        rule_version: run.rule_version,
        status: run.status.as_str(),
        created_at: run.created_at,
        started_at: run.started_at,
        finished_at: run.finished_at,
        quarantined: run_error
            .as_ref()
            .and_then(|e| e.get("quarantined"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        error: run_error,
        nodes,
        documents: documents.into_iter().map(DocumentBody::from).collect(),
    })
}

fn parse_record(node_id: &str, checkpoint: Value) -> Result<NodeRecord, ApiError> {
    serde_json::from_value(checkpoint).map_err(|error| {
        ApiError::internal(format!(
            "the checkpoint of node `{node_id}` is not readable: {error}"
        ))
    })
}

fn node_body(
    node_id: String,
    node_type: &str,
    task_name: Option<String>,
    record: NodeRecord,
) -> NodeBody {
    NodeBody {
        node_id,
        node_type: node_type.to_owned(),
        task_name,
        state: record.state.as_str(),
        attempts: record.attempts,
        parameters: record.parameters,
        output: record.output,
        error: record.error,
        started_at: record.started_at,
        finished_at: record.finished_at,
        next_attempt_at: record.next_attempt_at,
        history: record.history,
    }
}

#[cfg(test)]
mod tests {
    use moneyflow_core::run::RunStatus;
    use serde_json::json;

    use super::*;

    fn run(nodes: Value) -> RunRecord {
        RunRecord {
            run_id: "run_1".into(),
            company_id: "acme".into(),
            event_id: "evt_1".into(),
            event_type: "product".into(),
            rule_version: 1,
            status: RunStatus::Running,
            nodes: nodes.as_object().unwrap().clone(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
        }
    }

    fn rules() -> Value {
        json!({"company_id": "acme", "rules": [
            {"node_id": "b", "node_type": "condition"},
            {"node_id": "a", "node_type": "task", "task_name": "payment.tasks.notify"},
        ]})
    }

    #[test]
    fn a_run_not_started_lists_every_node_pending() {
        let body = run_body(run(json!({})), Some(&rules()), Vec::new()).unwrap();
        let nodes = serde_json::to_value(&body.nodes).unwrap();
        assert_eq!(
            nodes,
            json!([
                {"node_id": "b", "node_type": "condition", "state": "pending", "attempts": 0,
                 "parameters": null, "output": null, "error": null, "started_at": null,
                 "finished_at": null, "next_attempt_at": null},
                {"node_id": "a", "node_type": "task", "task_name": "payment.tasks.notify",
                 "state": "pending", "attempts": 0, "parameters": null, "output": null, "error": null,
                 "started_at": null, "finished_at": null, "next_attempt_at": null},
            ])
        );
    }

    #[test]
    fn checkpoints_follow_the_version_order_and_the_run_error_is_lifted() {
        let body = run_body(
            run(json!({
                "a": {"state": "success", "attempts": 1, "output": {"notification_id": "n"}},
                "b": {"state": "success", "attempts": 0},
                "_run": {"state": "failure", "error": {"message": "boom"}},
                "stray": {"state": "skipped", "attempts": 0},
            })),
            Some(&rules()),
            Vec::new(),
        )
        .unwrap();
        let ids: Vec<_> = body.nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "stray"]);
        assert_eq!(body.nodes[1].state, "success");
        assert_eq!(body.nodes[1].output, Some(json!({"notification_id": "n"})));
        assert_eq!(body.nodes[2].node_type, "unknown");
        assert_eq!(body.error, Some(json!({"message": "boom"})));
    }
}
