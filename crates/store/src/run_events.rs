//! Run events inside the store, alike on both backends.
//!
//! - A writer batch collects the events of what it writes ([`PendingEvent`]:
//!   `run.queued` for each new run, each committed step's own events) and
//!   appends them as its last statements, so on PostgreSQL the lock that
//!   orders global ids is held only from there to the commit (see
//!   `postgres/events.rs`). Each run's events are numbered after its last
//!   stored one ([`number`]): steps of one run are serialised by the lease
//!   fence, so `max(seq) + 1` inside the batch's transaction is gap-free.
//! - The live feed: once a transaction holding events has committed, they
//!   are published on an in-process broadcast channel ([`Feed`]) for the
//!   server's streams; nothing is built for it while nobody listens. The
//!   feed is a latency shortcut, never the record: a subscriber that lags,
//!   or misses what another process wrote, reads the store.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use moneyflow_core::ports::{NewEvent, RunEvent, RunEventKind, StoreResult};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::error::corrupt;

/// Committed events, a transaction's worth per message, in id order.
pub type FeedBatch = Arc<[RunEvent]>;

/// Transactions' worth of events a slow subscriber may fall behind by
/// before it is told it lagged (and reads the store instead).
const FEED_CAPACITY: usize = 1_024;

/// The in-process live feed of committed run events. Cloning shares it.
#[derive(Clone, Debug)]
pub(crate) struct Feed(broadcast::Sender<FeedBatch>);

impl Feed {
    pub(crate) fn new() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<FeedBatch> {
        self.0.subscribe()
    }

    /// Whether anyone listens: when nobody does, a batch builds no events.
    pub(crate) fn wanted(&self) -> bool {
        self.0.receiver_count() > 0
    }

    /// Publishes a committed transaction's events.
    pub(crate) fn publish(&self, mut events: Vec<RunEvent>) {
        if events.is_empty() {
            return;
        }
        events.sort_by_key(|e| e.id);
        // No receiver is no error: nobody is watching.
        let _ = self.0.send(events.into());
    }
}

/// What a transaction appended, for the feed once it commits. `collect` is
/// off while nobody listens.
#[derive(Debug, Default)]
pub(crate) struct EventSink {
    pub collect: bool,
    pub events: Vec<RunEvent>,
}

impl EventSink {
    pub(crate) fn new(collect: bool) -> Self {
        Self {
            collect,
            events: Vec::new(),
        }
    }
}

/// An event a batch will append to `run_id`.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent<'a> {
    pub run_id: &'a str,
    pub kind: RunEventKind,
    pub data: Cow<'a, Value>,
}

/// `run.queued` of a newly accepted event.
pub(crate) fn queued<'a>(event: &'a NewEvent) -> PendingEvent<'a> {
    PendingEvent {
        run_id: &event.run_id,
        kind: RunEventKind::Queued,
        data: Cow::Owned(json!({
            "event_id": event.event_id,
            "event_type": event.event_type,
            "rule_version": event.rule_version,
        })),
    }
}

/// An event with its run's company and its seq, ready to insert.
#[derive(Debug)]
pub(crate) struct NumberedEvent<'a> {
    pub run_id: &'a str,
    pub company_id: String,
    pub seq: i64,
    pub kind: RunEventKind,
    pub data: &'a Value,
    pub data_text: String,
}

impl NumberedEvent<'_> {
    pub(crate) fn into_event(self, id: i64, created_at: OffsetDateTime) -> RunEvent {
        RunEvent {
            id,
            run_id: self.run_id.to_owned(),
            company_id: self.company_id,
            seq: self.seq,
            kind: self.kind,
            data: self.data.clone(),
            created_at,
        }
    }
}

/// The distinct runs of `pending`, to read their company and last seq.
pub(crate) fn run_ids<'a>(pending: &[PendingEvent<'a>]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = pending.iter().map(|e| e.run_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Numbers `pending` after each run's last stored seq (`runs`: run id →
/// (company id, last seq, 0 when none)). An event of a run that does not
/// exist is left out: it has nothing to describe.
pub(crate) fn number<'a>(
    pending: &'a [PendingEvent<'a>],
    runs: &HashMap<String, (String, i64)>,
) -> Vec<NumberedEvent<'a>> {
    let mut next: HashMap<&str, i64> = HashMap::new();
    pending
        .iter()
        .filter_map(|event| {
            let (company_id, last) = runs.get(event.run_id)?;
            let seq = next.entry(event.run_id).or_insert(*last);
            *seq += 1;
            Some(NumberedEvent {
                run_id: event.run_id,
                company_id: company_id.clone(),
                seq: *seq,
                kind: event.kind,
                data: event.data.as_ref(),
                // Serialising a Value cannot fail (string keys only).
                data_text: serde_json::to_string(event.data.as_ref()).unwrap_or_default(),
            })
        })
        .collect()
}

/// A stored kind, checked: the store writes only known ones.
pub(crate) fn kind_from_text(text: &str) -> StoreResult<RunEventKind> {
    RunEventKind::parse(text).ok_or_else(|| {
        corrupt(format!(
            "stored run event kind {text:?} is not a known kind"
        ))
    })
}

/// Longest page of events one read returns.
pub(crate) fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, 10_000)).unwrap_or(10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_continues_each_run_and_skips_unknown_runs() {
        let data = json!({});
        let pending = vec![
            PendingEvent {
                run_id: "a",
                kind: RunEventKind::Started,
                data: Cow::Borrowed(&data),
            },
            PendingEvent {
                run_id: "b",
                kind: RunEventKind::Queued,
                data: Cow::Borrowed(&data),
            },
            PendingEvent {
                run_id: "a",
                kind: RunEventKind::Finished,
                data: Cow::Borrowed(&data),
            },
            PendingEvent {
                run_id: "ghost",
                kind: RunEventKind::Finished,
                data: Cow::Borrowed(&data),
            },
        ];
        let runs = HashMap::from([
            ("a".to_owned(), ("acme".to_owned(), 4)),
            ("b".to_owned(), ("globex".to_owned(), 0)),
        ]);
        let numbered = number(&pending, &runs);
        let seqs: Vec<_> = numbered.iter().map(|e| (e.run_id, e.seq)).collect();
        assert_eq!(seqs, [("a", 5), ("b", 1), ("a", 6)]);
        assert_eq!(numbered[1].company_id, "globex");
        assert_eq!(run_ids(&pending), ["a", "b", "ghost"]);
    }
}
