//! Run events, run listings, the queue's gauges and redrive on SQLite.
//!
//! Events are appended by the writer thread inside the request that makes
//! them ([`append_events`]); SQLite has one writer, so ids become visible
//! in increasing order and `max(seq) + 1` is gap-free. A redrive is a
//! request to the writer too ([`redrive`]). Reads use the read connections.

use moneyflow_core::ports::{
    QueueStats, Redrive, RunEvent, RunEventKind, RunEventStore, RunQuery, RunSummary, StoreError,
    StoreResult,
};
use moneyflow_core::run::RunStatus;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::Value;
use time::OffsetDateTime;

use super::SqliteStore;
use super::connection::{select, select_one};
use super::writer::{OpEvents, OpFailure};
use crate::codec::{corrupt_status, from_micros, json_from_text, to_micros, truncate};
use crate::error::from_rusqlite;
use crate::run_events::{clamp_limit, kind_from_text};
use crate::writer::WriteOp;

/// A run's identity and its last event's seq (0 when it has none): what
/// numbering its next events needs.
pub(super) struct RunTail<'a> {
    pub run_id: &'a str,
    pub company_id: &'a str,
    pub last_seq: i64,
}

/// Appends `new` to the run, numbered after `tail.last_seq`, and keeps them
/// in `out` for the feed when it collects.
pub(super) fn append_events<'v>(
    conn: &Connection,
    tail: &RunTail<'_>,
    new: impl IntoIterator<Item = (RunEventKind, &'v Value)>,
    out: &mut OpEvents,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO run_events (run_id, company_id, seq, kind, data, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    )?;
    let created_at = to_micros(out.at);
    let mut seq = tail.last_seq;
    for (kind, data) in new {
        seq += 1;
        let text = serde_json::to_string(data)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let id: i64 = stmt.query_row(
            params![
                tail.run_id,
                tail.company_id,
                seq,
                kind.as_str(),
                text,
                created_at
            ],
            |row| row.get(0),
        )?;
        if out.collect {
            out.events.push(RunEvent {
                id,
                run_id: tail.run_id.to_owned(),
                company_id: tail.company_id.to_owned(),
                seq,
                kind,
                data: data.clone(),
                created_at: out.at,
            });
        }
    }
    Ok(())
}

/// Checks the run is still failed, stores its new checkpoints, queues it
/// and appends `run.redriven` (the writer's request for
/// [`RunEventStore::redrive_run`]).
pub(super) fn redrive(
    conn: &Connection,
    redrive: &Redrive,
    events: &mut OpEvents,
) -> Result<RunSummary, OpFailure> {
    let found: Option<(String, String, i64)> = conn
        .prepare_cached(
            "SELECT status, company_id, \
                    COALESCE((SELECT MAX(e.seq) FROM run_events AS e WHERE e.run_id = ?1), 0) \
             FROM runs WHERE run_id = ?1",
        )?
        .query_row([&redrive.run_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let (company_id, last_seq) = match found {
        None => {
            return Err(OpFailure::Refused(StoreError::NotFound(format!(
                "run {}",
                redrive.run_id
            ))));
        }
        Some((status, company_id, last_seq)) if status == "failed" => (company_id, last_seq),
        Some((other, ..)) => {
            return Err(OpFailure::Refused(StoreError::Conflict(format!(
                "run {} is {other}, not failed",
                redrive.run_id
            ))));
        }
    };
    let nodes = serde_json::to_string(&redrive.nodes)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    conn.prepare_cached(
        "UPDATE runs SET status = 'queued', nodes = ?2, finished_at = NULL, \
             redrive_count = redrive_count + 1, quarantined = 0 \
         WHERE run_id = ?1",
    )?
    .execute(params![redrive.run_id, nodes])?;
    // A failed run has left the queue; a stray entry is reset rather than
    // refused.
    conn.prepare_cached(
        "INSERT INTO run_queue (run_id, available_at, company_id) VALUES (?1, ?2, ?3) \
         ON CONFLICT (run_id) DO UPDATE SET available_at = excluded.available_at, \
             lease_owner = NULL, lease_until = NULL, claims = 0",
    )?
    .execute(params![
        redrive.run_id,
        to_micros(truncate(redrive.now)),
        company_id
    ])?;
    let tail = RunTail {
        run_id: &redrive.run_id,
        company_id: &company_id,
        last_seq,
    };
    append_events(
        conn,
        &tail,
        [(RunEventKind::Redriven, &redrive.data)],
        events,
    )?;
    let row = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = ?1"
        ))?
        .query_row([&redrive.run_id], SummaryRow::read)?;
    row.into_summary().map_err(OpFailure::Refused)
}

const EVENT_COLUMNS: &str = "id, run_id, company_id, seq, kind, data, created_at";

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
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            run_id: row.get(1)?,
            company_id: row.get(2)?,
            seq: row.get(3)?,
            kind: row.get(4)?,
            data: row.get(5)?,
            created_at: row.get(6)?,
        })
    }

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
                               redrive_count, quarantined, created_at, started_at, \
                               finished_at";

struct SummaryRow {
    run_id: String,
    company_id: String,
    event_id: String,
    event_type: String,
    rule_version: i64,
    status: String,
    redrive_count: i64,
    quarantined: bool,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl SummaryRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            run_id: row.get(0)?,
            company_id: row.get(1)?,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
            rule_version: row.get(4)?,
            status: row.get(5)?,
            redrive_count: row.get(6)?,
            quarantined: row.get::<_, i64>(7)? != 0,
            created_at: row.get(8)?,
            started_at: row.get(9)?,
            finished_at: row.get(10)?,
        })
    }

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
            quarantined: self.quarantined,
        })
    }
}

impl RunEventStore for SqliteStore {
    async fn list_run_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        let run_id = run_id.to_owned();
        self.readers
            .read(move |conn| {
                select(
                    conn,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM run_events WHERE run_id = ?1 AND seq > ?2 \
                         ORDER BY seq LIMIT ?3"
                    ),
                    params![run_id, after_seq, clamp_limit(limit)],
                    EventRow::read,
                    EventRow::into_event,
                )
            })
            .await
    }

    async fn list_company_events(
        &self,
        company_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        let company_id = company_id.to_owned();
        self.readers
            .read(move |conn| {
                select(
                    conn,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM run_events WHERE company_id = ?1 AND id > ?2 \
                         ORDER BY id LIMIT ?3"
                    ),
                    params![company_id, after_id, clamp_limit(limit)],
                    EventRow::read,
                    EventRow::into_event,
                )
            })
            .await
    }

    async fn list_runs(&self, query: &RunQuery) -> StoreResult<Vec<RunSummary>> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM runs WHERE true");
        let mut values: Vec<SqlValue> = Vec::new();
        let mut filter = |sql: &mut String, clause: &str, value: SqlValue| {
            values.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", values.len())));
        };
        if let Some(company_id) = &query.company_id {
            filter(&mut sql, " AND company_id = ?", company_id.clone().into());
        }
        if let Some(status) = query.status {
            filter(
                &mut sql,
                " AND status = ?",
                status.as_str().to_owned().into(),
            );
        }
        if let Some(event_type) = &query.event_type {
            filter(&mut sql, " AND event_type = ?", event_type.clone().into());
        }
        if let Some(version) = query.rule_version {
            filter(&mut sql, " AND rule_version = ?", version.into());
        }
        if let Some(after) = query.created_after {
            filter(
                &mut sql,
                " AND created_at >= ?",
                to_micros(truncate(after)).into(),
            );
        }
        if let Some(before) = query.created_before {
            filter(
                &mut sql,
                " AND created_at < ?",
                to_micros(truncate(before)).into(),
            );
        }
        if let Some((created_at, run_id)) = &query.before {
            filter(
                &mut sql,
                " AND (created_at, run_id) < (?",
                to_micros(truncate(*created_at)).into(),
            );
            filter(&mut sql, ", ?)", run_id.clone().into());
        }
        filter(
            &mut sql,
            " ORDER BY created_at DESC, run_id DESC LIMIT ?",
            clamp_limit(query.limit).into(),
        );
        self.readers
            .read(move |conn| {
                select(
                    conn,
                    &sql,
                    params_from_iter(values),
                    SummaryRow::read,
                    SummaryRow::into_summary,
                )
            })
            .await
    }

    async fn get_run_summary(&self, run_id: &str) -> StoreResult<Option<RunSummary>> {
        let run_id = run_id.to_owned();
        self.readers
            .read(move |conn| {
                select_one(
                    conn,
                    &format!("SELECT {SUMMARY_COLUMNS} FROM runs WHERE run_id = ?1"),
                    [&run_id],
                    SummaryRow::read,
                    SummaryRow::into_summary,
                )
            })
            .await
    }

    async fn queue_stats(&self, now: OffsetDateTime) -> StoreResult<QueueStats> {
        let now = to_micros(truncate(now));
        let (depth, due, oldest): (i64, i64, Option<i64>) = self
            .readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT COUNT(*), \
                            COALESCE(SUM(available_at <= ?1 \
                                         AND (lease_until IS NULL OR lease_until <= ?1)), 0), \
                            MIN(CASE WHEN available_at <= ?1 \
                                          AND (lease_until IS NULL OR lease_until <= ?1) \
                                     THEN available_at END) \
                     FROM run_queue",
                )
                .and_then(|mut stmt| {
                    stmt.query_row([now], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                })
                .map_err(from_rusqlite)
            })
            .await?;
        Ok(QueueStats {
            depth,
            due,
            oldest_due_at: oldest.map(from_micros).transpose()?,
        })
    }

    async fn redrive_run(&self, redrive: Redrive) -> StoreResult<RunSummary> {
        self.writer
            .call(WriteOp::Redrive(redrive))
            .await?
            .into_redriven()
    }
}
