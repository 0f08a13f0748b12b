//! Run events, run listings, the queue's gauges and redrive on SQLite.
//!
//! Events are appended by the group-commit writer at the end of each batch
//! ([`append_events`]); SQLite has one writer at a time, so ids become
//! visible in increasing order. A redrive is a transaction of its own on the
//! pool (`BEGIN IMMEDIATE`, the write lock from its first read), which
//! publishes its `run.redriven` on the feed once committed.

use std::borrow::Cow;
use std::collections::HashMap;

use moneyflow_core::ports::{
    QueueStats, Redrive, RunEvent, RunEventKind, RunEventStore, RunQuery, RunSummary, StoreError,
    StoreResult,
};
use moneyflow_core::run::RunStatus;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use time::OffsetDateTime;

use super::SqliteStore;
use crate::codec::{corrupt_status, from_micros, json_from_text, now, to_micros, truncate};
use crate::error::from_sqlx;
use crate::run_events::{EventSink, PendingEvent, clamp_limit, kind_from_text, number, run_ids};

fn json_param(rows: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(rows).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Appends `pending` (numbered after each run's last event) in one
/// statement, and collects them into `sink` when it collects.
pub(crate) async fn append_events(
    conn: &mut SqliteConnection,
    pending: &[PendingEvent<'_>],
    sink: &mut EventSink,
) -> Result<(), sqlx::Error> {
    if pending.is_empty() {
        return Ok(());
    }
    let runs: HashMap<String, (String, i64)> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT r.run_id, r.company_id, \
                COALESCE((SELECT MAX(e.seq) FROM run_events AS e WHERE e.run_id = r.run_id), 0) \
         FROM runs AS r WHERE r.run_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(json_param(&run_ids(pending))?)
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
    let rows: Vec<_> = numbered
        .iter()
        .map(|e| {
            (
                e.run_id,
                &e.company_id,
                e.seq,
                e.kind.as_str(),
                &e.data_text,
            )
        })
        .collect();
    let inserted: Vec<(i64, String, i64)> = sqlx::query_as(
        "INSERT INTO run_events (run_id, company_id, seq, kind, data, created_at) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, ?2 \
         FROM json_each(?1) ORDER BY key \
         RETURNING id, run_id, seq",
    )
    .bind(json_param(&rows)?)
    .bind(to_micros(created_at))
    .fetch_all(&mut *conn)
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
    created_at: i64,
}

impl EventRow {
    fn into_event(self) -> StoreResult<RunEvent> {
        Ok(RunEvent {
            kind: kind_from_text(&self.kind)?,
            data: json_from_text("run event data", &self.data)?,
            created_at: from_micros(self.created_at)?,
            id: self.id,
            run_id: self.run_id,
            company_id: self.company_id,
            seq: self.seq,
        })
    }
}

const SUMMARY_COLUMNS: &str = "run_id, company_id, event_id, event_type, rule_version, status, \
                               redrive_count, created_at, started_at, finished_at";

#[derive(sqlx::FromRow)]
struct SummaryRow {
    run_id: String,
    company_id: String,
    event_id: String,
    event_type: String,
    rule_version: i64,
    status: String,
    redrive_count: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl SummaryRow {
    fn into_summary(self) -> StoreResult<RunSummary> {
        Ok(RunSummary {
            status: RunStatus::parse(&self.status).ok_or_else(|| corrupt_status(&self.status))?,
            created_at: from_micros(self.created_at)?,
            started_at: self.started_at.map(from_micros).transpose()?,
            finished_at: self.finished_at.map(from_micros).transpose()?,
            run_id: self.run_id,
            company_id: self.company_id,
            event_id: self.event_id,
            event_type: self.event_type,
            rule_version: self.rule_version,
            redrive_count: self.redrive_count,
        })
    }
}

async fn summary(
    conn: &mut SqliteConnection,
    run_id: &str,
) -> Result<Option<SummaryRow>, sqlx::Error> {
    sqlx::query_as::<_, SummaryRow>(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = ?1"
    ))
    .bind(run_id)
    .fetch_optional(conn)
    .await
}

impl RunEventStore for SqliteStore {
    async fn list_run_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM run_events WHERE run_id = ?1 AND seq > ?2 \
             ORDER BY seq LIMIT ?3"
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
            "SELECT {EVENT_COLUMNS} FROM run_events WHERE company_id = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3"
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
        let mut sql: QueryBuilder<Sqlite> =
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
            sql.push(" AND created_at >= ")
                .push_bind(to_micros(truncate(after)));
        }
        if let Some(before) = query.created_before {
            sql.push(" AND created_at < ")
                .push_bind(to_micros(truncate(before)));
        }
        if let Some((created_at, run_id)) = &query.before {
            sql.push(" AND (created_at, run_id) < (")
                .push_bind(to_micros(truncate(*created_at)))
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
        let (depth, due, oldest): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), \
                    COALESCE(SUM(available_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)), 0), \
                    MIN(CASE WHEN available_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1) \
                             THEN available_at END) \
             FROM run_queue",
        )
        .bind(to_micros(truncate(now)))
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(QueueStats {
            depth,
            due,
            oldest_due_at: oldest.map(from_micros).transpose()?,
        })
    }

    async fn redrive_run(&self, redrive: Redrive) -> StoreResult<RunSummary> {
        let nodes = json_param(&redrive.nodes).map_err(from_sqlx)?;
        let at = to_micros(truncate(redrive.now));
        // IMMEDIATE: the write lock before the status is read, so two
        // redrives cannot both see `failed`.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlx)?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM runs WHERE run_id = ?1")
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
            "UPDATE runs SET status = 'queued', nodes = ?2, finished_at = NULL, \
                 redrive_count = redrive_count + 1 \
             WHERE run_id = ?1",
        )
        .bind(&redrive.run_id)
        .bind(&nodes)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        // A failed run has left the queue; a stray entry is reset rather
        // than refused.
        sqlx::query(
            "INSERT INTO run_queue (run_id, available_at) VALUES (?1, ?2) \
             ON CONFLICT (run_id) DO UPDATE SET available_at = excluded.available_at, \
                 lease_owner = NULL, lease_until = NULL",
        )
        .bind(&redrive.run_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let pending = [PendingEvent {
            run_id: &redrive.run_id,
            kind: RunEventKind::Redriven,
            data: Cow::Borrowed(&redrive.data),
        }];
        let mut sink = EventSink::new(self.writer.feed().wanted());
        append_events(&mut tx, &pending, &mut sink)
            .await
            .map_err(from_sqlx)?;
        let row = summary(&mut tx, &redrive.run_id)
            .await
            .map_err(from_sqlx)?
            .ok_or_else(|| StoreError::NotFound(format!("run {}", redrive.run_id)))?;
        tx.commit().await.map_err(from_sqlx)?;
        self.writer.feed().publish(sink.events);
        row.into_summary()
    }
}
