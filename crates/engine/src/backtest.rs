//! Backtests: a draft rule set replayed on a company's last stored events,
//! compared with what their runs did — with no effects and nothing stored.
//!
//! Runs are read newest first in pages ([`PAGE`] at a time, keyset paged),
//! so memory stays bounded however many events are replayed. For each one:
//! - *before* is what the stored run did: its checkpointed node states and
//!   status when it has finished; a run not finished yet is simulated on its
//!   pinned version instead;
//! - *after* is the draft, simulated on the event. Tasks a simulation does
//!   not execute (remote ones) take the stored run's recorded result where
//!   it has one, so an `http_request` that failed for real is not assumed to
//!   succeed.
//!
//! A run *changed* when its outcome or the set of nodes that ran (ended in
//! `success` or `failure`) with their states differs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::ports::{HistoryCursor, RuleStore, RunHistoryStore, RunWork, StoreResult};
use moneyflow_core::run::{CompiledRules, NodeState, RunStatus, Step};
use moneyflow_core::validation::validate_rule_set;
use serde::Serialize;
use serde_json::Value;

use crate::simulate::{Simulation, SimulationInput, Simulator};

/// Runs read per page.
pub const PAGE: usize = 100;
/// The most events one backtest replays.
pub const MAX_EVENTS: usize = 10_000;
/// Example runs in a report.
pub const MAX_EXAMPLES: usize = 10;
/// Example event ids per task change.
pub const MAX_TASK_EXAMPLES: usize = 5;
/// Pinned versions kept compiled during one backtest.
const VERSION_CACHE_LIMIT: usize = 64;

/// What a backtest found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BacktestReport {
    pub events_replayed: u64,
    /// Runs whose outcome, or whose nodes that ran, differ under the draft.
    pub runs_changed: u64,
    /// `"succeeded→failed": n`, for each change of outcome seen.
    pub outcome_changes: BTreeMap<String, u64>,
    /// Per task node whose running changes, by node id.
    pub task_changes: Vec<TaskChange>,
    /// Up to [`MAX_EXAMPLES`] changed runs, newest first.
    pub examples: Vec<Example>,
}

/// How often a task runs more or less under the draft.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskChange {
    pub node_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    /// Events on which it did not run and now would.
    pub now_runs: u64,
    /// Events on which it ran and now would not.
    pub no_longer_runs: u64,
    /// Up to [`MAX_TASK_EXAMPLES`] of those events' ids.
    pub examples: Vec<String>,
}

/// One changed run, before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub event_id: String,
    pub run_id: String,
    pub before: Outcome,
    pub after: Outcome,
}

/// How a run ended and each node's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub status: RunStatus,
    /// Node id → state, in rule order.
    pub nodes: serde_json::Map<String, Value>,
}

/// A node's kind, to tell tasks apart.
#[derive(Debug, Clone, PartialEq)]
struct NodeKind {
    task_name: Option<String>,
}

/// One side of a comparison.
struct Side {
    status: RunStatus,
    /// Node id → (state, kind), in rule order.
    nodes: Vec<(String, NodeState, NodeKind)>,
}

impl Side {
    fn from_simulation(simulation: &Simulation) -> Self {
        Self {
            status: simulation.status,
            nodes: simulation
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.node_id.clone(),
                        n.state,
                        NodeKind {
                            task_name: n.task_name.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The stored checkpoints of a finished run; node kinds from its pinned
    /// version when it could be compiled.
    fn from_stored(work: &RunWork, pinned: Option<&CompiledRules>) -> Self {
        let kind_of = |node_id: &str| {
            let task_name = pinned
                .and_then(|rules| rules.index_of(node_id).map(|i| &rules.nodes[i].step))
                .and_then(|step| match step {
                    Step::Task { task_name, .. } => Some(task_name.clone()),
                    Step::Condition(_) => None,
                });
            NodeKind { task_name }
        };
        Self {
            status: work.run.status,
            nodes: work
                .run
                .nodes
                .iter()
                // `_run` records a failure of the run itself, not a node.
                .filter(|(id, _)| !id.starts_with('_'))
                .map(|(id, record)| {
                    let state = record
                        .get("state")
                        .cloned()
                        .and_then(|s| serde_json::from_value(s).ok())
                        .unwrap_or_default();
                    (id.clone(), state, kind_of(id))
                })
                .collect(),
        }
    }

    fn ran(&self) -> BTreeMap<&str, NodeState> {
        self.nodes
            .iter()
            .filter(|(_, state, _)| matches!(state, NodeState::Success | NodeState::Failure))
            .map(|(id, state, _)| (id.as_str(), *state))
            .collect()
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            status: self.status,
            nodes: self
                .nodes
                .iter()
                .map(|(id, state, _)| (id.clone(), Value::String(state.as_str().to_owned())))
                .collect(),
        }
    }
}

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// Reading the stored runs failed; see the store error for whether a
    /// retry is safe.
    #[error(transparent)]
    Store(#[from] moneyflow_core::ports::StoreError),
}

/// What a backtest replays.
#[derive(Debug, Clone, Copy)]
pub struct BacktestInput<'a> {
    pub company_id: &'a str,
    /// `$context.company`.
    pub company: &'a Value,
    /// The compiled draft.
    pub draft: &'a CompiledRules,
    /// How many of the newest events, at most [`MAX_EVENTS`].
    pub limit: usize,
    /// To compile the pinned versions of runs not finished yet.
    pub catalogue: &'a Catalogue,
}

/// Replays the company's last `limit` events through the draft and
/// compares each with its stored run.
#[tracing::instrument(skip_all, fields(company_id = %input.company_id, limit = input.limit))]
pub async fn backtest<S>(
    store: &S,
    simulator: &Simulator,
    input: BacktestInput<'_>,
) -> Result<BacktestReport, BacktestError>
where
    S: RunHistoryStore + RuleStore,
{
    let limit = input.limit.min(MAX_EVENTS);
    let mut report = BacktestReport::default();
    let mut tasks: BTreeMap<String, TaskChange> = BTreeMap::new();
    let mut versions: HashMap<i64, Option<Arc<CompiledRules>>> = HashMap::new();
    let mut cursor: Option<HistoryCursor> = None;
    let mut left = limit;
    while left > 0 {
        let asked = left.min(PAGE);
        let page = store
            .recent_runs(input.company_id, cursor.as_ref(), asked)
            .await?;
        let Some(last) = page.last() else { break };
        cursor = Some(HistoryCursor {
            created_at: last.run.created_at,
            run_id: last.run.run_id.clone(),
        });
        left = left.saturating_sub(page.len());
        // A short page is the last one.
        let more = page.len() == asked;
        for work in &page {
            let pinned = pinned_version(store, input, &mut versions, work.run.rule_version).await?;
            let event_input = SimulationInput {
                company_id: input.company_id,
                event: &work.event,
                company: input.company,
                rule_version: None,
            };
            let before = if work.run.status.is_terminal() {
                Side::from_stored(work, pinned.as_deref())
            } else {
                match &pinned {
                    Some(rules) => {
                        let pinned_input = SimulationInput {
                            rule_version: Some(work.run.rule_version),
                            ..event_input
                        };
                        Side::from_simulation(
                            &simulator.replay(rules, pinned_input, &work.run.nodes).await,
                        )
                    }
                    None => Side::from_stored(work, None),
                }
            };
            let after = Side::from_simulation(
                &simulator
                    .replay(input.draft, event_input, &work.run.nodes)
                    .await,
            );
            compare(&mut report, &mut tasks, work, &before, &after);
        }
        // The work of a page is CPU only: let other tasks run between pages.
        tokio::task::yield_now().await;
        if !more {
            break;
        }
    }
    report.task_changes = tasks
        .into_values()
        .filter(|t| t.now_runs > 0 || t.no_longer_runs > 0)
        .collect();
    Ok(report)
}

/// The compiled pinned version of a run, cached for the backtest; `None`
/// when it is missing or no longer validates.
async fn pinned_version<S: RuleStore>(
    store: &S,
    input: BacktestInput<'_>,
    cache: &mut HashMap<i64, Option<Arc<CompiledRules>>>,
    version: i64,
) -> StoreResult<Option<Arc<CompiledRules>>> {
    if let Some(cached) = cache.get(&version) {
        return Ok(cached.clone());
    }
    let compiled = store
        .get_rule_version(input.company_id, version)
        .await?
        .and_then(|v| validate_rule_set(&v.rules, input.catalogue).ok())
        .and_then(|rule_set| CompiledRules::compile(&rule_set).ok())
        .map(Arc::new);
    if cache.len() >= VERSION_CACHE_LIMIT {
        cache.clear();
    }
    cache.insert(version, compiled.clone());
    Ok(compiled)
}

fn compare(
    report: &mut BacktestReport,
    tasks: &mut BTreeMap<String, TaskChange>,
    work: &RunWork,
    before: &Side,
    after: &Side,
) {
    report.events_replayed += 1;
    let (ran_before, ran_after) = (before.ran(), after.ran());
    let changed = before.status != after.status || ran_before != ran_after;
    if !changed {
        return;
    }
    report.runs_changed += 1;
    if before.status != after.status {
        *report
            .outcome_changes
            .entry(format!(
                "{}→{}",
                before.status.as_str(),
                after.status.as_str()
            ))
            .or_default() += 1;
    }
    let task_names = before
        .nodes
        .iter()
        .chain(&after.nodes)
        .filter_map(|(id, _, kind)| kind.task_name.as_ref().map(|name| (id.as_str(), name)));
    let mut seen: HashSet<&str> = HashSet::new();
    for (node_id, task_name) in task_names {
        if !seen.insert(node_id) {
            continue;
        }
        let (was, is) = (
            ran_before.contains_key(node_id),
            ran_after.contains_key(node_id),
        );
        if was == is {
            continue;
        }
        let change = tasks
            .entry(node_id.to_owned())
            .or_insert_with(|| TaskChange {
                node_id: node_id.to_owned(),
                task_name: Some(task_name.clone()),
                ..TaskChange::default()
            });
        if is {
            change.now_runs += 1;
        } else {
            change.no_longer_runs += 1;
        }
        if change.examples.len() < MAX_TASK_EXAMPLES {
            change.examples.push(work.run.event_id.clone());
        }
    }
    if report.examples.len() < MAX_EXAMPLES {
        report.examples.push(Example {
            event_id: work.run.event_id.clone(),
            run_id: work.run.run_id.clone(),
            before: before.outcome(),
            after: after.outcome(),
        });
    }
}
