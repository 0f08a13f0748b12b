//! Notification endpoints, deliveries and attempts on SQLite, and the
//! bounded read of a company's recent runs that backtests replay.
//!
//! Deliveries are an outbox: [`enqueue_deliveries`] runs inside the writer's
//! step-commit transaction, so a run is finished if and only if its
//! deliveries exist. The rest goes through the sqlx pool: endpoints change
//! rarely, and the delivery worker's claims and attempts are few next to the
//! hot path (one claim per batch, one small transaction per attempt). The
//! backtests' read of recent runs uses the read connections.

use moneyflow_core::ports::{
    AttemptRecord, Delivery, DeliveryAttempt, DeliveryNext, DeliveryStatus, DueDelivery,
    HistoryCursor, NewNotificationEndpoint, NotificationEndpoint, NotificationStore,
    RunHistoryStore, RunWork, StepCommit, StoreResult,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::SqliteStore;
use super::runs::{RUN_COLUMNS, RunRow};
use crate::codec::{add_duration, corrupt_status, from_micros, to_micros, truncate};
use crate::error::{corrupt, from_rusqlite, from_sqlx, from_sqlx_as};
use crate::notifications::endpoint_inserted;

/// The outbox hook of a step commit that finishes its run: one pending
/// delivery per enabled endpoint of the run's company that takes the event
/// type. Runs in the writer's transaction (inside the step's savepoint);
/// a company without endpoints costs one indexed read.
pub(super) fn enqueue_deliveries(
    conn: &rusqlite::Connection,
    step: &StepCommit,
    company_id: &str,
    event_id: &str,
    rule_version: i64,
) -> rusqlite::Result<()> {
    let event_type = format!("run.{}", step.status.as_str());
    let mut endpoints = conn.prepare_cached(
        "SELECT endpoint_id, event_types FROM notification_endpoints \
         WHERE company_id = ?1 AND enabled = 1",
    )?;
    let takers: Vec<String> = endpoints
        .query_map([company_id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?
        .filter_map(|row| match row {
            Ok((id, types)) => serde_json::from_str::<Vec<String>>(&types)
                .ok()
                .filter(|types| types.contains(&event_type))
                .map(|_| Ok(id)),
            Err(err) => Some(Err(err)),
        })
        .collect::<rusqlite::Result<_>>()?;
    if takers.is_empty() {
        return Ok(());
    }
    let at = truncate(step.finished_at.unwrap_or_else(crate::codec::now));
    let at_text = at.format(&Rfc3339).unwrap_or_default();
    // Built here, once: every attempt sends the same bytes.
    let payload = serde_json::json!({
        "type": event_type,
        "timestamp": at_text,
        "data": {
            "run_id": step.run_id,
            "company_id": company_id,
            "event_id": event_id,
            "status": step.status.as_str(),
            "rule_version": rule_version,
            "finished_at": at_text,
        },
    })
    .to_string();
    let mut insert = conn.prepare_cached(
        "INSERT INTO notification_deliveries \
         (delivery_id, endpoint_id, company_id, run_id, event_type, payload, status, attempts, \
          next_attempt_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7, ?7)",
    )?;
    for endpoint_id in takers {
        let delivery_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        insert.execute(rusqlite::params![
            delivery_id,
            endpoint_id,
            company_id,
            step.run_id,
            event_type,
            payload,
            to_micros(at)
        ])?;
    }
    Ok(())
}

const ENDPOINT_COLUMNS: &str = "endpoint_id, company_id, url, description, event_types, secret, \
                                enabled, disabled_reason, disabled_at, created_at";

#[derive(sqlx::FromRow)]
struct EndpointRow {
    endpoint_id: String,
    company_id: String,
    url: String,
    description: Option<String>,
    event_types: String,
    secret: String,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<i64>,
    created_at: i64,
}

impl EndpointRow {
    fn into_endpoint(self) -> StoreResult<NotificationEndpoint> {
        let event_types: Vec<String> = serde_json::from_str(&self.event_types)
            .map_err(|e| corrupt(format!("stored event types do not parse: {e}")))?;
        Ok(NotificationEndpoint {
            id: self.endpoint_id,
            company_id: self.company_id,
            url: self.url,
            description: self.description,
            event_types,
            secret: self.secret,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            disabled_at: self.disabled_at.map(from_micros).transpose()?,
            created_at: from_micros(self.created_at)?,
        })
    }
}

const DELIVERY_COLUMNS: &str = "d.delivery_id, d.endpoint_id, d.company_id, d.run_id, \
                                d.event_type, d.payload, d.status, d.attempts, \
                                d.next_attempt_at, d.last_error, d.created_at, d.finished_at";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: String,
    endpoint_id: String,
    company_id: String,
    run_id: String,
    event_type: String,
    payload: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
}

impl DeliveryRow {
    fn into_delivery(self) -> StoreResult<Delivery> {
        Ok(Delivery {
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt_status(&self.status))?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: self.next_attempt_at.map(from_micros).transpose()?,
            created_at: from_micros(self.created_at)?,
            finished_at: self.finished_at.map(from_micros).transpose()?,
            id: self.delivery_id,
            endpoint_id: self.endpoint_id,
            company_id: self.company_id,
            run_id: self.run_id,
            event_type: self.event_type,
            payload: self.payload,
            last_error: self.last_error,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DueRow {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    url: String,
    secret: String,
    enabled: bool,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i64,
    at: i64,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl AttemptRow {
    fn into_attempt(self) -> StoreResult<DeliveryAttempt> {
        Ok(DeliveryAttempt {
            attempt: u32::try_from(self.attempt).unwrap_or(u32::MAX),
            at: from_micros(self.at)?,
            status_code: self.status_code.and_then(|c| u16::try_from(c).ok()),
            error: self.error,
            duration_ms: u64::try_from(self.duration_ms).unwrap_or(0),
        })
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl NotificationStore for SqliteStore {
    async fn create_notification_endpoint(
        &self,
        endpoint: NewNotificationEndpoint<'_>,
    ) -> StoreResult<NotificationEndpoint> {
        let created_at = truncate(endpoint.now);
        let event_types = serde_json::to_string(endpoint.event_types)
            .map_err(|e| corrupt(format!("event types do not serialise: {e}")))?;
        // One statement: SQLite's single writer makes count and insert atomic.
        let inserted = sqlx::query(
            "INSERT INTO notification_endpoints \
             (endpoint_id, company_id, url, description, event_types, secret, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
             WHERE (SELECT count(*) FROM notification_endpoints WHERE company_id = ?2) < ?8",
        )
        .bind(endpoint.id)
        .bind(endpoint.company_id)
        .bind(endpoint.url)
        .bind(endpoint.description)
        .bind(&event_types)
        .bind(endpoint.secret)
        .bind(to_micros(created_at))
        .bind(i64::try_from(endpoint.max_per_company).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("notification endpoint {}", endpoint.id),
                || format!("company {}", endpoint.company_id),
            )
        })?;
        endpoint_inserted(inserted.rows_affected(), &endpoint)?;
        Ok(NotificationEndpoint {
            id: endpoint.id.to_owned(),
            company_id: endpoint.company_id.to_owned(),
            url: endpoint.url.to_owned(),
            description: endpoint.description.map(str::to_owned),
            event_types: endpoint.event_types.to_vec(),
            secret: endpoint.secret.to_owned(),
            enabled: true,
            disabled_reason: None,
            disabled_at: None,
            created_at,
        })
    }

    async fn list_notification_endpoints(
        &self,
        company_id: &str,
    ) -> StoreResult<Vec<NotificationEndpoint>> {
        sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE company_id = ?1 \
             ORDER BY created_at, endpoint_id"
        ))
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(EndpointRow::into_endpoint)
        .collect()
    }

    async fn get_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<Option<NotificationEndpoint>> {
        sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints \
             WHERE company_id = ?1 AND endpoint_id = ?2"
        ))
        .bind(company_id)
        .bind(endpoint_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(EndpointRow::into_endpoint)
        .transpose()
    }

    async fn delete_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<bool> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlx)?;
        let deleted = sqlx::query(
            "DELETE FROM notification_attempts WHERE delivery_id IN \
             (SELECT d.delivery_id FROM notification_deliveries AS d \
              JOIN notification_endpoints AS e ON e.endpoint_id = d.endpoint_id \
              WHERE e.company_id = ?1 AND e.endpoint_id = ?2)",
        )
        .bind(company_id)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await;
        deleted.map_err(from_sqlx)?;
        sqlx::query(
            "DELETE FROM notification_deliveries WHERE endpoint_id = ?2 AND endpoint_id IN \
             (SELECT endpoint_id FROM notification_endpoints WHERE company_id = ?1)",
        )
        .bind(company_id)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let done = sqlx::query(
            "DELETE FROM notification_endpoints WHERE company_id = ?1 AND endpoint_id = ?2",
        )
        .bind(company_id)
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_deliveries(
        &self,
        company_id: &str,
        endpoint_id: &str,
        limit_to: usize,
    ) -> StoreResult<Vec<Delivery>> {
        sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries AS d \
             WHERE d.company_id = ?1 AND d.endpoint_id = ?2 \
             ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT ?3"
        ))
        .bind(company_id)
        .bind(endpoint_id)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(DeliveryRow::into_delivery)
        .collect()
    }

    async fn get_delivery(
        &self,
        company_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<(Delivery, Vec<DeliveryAttempt>)>> {
        let Some(row) = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries AS d \
             WHERE d.company_id = ?1 AND d.delivery_id = ?2"
        ))
        .bind(company_id)
        .bind(delivery_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        else {
            return Ok(None);
        };
        let attempts = sqlx::query_as::<_, AttemptRow>(
            "SELECT attempt, at, status_code, error, duration_ms FROM notification_attempts \
             WHERE delivery_id = ?1 ORDER BY attempt_id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(AttemptRow::into_attempt)
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some((row.into_delivery()?, attempts)))
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        limit_to: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<DueDelivery>> {
        if limit_to == 0 {
            return Ok(Vec::new());
        }
        let now = truncate(now);
        // A lease that ran out is claimable again: its worker died or stalled.
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE notification_deliveries SET lease_owner = ?1, lease_until = ?2 \
             WHERE delivery_id IN (SELECT delivery_id FROM notification_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= ?3 \
                   AND (lease_until IS NULL OR lease_until <= ?3) \
                 ORDER BY next_attempt_at LIMIT ?4) \
             RETURNING delivery_id",
        )
        .bind(owner)
        .bind(to_micros(add_duration(now, lease)))
        .bind(to_micros(now))
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&ids)
            .map_err(|e| corrupt(format!("delivery ids do not serialise: {e}")))?;
        sqlx::query_as::<_, DueRow>(&format!(
            "SELECT {DELIVERY_COLUMNS}, e.url, e.secret, e.enabled \
             FROM notification_deliveries AS d \
             JOIN notification_endpoints AS e ON e.endpoint_id = d.endpoint_id \
             WHERE d.delivery_id IN (SELECT value FROM json_each(?1)) \
             ORDER BY d.next_attempt_at"
        ))
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(|row| {
            Ok(DueDelivery {
                delivery: row.delivery.into_delivery()?,
                url: row.url,
                secret: row.secret,
                endpoint_enabled: row.enabled,
            })
        })
        .collect()
    }

    async fn next_delivery_due(&self) -> StoreResult<Option<OffsetDateTime>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(COALESCE(MAX(next_attempt_at, lease_until), next_attempt_at)) \
             FROM notification_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        due.map(from_micros).transpose()
    }

    async fn record_delivery_attempt(&self, record: AttemptRecord) -> StoreResult<()> {
        let now = to_micros(truncate(record.now));
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlx)?;
        let attempt = &record.attempt;
        sqlx::query(
            "INSERT INTO notification_attempts \
             (delivery_id, attempt, at, status_code, error, duration_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&record.delivery_id)
        .bind(i64::from(attempt.attempt))
        .bind(to_micros(truncate(attempt.at)))
        .bind(attempt.status_code.map(i64::from))
        .bind(&attempt.error)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let (status, next_at, finished_at) = match &record.next {
            DeliveryNext::Delivered => ("delivered", None, Some(now)),
            DeliveryNext::RetryAt(at) => ("pending", Some(to_micros(truncate(*at))), None),
            DeliveryNext::Failed | DeliveryNext::EndpointGone => ("failed", None, Some(now)),
        };
        // Fenced on the lease: a worker that lost it records its attempt
        // but does not move the delivery the new holder is working on.
        let moved = sqlx::query(
            "UPDATE notification_deliveries SET status = ?1, next_attempt_at = ?2, \
                 finished_at = ?3, attempts = MAX(attempts, ?4), last_error = ?5, \
                 lease_owner = NULL, lease_until = NULL \
             WHERE delivery_id = ?6 AND lease_owner = ?7",
        )
        .bind(status)
        .bind(next_at)
        .bind(finished_at)
        .bind(i64::from(attempt.attempt))
        .bind(&record.last_error)
        .bind(&record.delivery_id)
        .bind(&record.owner)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?
        .rows_affected();
        if moved > 0 && record.next == DeliveryNext::EndpointGone {
            let reason = "the endpoint answered 410 Gone";
            sqlx::query(
                "UPDATE notification_endpoints SET enabled = 0, disabled_reason = ?1, \
                     disabled_at = ?2 \
                 WHERE endpoint_id = (SELECT endpoint_id FROM notification_deliveries \
                                      WHERE delivery_id = ?3)",
            )
            .bind(reason)
            .bind(now)
            .bind(&record.delivery_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
            sqlx::query(
                "UPDATE notification_deliveries SET status = 'failed', next_attempt_at = NULL, \
                     finished_at = ?1, last_error = ?2, lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'pending' AND endpoint_id = (SELECT endpoint_id \
                     FROM notification_deliveries WHERE delivery_id = ?3)",
            )
            .bind(now)
            .bind("the endpoint was disabled: it answered 410 Gone")
            .bind(&record.delivery_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }
}

impl RunHistoryStore for SqliteStore {
    async fn recent_runs(
        &self,
        company_id: &str,
        before: Option<&HistoryCursor>,
        limit_to: usize,
    ) -> StoreResult<Vec<RunWork>> {
        // Keyset paging on runs_company_created_run: each page is one index
        // range, however deep the backtest goes.
        let (before_at, before_id) = match before {
            Some(cursor) => (
                to_micros(truncate(cursor.created_at)),
                cursor.run_id.clone(),
            ),
            // Nothing is newer than the end of time.
            None => (i64::MAX, String::new()),
        };
        let company_id = company_id.to_owned();
        self.readers
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {RUN_COLUMNS}, e.body FROM runs AS r \
                         JOIN events AS e ON e.company_id = r.company_id \
                                         AND e.event_id = r.event_id AND e.run_id = r.run_id \
                         WHERE r.company_id = ?1 \
                           AND (r.created_at < ?2 OR (r.created_at = ?2 AND r.run_id < ?3)) \
                         ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?4"
                    ))
                    .map_err(from_rusqlite)?;
                let rows = stmt
                    .query_map(
                        rusqlite::params![company_id, before_at, before_id, limit(limit_to)],
                        |row| Ok((RunRow::read(row)?, row.get::<_, String>(10)?)),
                    )
                    .map_err(from_rusqlite)?;
                let mut runs = Vec::new();
                for row in rows {
                    let (run, body) = row.map_err(from_rusqlite)?;
                    // Finished runs: no longer queued.
                    runs.push(run.into_work(&body, None)?);
                }
                Ok(runs)
            })
            .await
    }
}
