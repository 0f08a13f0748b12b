//! Events, runs, the queue and documents on PostgreSQL.
//!
//! Writes go through the group-commit writers: a batch is one READ COMMITTED
//! transaction on a writer's own connection. Lists travel as arrays unpacked
//! by `UNNEST`, so a batch of a thousand accepts is four statements, and a
//! batch of step commits five. Several writers run batches at once:
//! - claims lock the entries they take with `FOR UPDATE SKIP LOCKED`, so two
//!   claims never wait for, nor take, the same run;
//! - step commits lock their queue entries (`FOR UPDATE`, in run id order)
//!   while they check the leases, so a claim cannot take a run between the
//!   check and the commit;
//! - accepts insert keys in one global order (see [`Plan`]), so two batches
//!   holding the same keys wait for each other instead of deadlocking. (Any
//!   deadlock left fails one batch, whose requests then run one by one.)
//!
//! Reads use the pool.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;

use moneyflow_core::ports::{
    AcceptOutcome, Document, EventStore, NewEvent, QueueNext, RunRecord, RunStore, RunWork,
    StepCommit, StoreError, StoreResult,
};
use moneyflow_core::run::RunStatus;
use sqlx::{PgConnection, Postgres};
use time::OffsetDateTime;

use super::PgStore;
use crate::codec::{add_duration, corrupt_status, json_from_text, nodes_from_text, now, truncate};
use crate::error::from_sqlx;
use crate::fair_share::{QueuedCompany, fair_shares};
use crate::run_events::{self, EventSink, PendingEvent};
use crate::writer::{
    Answers, BatchDb, Claim, OpResult, Plan, Renewal, Reply, WriteOp, earlier_outcome, fence,
    rounds,
};

impl BatchDb for Postgres {
    // READ COMMITTED, the default: each statement sees what committed
    // before it, which the queue statements rely on.
    const BEGIN: &'static str = "BEGIN";

    fn run_ops<'a>(
        conn: &'a mut PgConnection,
        ops: &'a [WriteOp],
        events: &'a mut EventSink,
    ) -> impl Future<Output = Result<Vec<OpResult>, sqlx::Error>> + Send + 'a {
        run_ops(conn, ops, events)
    }
}

async fn run_ops(
    conn: &mut PgConnection,
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
    // This backend redrives and releases leases in transactions of their
    // own (`events.rs`, `release_all_leases`), never through the writer.
    for i in plan.redrives.iter().map(|(i, _)| *i).chain(plan.releases) {
        answers.set(
            i,
            Err(StoreError::Internal(
                "PostgreSQL's writer does not take redrives or lease releases".into(),
            )),
        );
    }
    // Last, so the lock that orders event ids is held only until the commit.
    super::events::append_events(conn, &pending, events).await?;
    Ok(answers.finish())
}

fn json_text(value: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Inserts the events (first arrival wins a key), then the runs and queue
/// entries of those that were new, then reads the earlier event of each key
/// that was not.
async fn accept_events<'a>(
    conn: &mut PgConnection,
    accepts: &[(usize, &'a NewEvent)],
    answers: &mut Answers,
    pending: &mut Vec<PendingEvent<'a>>,
) -> Result<(), sqlx::Error> {
    let n = accepts.len();
    let (mut company, mut key, mut event_id, mut sha) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut body, mut event_type, mut received_at, mut run_id) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut webhook_id = Vec::with_capacity(n);
    for (_, e) in accepts {
        webhook_id.push(e.webhook_id.as_deref());
        company.push(e.company_id.as_str());
        key.push(e.idempotency_key.as_str());
        event_id.push(e.event_id.as_str());
        sha.push(e.body_sha256.as_str());
        body.push(e.body.as_str());
        event_type.push(e.event_type.as_str());
        received_at.push(truncate(e.received_at));
        run_id.push(e.run_id.as_str());
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO events \
         (company_id, idempotency_key, event_id, body_sha256, body, event_type, received_at, run_id, \
          webhook_id) \
         SELECT company_id, idempotency_key, event_id, body_sha256, body, event_type, received_at, \
                run_id, webhook_id \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                     $7::timestamptz[], $8::text[], $9::text[]) \
              WITH ORDINALITY AS u(company_id, idempotency_key, event_id, body_sha256, body, \
                                   event_type, received_at, run_id, webhook_id, ord) \
         ORDER BY ord \
         ON CONFLICT DO NOTHING \
         RETURNING run_id",
    )
    .bind(&company)
    .bind(&key)
    .bind(&event_id)
    .bind(&sha)
    .bind(&body)
    .bind(&event_type)
    .bind(&received_at)
    .bind(&run_id)
    .bind(&webhook_id)
    .fetch_all(&mut *conn)
    .await?;

    // Which requests inserted: the first request carrying each returned
    // run id (a request sent twice inserts once, then replays).
    let mut inserted_runs: HashMap<String, usize> = HashMap::new();
    for run_id in inserted {
        *inserted_runs.entry(run_id).or_default() += 1;
    }
    let (mut new_run, mut new_company, mut new_event, mut new_type, mut new_version, mut new_at) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut seen = Vec::new();
    for &(i, e) in accepts {
        match inserted_runs.get_mut(&e.run_id) {
            Some(count) if *count > 0 => {
                *count -= 1;
                pending.push(run_events::queued(e));
                new_run.push(e.run_id.as_str());
                new_company.push(e.company_id.as_str());
                new_event.push(e.event_id.as_str());
                new_type.push(e.event_type.as_str());
                new_version.push(e.rule_version);
                new_at.push(truncate(e.received_at));
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

    if !new_run.is_empty() {
        sqlx::query(
            "INSERT INTO runs \
             (run_id, company_id, event_id, event_type, rule_version, status, nodes, created_at) \
             SELECT run_id, company_id, event_id, event_type, rule_version, 'queued', '{}', created_at \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::timestamptz[]) \
                  AS u(run_id, company_id, event_id, event_type, rule_version, created_at)",
        )
        .bind(&new_run)
        .bind(&new_company)
        .bind(&new_event)
        .bind(&new_type)
        .bind(&new_version)
        .bind(&new_at)
        .execute(&mut *conn)
        .await?;
        // In distributed mode (a database-wide setting) each new run also
        // gets its outbox row here, in the event's transaction, and is
        // marked dispatched (`outbox.rs`).
        sqlx::query(
            "INSERT INTO run_queue (run_id, available_at, company_id, dispatched_at) \
             SELECT u.run_id, u.at, u.company_id, CASE WHEN d.on THEN u.at END \
             FROM UNNEST($1::text[], $2::timestamptz[], $4::text[]) AS u(run_id, at, company_id), \
                  (SELECT EXISTS (SELECT 1 FROM settings WHERE key = $3) AS on) AS d",
        )
        .bind(&new_run)
        .bind(&new_at)
        .bind(super::outbox::DISTRIBUTED_SETTING)
        .bind(&new_company)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (run_id, company_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[]) \
             WHERE EXISTS (SELECT 1 FROM settings WHERE key = $3)",
        )
        .bind(&new_run)
        .bind(&new_company)
        .bind(super::outbox::DISTRIBUTED_SETTING)
        .execute(&mut *conn)
        .await?;
    }

    if !seen.is_empty() {
        let company: Vec<&str> = seen.iter().map(|(_, e)| e.company_id.as_str()).collect();
        let key: Vec<&str> = seen
            .iter()
            .map(|(_, e)| e.idempotency_key.as_str())
            .collect();
        let earlier: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT u.ord, e.event_id, e.run_id, e.body_sha256 \
             FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS u(company_id, idempotency_key, ord) \
             JOIN events AS e ON e.company_id = u.company_id AND e.idempotency_key = u.idempotency_key",
        )
        .bind(&company)
        .bind(&key)
        .fetch_all(&mut *conn)
        .await?;
        // Then by webhook-id, which names a signed message whatever its
        // key: where both match, the webhook-id's event is the answer.
        let webhook_id: Vec<Option<&str>> =
            seen.iter().map(|(_, e)| e.webhook_id.as_deref()).collect();
        let by_webhook_id: Vec<(i64, String, String, String)> = if webhook_id
            .iter()
            .any(Option::is_some)
        {
            sqlx::query_as(
                    "SELECT u.ord, e.event_id, e.run_id, e.body_sha256 \
                     FROM UNNEST($1::text[], $2::text[]) WITH ORDINALITY AS u(company_id, webhook_id, ord) \
                     JOIN events AS e ON e.company_id = u.company_id AND e.webhook_id = u.webhook_id",
                )
                .bind(&company)
                .bind(&webhook_id)
                .fetch_all(&mut *conn)
                .await?
        } else {
            Vec::new()
        };
        for (ord, event_id, run_id, body_sha256) in earlier.into_iter().chain(by_webhook_id) {
            // ORDINALITY counts from 1.
            let position = usize::try_from(ord - 1).ok();
            let Some(&(i, e)) = position.and_then(|p| seen.get(p)) else {
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

/// Commits a round of steps (each run once): fences on the leases, locking
/// the queue entries until the commit (in run id order, so two writers lock
/// alike), then writes the checkpoints, the documents and the queue moves of
/// the steps that hold theirs, one statement per table. A lost lease is that
/// step's answer, with nothing of it written.
async fn commit_steps<'a>(
    conn: &mut PgConnection,
    round: &[(usize, &'a StepCommit)],
    answers: &mut Answers,
    pending: &mut Vec<PendingEvent<'a>>,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = round.iter().map(|(_, s)| s.run_id.as_str()).collect();
    let holders: HashMap<String, Option<String>> = sqlx::query_as(
        "SELECT run_id, lease_owner FROM run_queue WHERE run_id = ANY($1) \
         ORDER BY run_id FOR UPDATE",
    )
    .bind(&ids)
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

    let n = steps.len();
    let (mut run_id, mut status, mut nodes, mut started_at, mut finished_at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut key, mut doc_run, mut company, mut node, mut kind, mut body, mut created_at) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut done, mut waiting, mut waiting_at) = (Vec::new(), Vec::new(), Vec::new());
    let mut quarantined = Vec::new();
    for step in &steps {
        run_id.push(step.run_id.as_str());
        status.push(step.status.as_str());
        nodes.push(json_text(&step.nodes)?);
        started_at.push(step.started_at.map(truncate));
        finished_at.push(step.finished_at.map(truncate));
        for d in &step.documents {
            key.push(d.key.as_str());
            doc_run.push(d.run_id.as_str());
            company.push(d.company_id.as_str());
            node.push(d.node_id.as_str());
            kind.push(d.kind.as_str());
            body.push(json_text(&d.body)?);
            created_at.push(truncate(d.created_at));
        }
        match step.next {
            QueueNext::Done => done.push(step.run_id.as_str()),
            QueueNext::Quarantine => {
                done.push(step.run_id.as_str());
                quarantined.push(step.run_id.as_str());
            }
            QueueNext::At(at) => {
                waiting.push(step.run_id.as_str());
                waiting_at.push(truncate(at));
            }
            QueueNext::Keep => {}
        }
    }

    // A run keeps its first start time.
    sqlx::query(
        "UPDATE runs AS r SET status = u.status, nodes = u.nodes, \
             started_at = COALESCE(r.started_at, u.started_at), finished_at = u.finished_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[]) \
              AS u(run_id, status, nodes, started_at, finished_at) \
         WHERE r.run_id = u.run_id",
    )
    .bind(&run_id)
    .bind(&status)
    .bind(&nodes)
    .bind(&started_at)
    .bind(&finished_at)
    .execute(&mut *conn)
    .await?;

    // Notifications hook (outbox): a delivery per matching endpoint for each
    // run this round finishes, in this same transaction
    // (`postgres/notifications.rs`).
    super::notifications::enqueue_deliveries(conn, &steps).await?;

    if !key.is_empty() {
        // A document is never stored twice: a re-run keeps the first.
        sqlx::query(
            "INSERT INTO documents (key, run_id, company_id, node_id, kind, body, created_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                  $6::text[], $7::timestamptz[]) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&key)
        .bind(&doc_run)
        .bind(&company)
        .bind(&node)
        .bind(&kind)
        .bind(&body)
        .bind(&created_at)
        .execute(&mut *conn)
        .await?;
    }
    if !done.is_empty() {
        sqlx::query("DELETE FROM run_queue WHERE run_id = ANY($1)")
            .bind(&done)
            .execute(&mut *conn)
            .await?;
    }
    if !quarantined.is_empty() {
        sqlx::query("UPDATE runs SET quarantined = true WHERE run_id = ANY($1)")
            .bind(&quarantined)
            .execute(&mut *conn)
            .await?;
    }
    if !waiting.is_empty() {
        sqlx::query(
            "UPDATE run_queue AS q SET available_at = u.at, lease_owner = NULL, lease_until = NULL, \
                 claims = 0 \
             FROM UNNEST($1::text[], $2::timestamptz[]) AS u(run_id, at) WHERE q.run_id = u.run_id",
        )
        .bind(&waiting)
        .bind(&waiting_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn renew(conn: &mut PgConnection, renewal: &Renewal) -> Result<(), sqlx::Error> {
    if renewal.run_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE run_queue SET lease_until = $1 WHERE lease_owner = $2 AND run_id = ANY($3)",
    )
    .bind(renewal.until)
    .bind(&renewal.owner)
    .bind(&renewal.run_ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn claim_runs(conn: &mut PgConnection, claim: &Claim) -> Result<Vec<String>, sqlx::Error> {
    if claim.limit == 0 {
        return Ok(Vec::new());
    }
    // The companies with queued runs, by skipping through the
    // (company_id, available_at) index one company at a time, each with its
    // runs in flight.
    let companies: Vec<(String, i64)> = sqlx::query_as(
        "WITH RECURSIVE queued(company_id) AS ( \
             SELECT MIN(company_id) FROM run_queue \
             UNION ALL \
             SELECT (SELECT MIN(company_id) FROM run_queue WHERE company_id > queued.company_id) \
             FROM queued WHERE queued.company_id IS NOT NULL) \
         SELECT company_id, \
                (SELECT COUNT(*) FROM run_queue AS q \
                 WHERE q.company_id = queued.company_id AND q.lease_owner IS NOT NULL) \
         FROM queued WHERE company_id IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?;
    let companies: Vec<QueuedCompany> = companies
        .into_iter()
        .map(|(company_id, in_flight)| QueuedCompany {
            company_id,
            in_flight: in_flight.try_into().unwrap_or(0),
        })
        .collect();
    let mut claimed = Vec::with_capacity(claim.limit);
    if companies.len() > 1 {
        for (company_id, slots) in fair_shares(&companies, claim.limit) {
            claimed.extend(claim_due(conn, claim, slots, Some(company_id)).await?);
        }
    }
    // What no company's share used goes by due time.
    let rest = claim.limit.saturating_sub(claimed.len());
    if rest > 0 {
        claimed.extend(claim_due(conn, claim, rest, None).await?);
    }
    Ok(claimed)
}

/// The claim of up to `limit` due runs, oldest first: `$5` the company
/// when the filter names it. A CTE so the locked subquery runs once. A lease
/// that ran out is claimable again (a visibility timeout): its worker died
/// or stalled.
macro_rules! claim_due_sql {
    ($filter:literal) => {
        concat!(
            "WITH due AS ( \
                 SELECT run_id FROM run_queue \
                 WHERE ",
            $filter,
            " available_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY available_at LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE run_queue AS q SET lease_owner = $1, lease_until = $2, claims = q.claims + 1 \
             FROM due WHERE q.run_id = due.run_id \
             RETURNING q.run_id"
        )
    };
}

/// Leases up to `limit` due runs (of `company_id` only, when given).
async fn claim_due(
    conn: &mut PgConnection,
    claim: &Claim,
    limit: usize,
    company_id: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = match company_id {
        Some(_) => claim_due_sql!("company_id = $5 AND"),
        None => claim_due_sql!(""),
    };
    let mut query = sqlx::query_scalar(sql)
        .bind(&claim.owner)
        .bind(claim.until)
        .bind(claim.now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX));
    if let Some(company_id) = company_id {
        query = query.bind(company_id);
    }
    query.fetch_all(&mut *conn).await
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
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
}

impl RunRow {
    fn into_record(self) -> StoreResult<RunRecord> {
        Ok(RunRecord {
            status: RunStatus::parse(&self.status).ok_or_else(|| corrupt_status(&self.status))?,
            nodes: nodes_from_text(&self.nodes)?,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
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
    /// Null once the run has left the queue.
    claims: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct DocumentRow {
    key: String,
    run_id: String,
    company_id: String,
    node_id: String,
    kind: String,
    body: String,
    created_at: OffsetDateTime,
}

impl DocumentRow {
    fn into_document(self) -> StoreResult<Document> {
        Ok(Document {
            body: json_from_text("document body", &self.body)?,
            created_at: self.created_at,
            key: self.key,
            run_id: self.run_id,
            company_id: self.company_id,
            node_id: self.node_id,
            kind: self.kind,
        })
    }
}

impl EventStore for PgStore {
    async fn accept_event(&self, event: NewEvent) -> StoreResult<AcceptOutcome> {
        self.writer
            .call(WriteOp::Accept(event))
            .await?
            .into_accept()
    }
}

impl RunStore for PgStore {
    async fn claim_runs(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
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
        until: OffsetDateTime,
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
    async fn next_due_at(&self) -> StoreResult<Option<OffsetDateTime>> {
        sqlx::query_scalar(
            "SELECT MIN(available_at) FROM run_queue WHERE lease_until IS NULL OR lease_until <= $1",
        )
        .bind(now())
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn load_runs(&self, run_ids: &[String]) -> StoreResult<Vec<RunWork>> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Joined on (company_id, event_id), the events index; run_id picks
        // the right one if an event id came with several keys.
        let rows = sqlx::query_as::<_, RunWorkRow>(&format!(
            "SELECT {RUN_COLUMNS}, e.body, q.claims FROM runs AS r \
             JOIN events AS e ON e.company_id = r.company_id AND e.event_id = r.event_id \
                             AND e.run_id = r.run_id \
             LEFT JOIN run_queue AS q ON q.run_id = r.run_id \
             WHERE r.run_id = ANY($1)"
        ))
        .bind(run_ids)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.into_iter()
            .map(|row| {
                Ok(RunWork {
                    event: json_from_text("event body", &row.body)?,
                    run: row.run.into_record()?,
                    claims: row.claims.map_or(0, |n| u32::try_from(n).unwrap_or(0)),
                })
            })
            .collect()
    }

    async fn commit_step(&self, step: StepCommit) -> StoreResult<()> {
        self.writer.call(WriteOp::Commit(step)).await?.into_done()
    }

    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        sqlx::query_as::<_, RunRow>(&format!(
            "SELECT {RUN_COLUMNS} FROM runs AS r WHERE r.run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(RunRow::into_record)
        .transpose()
    }

    async fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<moneyflow_core::ports::RunClaim> {
        self.claim_one(run_id, owner, lease, now).await
    }

    async fn release_lease(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        self.release_one(run_id, owner).await
    }

    async fn reset_claims(&self, run_ids: &[String]) -> StoreResult<()> {
        sqlx::query("UPDATE run_queue SET claims = 0 WHERE run_id = ANY($1)")
            .bind(run_ids)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    async fn list_documents(&self, run_id: &str) -> StoreResult<Vec<Document>> {
        sqlx::query_as::<_, DocumentRow>(
            "SELECT key, run_id, company_id, node_id, kind, body, created_at FROM documents \
             WHERE run_id = $1 ORDER BY created_at, key",
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
