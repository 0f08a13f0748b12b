//! Ports for watching runs: the run events the store keeps (and streams),
//! listing runs with filters and keyset paging, the queue's gauges, and
//! redriving a failed run.
//!
//! Run events are written in the same transaction as the change they
//! describe: `run.queued` with the accepted event, `run.started`,
//! `node.finished` and `run.finished` with a step's checkpoint, and
//! `run.redriven` with the redrive. Each gets a global `id` (increasing in
//! commit order, with gaps) and a per-run `seq` (1, 2, 3… without gaps).

use std::future::Future;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::StoreResult;
use crate::run::RunStatus;

/// What a run event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RunEventKind {
    /// The payment event was accepted and its run queued.
    #[serde(rename = "run.queued")]
    Queued,
    /// A worker began executing the run (again, after a redrive).
    #[serde(rename = "run.started")]
    Started,
    /// A node reached `success`, `failure` or `skipped`.
    #[serde(rename = "node.finished")]
    NodeFinished,
    /// The run ended: `succeeded`, `failed` or `aborted`.
    #[serde(rename = "run.finished")]
    Finished,
    /// A failed run was queued again from its failed nodes.
    #[serde(rename = "run.redriven")]
    Redriven,
}

impl RunEventKind {
    pub const ALL: [RunEventKind; 5] = [
        Self::Queued,
        Self::Started,
        Self::NodeFinished,
        Self::Finished,
        Self::Redriven,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "run.queued",
            Self::Started => "run.started",
            Self::NodeFinished => "node.finished",
            Self::Finished => "run.finished",
            Self::Redriven => "run.redriven",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// An event to append to a run, as the executor describes it; the store
/// assigns its ids and time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunEvent {
    pub kind: RunEventKind,
    /// A JSON object; see [`RunEventKind`] for what each kind carries.
    pub data: Value,
}

impl NewRunEvent {
    pub fn new(kind: RunEventKind, data: Value) -> Self {
        Self { kind, data }
    }

    /// `run.started`.
    pub fn started() -> Self {
        Self::new(RunEventKind::Started, Value::Object(Map::new()))
    }

    /// `run.finished` with the run's final status.
    pub fn finished(status: RunStatus) -> Self {
        let mut data = Map::new();
        data.insert("status".into(), Value::String(status.as_str().into()));
        Self::new(RunEventKind::Finished, Value::Object(data))
    }
}

/// A stored run event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEvent {
    /// Global, increasing in commit order (with gaps): a company stream's cursor.
    pub id: i64,
    pub run_id: String,
    pub company_id: String,
    /// 1, 2, 3… per run, without gaps: a run stream's cursor.
    pub seq: i64,
    pub kind: RunEventKind,
    pub data: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Which runs to list, newest first (by `created_at`, then `run_id`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunQuery {
    /// `None`: every company's runs.
    pub company_id: Option<String>,
    pub status: Option<RunStatus>,
    pub event_type: Option<String>,
    pub rule_version: Option<i64>,
    /// Created at or after.
    pub created_after: Option<OffsetDateTime>,
    /// Created strictly before.
    pub created_before: Option<OffsetDateTime>,
    /// Keyset paging: only runs strictly older than this `(created_at, run_id)`.
    pub before: Option<(OffsetDateTime, String)>,
    pub limit: usize,
}

/// A run without its checkpoints, for listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub company_id: String,
    pub event_id: String,
    pub event_type: String,
    pub rule_version: i64,
    pub status: RunStatus,
    /// How many times the run was redriven.
    pub redrive_count: i64,
    /// Failed by quarantine: its step never committed (it crashed the
    /// process or lost its lease) too many times. Cleared by a redrive.
    pub quarantined: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// The run queue at a glance, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Runs not finished (every queue entry).
    pub depth: i64,
    /// Entries due now and not leased: waiting for a worker.
    pub due: i64,
    /// When the longest-waiting due entry became due.
    pub oldest_due_at: Option<OffsetDateTime>,
}

/// A redrive to commit: the run's new checkpoints (failed nodes and those
/// skipped because of them reset to pending, every success kept).
#[derive(Debug, Clone, PartialEq)]
pub struct Redrive {
    pub run_id: String,
    pub nodes: Map<String, Value>,
    /// `data` of the `run.redriven` event.
    pub data: Value,
    pub now: OffsetDateTime,
}

/// Run events and run listings: what monitoring reads.
pub trait RunEventStore: Send + Sync {
    /// The run's events with `seq > after_seq`, by seq, at most `limit`.
    fn list_run_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<RunEvent>>> + Send;
    /// The company's events with `id > after_id`, by id, at most `limit`.
    fn list_company_events(
        &self,
        company_id: &str,
        after_id: i64,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<RunEvent>>> + Send;
    /// Runs matching `query`, newest first, at most `query.limit`.
    fn list_runs(
        &self,
        query: &RunQuery,
    ) -> impl Future<Output = StoreResult<Vec<RunSummary>>> + Send;
    fn get_run_summary(
        &self,
        run_id: &str,
    ) -> impl Future<Output = StoreResult<Option<RunSummary>>> + Send;
    /// The queue's depth and its oldest due entry, as of `now`.
    fn queue_stats(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<QueueStats>> + Send;
    /// In one transaction: checks the run is still `failed`, stores the new
    /// checkpoints, sets it `queued` (finish time cleared, one more
    /// `redrive_count`), queues it and appends `run.redriven`.
    /// [`super::StoreError::Conflict`] when the run is not failed (any more);
    /// `NotFound` when it does not exist.
    fn redrive_run(&self, redrive: Redrive)
    -> impl Future<Output = StoreResult<RunSummary>> + Send;
}
