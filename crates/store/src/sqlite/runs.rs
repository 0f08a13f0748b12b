//! Events, runs, the queue and documents on SQLite.
//!
//! Writes go through the group-commit writer on its own connection: a batch
//! is one `BEGIN IMMEDIATE` transaction (the write lock from the start, so it
//! never fails half-way trying to upgrade a read lock). Lists travel as one
//! JSON array parameter unpacked by `json_each`, so a batch of a thousand
//! accepts is four statements, and a batch of step commits five, each
//! prepared once and cached, instead of thousands of round trips to SQLite's
//! worker thread. Reads use the pool.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;

use moneyflow_core::ports::{
    AcceptOutcome, Document, EventStore, NewEvent, QueueNext, RunRecord, RunStore, RunWork,
    StepCommit, StoreResult,
};
use moneyflow_core::run::RunStatus;
use serde_json::Value;
use sqlx::{Sqlite, SqliteConnection};

use super::SqliteStore;
use crate::codec::{
    add_duration, corrupt_status, from_micros, json_from_text, nodes_from_text, now, to_micros,
    truncate,
};
use crate::error::from_sqlx;
use crate::run_events::{self, EventSink, PendingEvent};
use crate::writer::{
    Answers, BatchDb, Claim, OpResult, Plan, Renewal, Reply, WriteOp, earlier_outcome, fence,
    rounds,
};

impl BatchDb for Sqlite {
    // IMMEDIATE: the write lock from the start, so a batch never fails
    // half-way trying to upgrade a read lock.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    fn run_ops<'a>(
        conn: &'a mut SqliteConnection,
        ops: &'a [WriteOp],
        events: &'a mut EventSink,
    ) -> impl Future<Output = Result<Vec<OpResult>, sqlx::Error>> + Send + 'a {
        run_ops(conn, ops, events)
    }
}

async fn run_ops(
    conn: &mut SqliteConnection,
    ops: &[WriteOp],
    events: &mut EventSink,
) -> Result<Vec<OpResult>, sqlx::Error> {
    let plan = Plan::new(ops);
    let mut answers = Answers::new(ops.len());
    let mut pending = Vec::new();
    for round in rounds(&plan.commits) {
        commit_steps(conn, &round, &mut answers, &mut pending).await?;
    }
    if !plan.accepts.is_empty() {
        accept_events(conn, &plan.accepts, &mut answers, &mut pending).await?;
    }
    for &(i, renewal) in &plan.renewals {
        renew(conn, renewal).await?;
        answers.set(i, Ok(Reply::Done));
    }
    for &(i, claim) in &plan.claims {
        answers.set(i, Ok(Reply::Claimed(claim_runs(conn, claim).await?)));
    }
    // Last, so the lock that orders event ids is held only until the commit.
    super::events::append_events(conn, &pending, events).await?;
    Ok(answers.finish())
}

/// A JSON array parameter for `json_each`.
fn json_param(rows: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Inserts the events (first arrival wins a key), then the runs and queue
/// entries of those that were new, then reads the earlier event of each key
/// that was not.
async fn accept_events<'a>(
    conn: &mut SqliteConnection,
    accepts: &[(usize, &'a NewEvent)],
    answers: &mut Answers,
    pending: &mut Vec<PendingEvent<'a>>,
) -> Result<(), sqlx::Error> {
    let events: Vec<_> = accepts
        .iter()
        .map(|(_, e)| {
            (
                &e.company_id,
                &e.idempotency_key,
                &e.event_id,
                &e.body_sha256,
                &e.body,
                &e.event_type,
                to_micros(truncate(e.received_at)),
                &e.run_id,
            )
        })
        .collect();
    // `WHERE true` keeps `ON CONFLICT` from parsing as a join constraint;
    // `ORDER BY key` (the array index) inserts in arrival order.
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO events \
         (company_id, idempotency_key, event_id, body_sha256, body, event_type, received_at, run_id) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
                value ->> 6, value ->> 7 \
         FROM json_each(?1) WHERE true ORDER BY key \
         ON CONFLICT (company_id, idempotency_key) DO NOTHING \
         RETURNING run_id",
    )
    .bind(json_param(&events)?)
    .fetch_all(&mut *conn)
    .await?;

    // Which requests inserted: the first request carrying each returned
    // run id (a request sent twice inserts once, then replays).
    let mut inserted_runs: HashMap<String, usize> = HashMap::new();
    for run_id in inserted {
        *inserted_runs.entry(run_id).or_default() += 1;
    }
    let mut new_runs = Vec::new();
    let mut seen = Vec::new();
    for &(i, e) in accepts {
        match inserted_runs.get_mut(&e.run_id) {
            Some(count) if *count > 0 => {
                *count -= 1;
                pending.push(run_events::queued(e));
                new_runs.push((
                    &e.run_id,
                    &e.company_id,
                    &e.event_id,
                    &e.event_type,
                    e.rule_version,
                    to_micros(truncate(e.received_at)),
                ));
                answers.set(
                    i,
                    Ok(Reply::Accepted(AcceptOutcome::Accepted {
                        event_id: e.event_id.clone(),
                        run_id: e.run_id.clone(),
                    })),
                );
            }
            _ => seen.push((i, e)),
        }
    }

    if !new_runs.is_empty() {
        let new_runs = json_param(&new_runs)?;
        sqlx::query(
            "INSERT INTO runs \
             (run_id, company_id, event_id, event_type, rule_version, status, nodes, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                    'queued', '{}', value ->> 5 \
             FROM json_each(?1)",
        )
        .bind(&new_runs)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO run_queue (run_id, available_at) \
             SELECT value ->> 0, value ->> 5 FROM json_each(?1)",
        )
        .bind(&new_runs)
        .execute(&mut *conn)
        .await?;
    }

    if !seen.is_empty() {
        let keys: Vec<_> = seen
            .iter()
            .map(|(_, e)| (&e.company_id, &e.idempotency_key))
            .collect();
        let earlier: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT j.key, e.event_id, e.run_id, e.body_sha256 \
             FROM json_each(?1) AS j \
             JOIN events AS e ON e.company_id = j.value ->> 0 AND e.idempotency_key = j.value ->> 1",
        )
        .bind(json_param(&keys)?)
        .fetch_all(&mut *conn)
        .await?;
        for (position, event_id, run_id, body_sha256) in earlier {
            let Some(&(i, e)) = usize::try_from(position).ok().and_then(|p| seen.get(p)) else {
                continue;
            };
            answers.set(
                i,
                Ok(Reply::Accepted(earlier_outcome(
                    e,
                    event_id,
                    run_id,
                    &body_sha256,
                ))),
            );
        }
        // A key that conflicted but cannot be read back is left unanswered:
        // `Answers::finish` reports it as an internal error.
    }
    Ok(())
}

/// Commits a round of steps (each run once): fences on the leases, then
/// writes the checkpoints, the documents and the queue moves of the steps
/// that hold theirs, one statement per table. A lost lease is that step's
/// answer, with nothing of it written.
async fn commit_steps<'a>(
    conn: &mut SqliteConnection,
    round: &[(usize, &'a StepCommit)],
    answers: &mut Answers,
    pending: &mut Vec<PendingEvent<'a>>,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = round.iter().map(|(_, s)| s.run_id.as_str()).collect();
    let holders: HashMap<String, Option<String>> = sqlx::query_as(
        "SELECT run_id, lease_owner FROM run_queue \
         WHERE run_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_param(&ids)?)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let steps = fence(round, &holders, answers);
    if steps.is_empty() {
        return Ok(());
    }
    for step in &steps {
        pending.extend(step.events.iter().map(|event| PendingEvent {
            run_id: &step.run_id,
            kind: event.kind,
            data: Cow::Borrowed(&event.data),
        }));
    }

    let mut runs = Vec::with_capacity(steps.len());
    let mut documents = Vec::new();
    let mut done = Vec::new();
    let mut waiting = Vec::new();
    for step in &steps {
        runs.push((
            &step.run_id,
            step.status.as_str(),
            json_param(&step.nodes)?,
            step.started_at.map(|t| to_micros(truncate(t))),
            step.finished_at.map(|t| to_micros(truncate(t))),
        ));
        for d in &step.documents {
            documents.push((
                &d.key,
                &d.run_id,
                &d.company_id,
                &d.node_id,
                &d.kind,
                json_param(&d.body)?,
                to_micros(truncate(d.created_at)),
            ));
        }
        match step.next {
            QueueNext::Done => done.push(&step.run_id),
            QueueNext::At(at) => waiting.push((&step.run_id, to_micros(truncate(at)))),
            QueueNext::Keep => {}
        }
    }

    // A run keeps its first start time.
    sqlx::query(
        "UPDATE runs SET status = j.value ->> 1, nodes = j.value ->> 2, \
             started_at = COALESCE(runs.started_at, j.value ->> 3), finished_at = j.value ->> 4 \
         FROM json_each(?1) AS j WHERE runs.run_id = j.value ->> 0",
    )
    .bind(json_param(&runs)?)
    .execute(&mut *conn)
    .await?;

    // Notifications hook (outbox): a delivery per matching endpoint for each
    // run this round finishes, in this same transaction
    // (`sqlite/notifications.rs`).
    super::notifications::enqueue_deliveries(conn, &steps).await?;

    if !documents.is_empty() {
        // A document is never stored twice: a re-run keeps the first.
        sqlx::query(
            "INSERT INTO documents (key, run_id, company_id, node_id, kind, body, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                    value ->> 5, value ->> 6 \
             FROM json_each(?1) WHERE true \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(json_param(&documents)?)
        .execute(&mut *conn)
        .await?;
    }
    if !done.is_empty() {
        sqlx::query("DELETE FROM run_queue WHERE run_id IN (SELECT value FROM json_each(?1))")
            .bind(json_param(&done)?)
            .execute(&mut *conn)
            .await?;
    }
    if !waiting.is_empty() {
        sqlx::query(
            "UPDATE run_queue SET available_at = j.value ->> 1, lease_owner = NULL, \
                 lease_until = NULL \
             FROM json_each(?1) AS j WHERE run_queue.run_id = j.value ->> 0",
        )
        .bind(json_param(&waiting)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn renew(conn: &mut SqliteConnection, renewal: &Renewal) -> Result<(), sqlx::Error> {
    if renewal.run_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE run_queue SET lease_until = ?1 \
         WHERE lease_owner = ?2 AND run_id IN (SELECT value FROM json_each(?3))",
    )
    .bind(to_micros(renewal.until))
    .bind(&renewal.owner)
    .bind(json_param(&renewal.run_ids)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn claim_runs(
    conn: &mut SqliteConnection,
    claim: &Claim,
) -> Result<Vec<String>, sqlx::Error> {
    if claim.limit == 0 {
        return Ok(Vec::new());
    }
    // A lease that ran out is claimable again (a visibility timeout): its
    // worker died or stalled.
    sqlx::query_scalar(
        "UPDATE run_queue SET lease_owner = ?1, lease_until = ?2 \
         WHERE run_id IN (SELECT run_id FROM run_queue \
                          WHERE available_at <= ?3 AND (lease_until IS NULL OR lease_until <= ?3) \
                          ORDER BY available_at LIMIT ?4) \
         RETURNING run_id",
    )
    .bind(&claim.owner)
    .bind(to_micros(claim.until))
    .bind(to_micros(claim.now))
    .bind(i64::try_from(claim.limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
}

const RUN_COLUMNS: &str = "r.run_id, r.company_id, r.event_id, r.event_type, r.rule_version, \
                           r.status, r.nodes, r.created_at, r.started_at, r.finished_at";

#[derive(sqlx::FromRow)]
struct RunRow {
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
    fn into_record(self) -> StoreResult<RunRecord> {
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
}

#[derive(sqlx::FromRow)]
struct RunWorkRow {
    #[sqlx(flatten)]
    run: RunRow,
    body: String,
}

#[derive(sqlx::FromRow)]
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
        let renewal = Renewal {
            owner: owner.to_owned(),
            run_ids: run_ids.to_vec(),
            until: truncate(until),
        };
        self.writer.call(WriteOp::Renew(renewal)).await?.into_done()
    }

    async fn release_all_leases(&self) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE run_queue SET lease_owner = NULL, lease_until = NULL \
             WHERE lease_owner IS NOT NULL OR lease_until IS NOT NULL",
        )
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    // "Live" by the real clock: the port takes no `now`. A due time may be
    // in the past (a run waiting for a worker, or whose lease ran out).
    async fn next_due_at(&self) -> StoreResult<Option<time::OffsetDateTime>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(available_at) FROM run_queue WHERE lease_until IS NULL OR lease_until <= ?1",
        )
        .bind(to_micros(now()))
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        due.map(from_micros).transpose()
    }

    async fn load_runs(&self, run_ids: &[String]) -> StoreResult<Vec<RunWork>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(run_ids)
            .map_err(|e| crate::error::corrupt(format!("run ids do not serialise: {e}")))?;
        // Joined on (company_id, event_id), the events index; run_id picks
        // the right one if an event id came with several keys.
        let rows = sqlx::query_as::<_, RunWorkRow>(&format!(
            "SELECT {RUN_COLUMNS}, e.body FROM runs AS r \
             JOIN events AS e ON e.company_id = r.company_id AND e.event_id = r.event_id \
                             AND e.run_id = r.run_id \
             WHERE r.run_id IN (SELECT value FROM json_each(?1))"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.into_iter()
            .map(|row| {
                let event: Value = json_from_text("event body", &row.body)?;
                Ok(RunWork {
                    run: row.run.into_record()?,
                    event,
                })
            })
            .collect()
    }

    async fn commit_step(&self, step: StepCommit) -> StoreResult<()> {
        self.writer.call(WriteOp::Commit(step)).await?.into_done()
    }

    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        sqlx::query_as::<_, RunRow>(&format!(
            "SELECT {RUN_COLUMNS} FROM runs AS r WHERE r.run_id = ?1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(RunRow::into_record)
        .transpose()
    }

    async fn list_documents(&self, run_id: &str) -> StoreResult<Vec<Document>> {
        sqlx::query_as::<_, DocumentRow>(
            "SELECT key, run_id, company_id, node_id, kind, body, created_at FROM documents \
             WHERE run_id = ?1 ORDER BY created_at, key",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(DocumentRow::into_document)
        .collect()
    }
}
