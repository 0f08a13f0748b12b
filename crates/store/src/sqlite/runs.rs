//! Events, runs, the queue and documents on SQLite.
//!
//! Writes are requests to the writer thread (`writer.rs`), which runs each
//! of a batch's requests here ([`run_op`]) inside its own savepoint of the
//! batch's one transaction: a few cached statements per request, each a
//! call into SQLite on the same thread. Reads run on the read connections
//! (`connection.rs`).

use moneyflow_core::ports::{
    AcceptOutcome, Document, EventStore, NewEvent, QueueNext, RunRecord, RunStore, RunWork,
    StepCommit, StoreError, StoreResult,
};
use moneyflow_core::run::RunStatus;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::SqliteStore;
use super::connection::{select, select_one};
use super::events::{RunTail, append_events, redrive};
use super::writer::{OpEvents, OpFailure};
use crate::codec::{
    add_duration, corrupt_status, from_micros, json_from_text, nodes_from_text, now, to_micros,
    truncate,
};
use crate::error::from_rusqlite;
use crate::fair_share::{QueuedCompany, fair_shares};
use crate::run_events;
use crate::writer::{Claim, Renewal, Reply, WriteOp, earlier_outcome, lease_lost};

/// Runs one request of a batch (inside its savepoint).
pub(super) fn run_op(
    conn: &Connection,
    op: &WriteOp,
    events: &mut OpEvents,
) -> Result<Reply, OpFailure> {
    match op {
        WriteOp::Accept(event) => Ok(Reply::Accepted(accept(conn, event, events)?)),
        WriteOp::Commit(step) => {
            commit(conn, step, events)?;
            Ok(Reply::Done)
        }
        WriteOp::Redrive(r) => Ok(Reply::Redriven(redrive(conn, r, events)?)),
        WriteOp::Renew(renewal) => {
            renew(conn, renewal)?;
            Ok(Reply::Done)
        }
        WriteOp::ReleaseAll => Ok(Reply::Released(release_all(conn)?)),
        WriteOp::Claim(claim) => Ok(Reply::Claimed(claim_runs(conn, claim)?)),
    }
}

/// Inserts the event (the first arrival wins a key), its run and queue
/// entry, and `run.queued`; or answers with the earlier event of the key.
fn accept(
    conn: &Connection,
    e: &NewEvent,
    events: &mut OpEvents,
) -> rusqlite::Result<AcceptOutcome> {
    let received_at = to_micros(truncate(e.received_at));
    // No conflict target: a known idempotency key and a known webhook-id
    // both make the request a repeat.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO events \
             (company_id, idempotency_key, event_id, body_sha256, body, event_type, received_at, \
              run_id, webhook_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            e.company_id,
            e.idempotency_key,
            e.event_id,
            e.body_sha256,
            e.body,
            e.event_type,
            received_at,
            e.run_id,
            e.webhook_id
        ])?;
    if inserted == 0 {
        // The webhook-id names a signed message whatever its key: where both
        // match, its event is the answer.
        let by_webhook_id = match &e.webhook_id {
            Some(webhook_id) => conn
                .prepare_cached(
                    "SELECT event_id, run_id, body_sha256 FROM events \
                     WHERE company_id = ?1 AND webhook_id = ?2",
                )?
                .query_row(params![e.company_id, webhook_id], earlier)
                .optional()?,
            None => None,
        };
        let found = match by_webhook_id {
            Some(found) => found,
            None => conn
                .prepare_cached(
                    "SELECT event_id, run_id, body_sha256 FROM events \
                     WHERE company_id = ?1 AND idempotency_key = ?2",
                )?
                .query_row(params![e.company_id, e.idempotency_key], earlier)?,
        };
        let (event_id, run_id, body_sha256) = found;
        return Ok(earlier_outcome(e, event_id, run_id, &body_sha256));
    }
    conn.prepare_cached(
        "INSERT INTO runs \
         (run_id, company_id, event_id, event_type, rule_version, status, nodes, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'queued', '{}', ?6)",
    )?
    .execute(params![
        e.run_id,
        e.company_id,
        e.event_id,
        e.event_type,
        e.rule_version,
        received_at
    ])?;
    conn.prepare_cached(
        "INSERT INTO run_queue (run_id, available_at, company_id) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![e.run_id, received_at, e.company_id])?;
    let queued = run_events::queued(e);
    let tail = RunTail {
        run_id: &e.run_id,
        company_id: &e.company_id,
        last_seq: 0,
    };
    append_events(conn, &tail, [(queued.kind, queued.data.as_ref())], events)?;
    Ok(AcceptOutcome::Accepted {
        event_id: e.event_id.clone(),
        run_id: e.run_id.clone(),
    })
}

/// An earlier event's id, run and body hash.
fn earlier(row: &Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// Fences on the lease, then writes the checkpoint, the deliveries of a
/// finished run, the documents, the queue move and the step's run events.
/// A lost lease is the step's answer, with nothing of it written.
fn commit(conn: &Connection, step: &StepCommit, events: &mut OpEvents) -> Result<(), OpFailure> {
    let holder: Option<(Option<String>, String, String, i64, i64)> = conn
        .prepare_cached(
            "SELECT q.lease_owner, r.company_id, r.event_id, r.rule_version, \
                    COALESCE((SELECT MAX(e.seq) FROM run_events AS e WHERE e.run_id = ?1), 0) \
             FROM run_queue AS q JOIN runs AS r ON r.run_id = q.run_id WHERE q.run_id = ?1",
        )?
        .query_row([&step.run_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?;
    if let Some(refusal) = lease_lost(step, holder.as_ref().map(|h| h.0.clone())) {
        return Err(OpFailure::Refused(refusal));
    }
    let Some((_, company_id, event_id, rule_version, last_seq)) = holder else {
        return Err(OpFailure::Refused(StoreError::Internal(
            "a fenced run has no queue entry".into(),
        )));
    };
    let nodes = serde_json::to_string(&step.nodes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    // A run keeps its first start time.
    conn.prepare_cached(
        "UPDATE runs SET status = ?2, nodes = ?3, started_at = COALESCE(started_at, ?4), \
             finished_at = ?5 \
         WHERE run_id = ?1",
    )?
    .execute(params![
        step.run_id,
        step.status.as_str(),
        nodes,
        step.started_at.map(|t| to_micros(truncate(t))),
        step.finished_at.map(|t| to_micros(truncate(t)))
    ])?;
    if step.status.is_terminal() {
        // The outbox hook (`notifications.rs`): in this same transaction.
        super::notifications::enqueue_deliveries(conn, step, &company_id, &event_id, rule_version)?;
    }
    // A document is never stored twice: a re-run keeps the first.
    for d in &step.documents {
        let body = serde_json::to_string(&d.body)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        conn.prepare_cached(
            "INSERT INTO documents (key, run_id, company_id, node_id, kind, body, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key) DO NOTHING",
        )?
        .execute(params![
            d.key,
            d.run_id,
            d.company_id,
            d.node_id,
            d.kind,
            body,
            to_micros(truncate(d.created_at))
        ])?;
    }
    match step.next {
        QueueNext::Done => {
            conn.prepare_cached("DELETE FROM run_queue WHERE run_id = ?1")?
                .execute([&step.run_id])?;
        }
        QueueNext::Quarantine => {
            conn.prepare_cached("DELETE FROM run_queue WHERE run_id = ?1")?
                .execute([&step.run_id])?;
            conn.prepare_cached("UPDATE runs SET quarantined = 1 WHERE run_id = ?1")?
                .execute([&step.run_id])?;
        }
        // The step ended: the claim count starts over.
        QueueNext::At(at) => {
            conn.prepare_cached(
                "UPDATE run_queue SET available_at = ?2, lease_owner = NULL, lease_until = NULL, \
                     claims = 0 \
                 WHERE run_id = ?1",
            )?
            .execute(params![step.run_id, to_micros(truncate(at))])?;
        }
        QueueNext::Keep => {}
    }
    let tail = RunTail {
        run_id: &step.run_id,
        company_id: &company_id,
        last_seq,
    };
    append_events(
        conn,
        &tail,
        step.events.iter().map(|e| (e.kind, &e.data)),
        events,
    )?;
    Ok(())
}

fn renew(conn: &Connection, renewal: &Renewal) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE run_queue SET lease_until = ?1 WHERE lease_owner = ?2 AND run_id = ?3",
    )?;
    for run_id in &renewal.run_ids {
        stmt.execute(params![to_micros(renewal.until), renewal.owner, run_id])?;
    }
    Ok(())
}

fn release_all(conn: &Connection) -> rusqlite::Result<u64> {
    let released = conn
        .prepare_cached(
            "UPDATE run_queue SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL",
        )?
        .execute([])?;
    Ok(u64::try_from(released).unwrap_or(u64::MAX))
}

fn claim_runs(conn: &Connection, claim: &Claim) -> rusqlite::Result<Vec<String>> {
    if claim.limit == 0 {
        return Ok(Vec::new());
    }
    // The companies with queued runs, by skipping through the
    // (company_id, available_at) index one company at a time, each with its
    // runs in flight.
    let companies: Vec<QueuedCompany> = conn
        .prepare_cached(
            "WITH RECURSIVE queued(company_id) AS ( \
                 SELECT MIN(company_id) FROM run_queue \
                 UNION ALL \
                 SELECT (SELECT MIN(company_id) FROM run_queue WHERE company_id > queued.company_id) \
                 FROM queued WHERE queued.company_id IS NOT NULL) \
             SELECT company_id, \
                    (SELECT COUNT(*) FROM run_queue AS q \
                     WHERE q.company_id = queued.company_id AND q.lease_owner IS NOT NULL) \
             FROM queued WHERE company_id IS NOT NULL",
        )?
        .query_map([], |row| {
            Ok(QueuedCompany {
                company_id: row.get(0)?,
                in_flight: row.get::<_, i64>(1)?.try_into().unwrap_or(0),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut claimed = Vec::with_capacity(claim.limit);
    if companies.len() > 1 {
        for (company_id, slots) in fair_shares(&companies, claim.limit) {
            claimed.extend(claim_due(conn, claim, slots, Some(company_id))?);
        }
    }
    // What no company's share used goes by due time.
    let rest = claim.limit.saturating_sub(claimed.len());
    if rest > 0 {
        claimed.extend(claim_due(conn, claim, rest, None)?);
    }
    Ok(claimed)
}

/// The claim of up to `?4` due runs, oldest first: `?5` the company when
/// the filter names it. A lease that ran out is claimable again (a
/// visibility timeout): its worker died or stalled.
macro_rules! claim_due_sql {
    ($filter:literal) => {
        concat!(
            "UPDATE run_queue SET lease_owner = ?1, lease_until = ?2, claims = claims + 1 \
             WHERE run_id IN (SELECT run_id FROM run_queue WHERE ",
            $filter,
            " available_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3) \
                              ORDER BY available_at LIMIT ?4) \
             RETURNING run_id"
        )
    };
}

/// Leases up to `limit` due runs (of `company_id` only, when given).
fn claim_due(
    conn: &Connection,
    claim: &Claim,
    limit: usize,
    company_id: Option<&str>,
) -> rusqlite::Result<Vec<String>> {
    let until = to_micros(claim.until);
    let now = to_micros(claim.now);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&claim.owner, &until, &now, &limit];
    let sql = match &company_id {
        Some(company_id) => {
            values.push(company_id);
            claim_due_sql!("company_id = ?5 AND")
        }
        None => claim_due_sql!(""),
    };
    conn.prepare_cached(sql)?
        .query_map(values.as_slice(), |row| row.get::<_, String>(0))?
        .collect()
}

pub(super) const RUN_COLUMNS: &str = "r.run_id, r.company_id, r.event_id, r.event_type, \
                                      r.rule_version, r.status, r.nodes, r.created_at, \
                                      r.started_at, r.finished_at";

/// A run's columns ([`RUN_COLUMNS`]) as read, before they are checked.
pub(super) struct RunRow {
    run_id: String,
    company_id: String,
    event_id: String,
    event_type: String,
    rule_version: i64,
    status: String,
    nodes: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl RunRow {
    /// Reads [`RUN_COLUMNS`] from the start of `row`.
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            run_id: row.get(0)?,
            company_id: row.get(1)?,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
            rule_version: row.get(4)?,
            status: row.get(5)?,
            nodes: row.get(6)?,
            created_at: row.get(7)?,
            started_at: row.get(8)?,
            finished_at: row.get(9)?,
        })
    }

    pub(super) fn into_record(self) -> StoreResult<RunRecord> {
        Ok(RunRecord {
            status: RunStatus::parse(&self.status).ok_or_else(|| corrupt_status(&self.status))?,
            nodes: nodes_from_text(&self.nodes)?,
            created_at: from_micros(self.created_at)?,
            started_at: self.started_at.map(from_micros).transpose()?,
            finished_at: self.finished_at.map(from_micros).transpose()?,
            run_id: self.run_id,
            company_id: self.company_id,
            event_id: self.event_id,
            event_type: self.event_type,
            rule_version: self.rule_version,
        })
    }

    /// With the event body that follows [`RUN_COLUMNS`] in `row`, and the
    /// queue entry's claim count (`None`: no longer queued).
    pub(super) fn into_work(self, body: &str, claims: Option<i64>) -> StoreResult<RunWork> {
        Ok(RunWork {
            event: json_from_text("event body", body)?,
            run: self.into_record()?,
            claims: claims.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        })
    }
}

struct DocumentRow {
    key: String,
    run_id: String,
    company_id: String,
    node_id: String,
    kind: String,
    body: String,
    created_at: i64,
}

impl DocumentRow {
    fn into_document(self) -> StoreResult<Document> {
        Ok(Document {
            body: json_from_text("document body", &self.body)?,
            created_at: from_micros(self.created_at)?,
            key: self.key,
            run_id: self.run_id,
            company_id: self.company_id,
            node_id: self.node_id,
            kind: self.kind,
        })
    }
}

impl EventStore for SqliteStore {
    async fn accept_event(&self, event: NewEvent) -> StoreResult<AcceptOutcome> {
        self.writer
            .call(WriteOp::Accept(event))
            .await?
            .into_accept()
    }
}

impl RunStore for SqliteStore {
    async fn claim_runs(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: time::OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        let now = truncate(now);
        let claim = Claim {
            owner: owner.to_owned(),
            limit,
            now,
            until: add_duration(now, lease),
        };
        self.writer
            .call(WriteOp::Claim(claim))
            .await?
            .into_claimed()
    }

    async fn renew_leases(
        &self,
        owner: &str,
        run_ids: &[String],
        until: time::OffsetDateTime,
    ) -> StoreResult<()> {
        if run_ids.is_empty() {
            return Ok(());
        }
        let renewal = Renewal {
            owner: owner.to_owned(),
            run_ids: run_ids.to_vec(),
            until: truncate(until),
        };
        self.writer.call(WriteOp::Renew(renewal)).await?.into_done()
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        self.writer.call(WriteOp::ReleaseAll).await?.into_released()
    }

    // "Live" by the real clock: the port takes no `now`. A due time may be
    // in the past (a run waiting for a worker, or whose lease ran out).
    async fn next_due_at(&self) -> StoreResult<Option<time::OffsetDateTime>> {
        let now = to_micros(now());
        let due: Option<i64> = self
            .readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT MIN(available_at) FROM run_queue \
                     WHERE lease_until IS NULL OR lease_until <= ?1",
                )
                .and_then(|mut stmt| stmt.query_row([now], |row| row.get(0)))
                .map_err(from_rusqlite)
            })
            .await?;
        due.map(from_micros).transpose()
    }

    async fn load_runs(&self, run_ids: &[String]) -> StoreResult<Vec<RunWork>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = run_ids.to_vec();
        self.readers
            .read(move |conn| {
                // Joined on (company_id, event_id), the events index; run_id
                // picks the right one if an event id came with several keys.
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS}, e.body, q.claims FROM runs AS r \
                         JOIN events AS e ON e.company_id = r.company_id \
                                         AND e.event_id = r.event_id AND e.run_id = r.run_id \
                         LEFT JOIN run_queue AS q ON q.run_id = r.run_id \
                         WHERE r.run_id = ?1"
                    ))
                    .map_err(from_rusqlite)?;
                let mut runs = Vec::with_capacity(ids.len());
                for id in &ids {
                    let row = stmt
                        .query_row([id], |row| {
                            Ok((
                                RunRow::read(row)?,
                                row.get::<_, String>(10)?,
                                row.get::<_, Option<i64>>(11)?,
                            ))
                        })
                        .optional()
                        .map_err(from_rusqlite)?;
                    if let Some((run, body, claims)) = row {
                        runs.push(run.into_work(&body, claims)?);
                    }
                }
                Ok(runs)
            })
            .await
    }

    async fn commit_step(&self, step: StepCommit) -> StoreResult<()> {
        self.writer.call(WriteOp::Commit(step)).await?.into_done()
    }

    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        let run_id = run_id.to_owned();
        self.readers
            .read(move |conn| {
                select_one(
                    conn,
                    &format!("SELECT {RUN_COLUMNS} FROM runs AS r WHERE r.run_id = ?1"),
                    [&run_id],
                    RunRow::read,
                    RunRow::into_record,
                )
            })
            .await
    }

    async fn list_documents(&self, run_id: &str) -> StoreResult<Vec<Document>> {
        let run_id = run_id.to_owned();
        self.readers
            .read(move |conn| {
                select(
                    conn,
                    "SELECT key, run_id, company_id, node_id, kind, body, created_at \
                     FROM documents WHERE run_id = ?1 ORDER BY created_at, key",
                    [&run_id],
                    |row| {
                        Ok(DocumentRow {
                            key: row.get(0)?,
                            run_id: row.get(1)?,
                            company_id: row.get(2)?,
                            node_id: row.get(3)?,
                            kind: row.get(4)?,
                            body: row.get(5)?,
                            created_at: row.get(6)?,
                        })
                    },
                    DocumentRow::into_document,
                )
            })
            .await
    }
}
