//! Run events, run listings, the queue's gauges and redrive on PostgreSQL.
//!
//! Several writers (and processes) append events at once, and an identity
//! value is taken when a row is inserted, not when it commits: left alone,
//! id 10 could become visible after id 11, and a stream resuming "after 11"
//! would miss it. So every transaction that appends events first takes one
//! transaction-scoped advisory lock ([`EVENT_ORDER_LOCK`]) and holds it to
//! its commit: ids become visible in increasing order. The writer appends
//! events as a batch's last statements, so the lock covers little more than
//! the commit itself.

use std::borrow::Cow;
use std::collections::HashMap;

use moneyflow_core::ports::{
    QueueStats, Redrive, RunEvent, RunEventKind, RunEventStore, RunQuery, RunSummary, StoreError,
    StoreResult,
};
use moneyflow_core::run::RunStatus;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

use super::PgStore;
use crate::codec::{corrupt_status, json_from_text, now, truncate};
use crate::error::from_sqlx;
use crate::run_events::{EventSink, PendingEvent, clamp_limit, kind_from_text, number, run_ids};

/// The advisory lock that orders run event ids (an arbitrary constant:
/// "mf run events" in ASCII).
const EVENT_ORDER_LOCK: i64 = 0x6d66_7275_6e65_7673;

/// Appends `pending` (numbered after each run's last event) in one
/// statement under [`EVENT_ORDER_LOCK`], and collects them into `sink`
/// when it collects.
pub(crate) async fn append_events(
    conn: &mut PgConnection,
    pending: &[PendingEvent<'_>],
    sink: &mut EventSink,
) -> Result<(), sqlx::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENT_ORDER_LOCK)
        .execute(&mut *conn)
        .await?;
    let runs: HashMap<String, (String, i64)> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT r.run_id, r.company_id, \
                COALESCE((SELECT MAX(e.seq) FROM run_events AS e WHERE e.run_id = r.run_id), 0) \
         FROM runs AS r WHERE r.run_id = ANY($1)",
    )
    .bind(run_ids(pending))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(run_id, company_id, last)| (run_id, (company_id, last)))
    .collect();
    let numbered = number(pending, &runs);
    if numbered.is_empty() {
        return Ok(());
    }
    let created_at = now();
    let n = numbered.len();
    let (mut run_id, mut company, mut seq, mut kind, mut data) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in &numbered {
        run_id.push(e.run_id);
        company.push(e.company_id.as_str());
        seq.push(e.seq);
        kind.push(e.kind.as_str());
        data.push(e.data_text.as_str());
    }
    let inserted: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO run_events (run_id, company_id, seq, kind, data, created_at) \
         SELECT run_id, company_id, seq, kind, data, $6 \
         FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[]) \
              WITH ORDINALITY AS u(run_id, company_id, seq, kind, data, ord) \
         ORDER BY ord \
         RETURNING id, run_id, seq",
    )
    .bind(&run_id)
    .bind(&company)
    .bind(&seq)
    .bind(&kind)
    .bind(&data)
    .bind(created_at)
    .fetch_all(&mut *conn)
    .await?;
    // Other processes' event streams hear of these on commit (NOTIFY is
    // delivered then, and not at all on a rollback): one notification per
    // run, `<run_id> <company_id>`.
    let mut news: Vec<String> = numbered
        .iter()
        .map(|e| format!("{} {}", e.run_id, e.company_id))
        .collect();
    news.sort_unstable();
    news.dedup();
    sqlx::query("SELECT pg_notify($1, n) FROM UNNEST($2::text[]) AS n")
        .bind(crate::RUN_EVENTS_CHANNEL)
        .bind(&news)
        .execute(&mut *conn)
        .await?;
    if sink.collect {
        let ids: HashMap<(String, i64), i64> = inserted
            .into_iter()
            .map(|(id, run_id, seq)| ((run_id, seq), id))
            .collect();
        for event in numbered {
            if let Some(&id) = ids.get(&(event.run_id.to_owned(), event.seq)) {
                sink.events.push(event.into_event(id, created_at));
            }
        }
    }
    Ok(())
}

const EVENT_COLUMNS: &str = "id, run_id, company_id, seq, kind, data, created_at";

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    run_id: String,
    company_id: String,
    seq: i64,
    kind: String,
    data: String,
    created_at: OffsetDateTime,
}

impl EventRow {
    fn into_event(self) -> StoreResult<RunEvent> {
        Ok(RunEvent {
            kind: kind_from_text(&self.kind)?,
            data: json_from_text("run event data", &self.data)?,
            created_at: self.created_at,
            id: self.id,
            run_id: self.run_id,
            company_id: self.company_id,
            seq: self.seq,
        })
    }
}

const SUMMARY_COLUMNS: &str = "run_id, company_id, event_id, event_type, rule_version, status, \
                               redrive_count, quarantined, created_at, started_at, \
                               finished_at";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    run_id: String,
    company_id: String,
    event_id: String,
    event_type: String,
    rule_version: i64,
    status: String,
    redrive_count: i64,
    quarantined: bool,
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
}

impl SummaryRow {
    fn into_summary(self) -> StoreResult<RunSummary> {
        Ok(RunSummary {
            status: RunStatus::parse(&self.status).ok_or_else(|| corrupt_status(&self.status))?,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            run_id: self.run_id,
            company_id: self.company_id,
            event_id: self.event_id,
            event_type: self.event_type,
            rule_version: self.rule_version,
            redrive_count: self.redrive_count,
            quarantined: self.quarantined,
        })
    }
}

async fn summary(conn: &mut PgConnection, run_id: &str) -> Result<Option<SummaryRow>, sqlx::Error> {
    sqlx::query_as::<_, SummaryRow>(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = $1"
    ))
    .bind(run_id)
    .fetch_optional(conn)
    .await
}

impl RunEventStore for PgStore {
    async fn list_run_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM run_events WHERE run_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3"
        ))
        .bind(run_id)
        .bind(after_seq)
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(EventRow::into_event)
        .collect()
    }

    async fn list_company_events(
        &self,
        company_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM run_events WHERE company_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        ))
        .bind(company_id)
        .bind(after_id)
        .bind(clamp_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(EventRow::into_event)
        .collect()
    }

    async fn list_runs(&self, query: &RunQuery) -> StoreResult<Vec<RunSummary>> {
        let mut sql: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {SUMMARY_COLUMNS} FROM runs WHERE true"));
        if let Some(company_id) = &query.company_id {
            sql.push(" AND company_id = ").push_bind(company_id.clone());
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(event_type) = &query.event_type {
            sql.push(" AND event_type = ").push_bind(event_type.clone());
        }
        if let Some(version) = query.rule_version {
            sql.push(" AND rule_version = ").push_bind(version);
        }
        if let Some(after) = query.created_after {
            sql.push(" AND created_at >= ").push_bind(truncate(after));
        }
        if let Some(before) = query.created_before {
            sql.push(" AND created_at < ").push_bind(truncate(before));
        }
        if let Some((created_at, run_id)) = &query.before {
            sql.push(" AND (created_at, run_id) < (")
                .push_bind(truncate(*created_at))
                .push(", ")
                .push_bind(run_id.clone())
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, run_id DESC LIMIT ")
            .push_bind(clamp_limit(query.limit));
        sql.build_query_as::<SummaryRow>()
            .fetch_all(&self.pool)
            .await
            .map_err(from_sqlx)?
            .into_iter()
            .map(SummaryRow::into_summary)
            .collect()
    }

    async fn get_run_summary(&self, run_id: &str) -> StoreResult<Option<RunSummary>> {
        let mut conn = self.pool.acquire().await.map_err(from_sqlx)?;
        summary(&mut conn, run_id)
            .await
            .map_err(from_sqlx)?
            .map(SummaryRow::into_summary)
            .transpose()
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> StoreResult<QueueStats> {
        let (depth, due, oldest_due_at): (i64, i64, Option<OffsetDateTime>) = sqlx::query_as(
            "SELECT COUNT(*), \
                    COUNT(*) FILTER (WHERE available_at <= $1 \
                                     AND (lease_until IS NULL OR lease_until <= $1)), \
                    MIN(available_at) FILTER (WHERE available_at <= $1 \
                                              AND (lease_until IS NULL OR lease_until <= $1)) \
             FROM run_queue",
        )
        .bind(truncate(now))
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(QueueStats {
            depth,
            due,
            oldest_due_at,
        })
    }

    async fn redrive_run(&self, redrive: Redrive) -> StoreResult<RunSummary> {
        let nodes = serde_json::to_string(&redrive.nodes)
            .map_err(|e| crate::error::corrupt(format!("run nodes do not serialise: {e}")))?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The row lock makes two redrives (or a redrive and anything else
        // changing the run) take turns: the second sees `queued`.
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE run_id = $1 FOR UPDATE")
                .bind(&redrive.run_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        match status.as_deref() {
            None => return Err(StoreError::NotFound(format!("run {}", redrive.run_id))),
            Some("failed") => {}
            Some(other) => {
                return Err(StoreError::Conflict(format!(
                    "run {} is {other}, not failed",
                    redrive.run_id
                )));
            }
        }
        sqlx::query(
            "UPDATE runs SET status = 'queued', nodes = $2, finished_at = NULL, \
                 redrive_count = redrive_count + 1, quarantined = false \
             WHERE run_id = $1",
        )
        .bind(&redrive.run_id)
        .bind(&nodes)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        // A failed run has left the queue; a stray entry is reset rather
        // than refused.
        sqlx::query(
            "INSERT INTO run_queue (run_id, available_at, company_id) \
             SELECT $1, $2, company_id FROM runs WHERE run_id = $1 \
             ON CONFLICT (run_id) DO UPDATE SET available_at = EXCLUDED.available_at, \
                 lease_owner = NULL, lease_until = NULL, claims = 0",
        )
        .bind(&redrive.run_id)
        .bind(truncate(redrive.now))
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let row = summary(&mut tx, &redrive.run_id)
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::NotFound(format!("run {}", redrive.run_id)))?;
        // Last: the event-order lock is held from here to the commit.
        let pending = [PendingEvent {
            run_id: &redrive.run_id,
            kind: RunEventKind::Redriven,
            data: Cow::Borrowed(&redrive.data),
        }];
        let mut sink = EventSink::new(self.writer.feed().wanted());
        append_events(&mut tx, &pending, &mut sink)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        self.writer.feed().publish(sink.events);
        row.into_summary()
    }
}
