//! Notification endpoints, deliveries and attempts on PostgreSQL, and the
//! bounded read of a company's recent runs that backtests replay.
//!
//! Deliveries are an outbox: [`enqueue_deliveries`] runs inside the writer's
//! step-commit transaction, so a run is finished if and only if its
//! deliveries exist. The rest goes through the pool. Claims take rows with
//! `FOR UPDATE SKIP LOCKED`, so the workers of several processes never wait
//! for, nor take, the same delivery.

use moneyflow_core::ports::{
    AttemptRecord, Delivery, DeliveryAttempt, DeliveryNext, DeliveryStatus, DueDelivery,
    HistoryCursor, NewNotificationEndpoint, NotificationEndpoint, NotificationStore,
    RunHistoryStore, RunRecord, RunWork, StepCommit, StoreResult,
};
use moneyflow_core::run::RunStatus;
use sqlx::PgConnection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::PgStore;
use crate::codec::{add_duration, corrupt_status, json_from_text, nodes_from_text, truncate};
use crate::error::{from_sqlx, from_sqlx_as};
use crate::notifications::endpoint_inserted;

/// The outbox hook of a step commit: for each step that finishes its run,
/// one pending delivery per enabled endpoint of the run's company that takes
/// the event type. Runs in the step commit's transaction; a round without
/// finished runs costs nothing.
pub(super) async fn enqueue_deliveries(
    conn: &mut PgConnection,
    steps: &[&StepCommit],
) -> Result<(), sqlx::Error> {
    let (mut run_id, mut status, mut finished_text, mut finished_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for step in steps.iter().filter(|s| s.status.is_terminal()) {
        let at = truncate(step.finished_at.unwrap_or_else(crate::codec::now));
        run_id.push(step.run_id.as_str());
        status.push(step.status.as_str());
        finished_text.push(at.format(&Rfc3339).unwrap_or_default());
        finished_at.push(at);
    }
    if run_id.is_empty() {
        return Ok(());
    }
    // The payload is built here, once: every attempt sends the same bytes.
    // json_build_object keeps the keys in the order given.
    sqlx::query(
        "INSERT INTO notification_deliveries \
         (delivery_id, endpoint_id, company_id, run_id, event_type, payload, status, attempts, \
          next_attempt_at, created_at) \
         SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), e.endpoint_id, \
                r.company_id, r.run_id, 'run.' || u.status, \
                json_build_object('type', 'run.' || u.status, 'timestamp', u.finished_text, \
                    'data', json_build_object('run_id', r.run_id, 'company_id', r.company_id, \
                        'event_id', r.event_id, 'status', u.status, \
                        'rule_version', r.rule_version, 'finished_at', u.finished_text))::text, \
                'pending', 0, u.finished_at, u.finished_at \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
              AS u(run_id, status, finished_text, finished_at) \
         JOIN runs AS r ON r.run_id = u.run_id \
         JOIN notification_endpoints AS e ON e.company_id = r.company_id AND e.enabled \
         WHERE ('run.' || u.status) = ANY(e.event_types)",
    )
    .bind(&run_id)
    .bind(&status)
    .bind(&finished_text)
    .bind(&finished_at)
    .execute(&mut *conn)
    .await?;
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
    event_types: Vec<String>,
    secret: String,
    enabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl From<EndpointRow> for NotificationEndpoint {
    fn from(row: EndpointRow) -> Self {
        NotificationEndpoint {
            id: row.endpoint_id,
            company_id: row.company_id,
            url: row.url,
            description: row.description,
            event_types: row.event_types,
            secret: row.secret,
            enabled: row.enabled,
            disabled_reason: row.disabled_reason,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
        }
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
    attempts: i32,
    next_attempt_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    created_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
}

impl DeliveryRow {
    fn into_delivery(self) -> StoreResult<Delivery> {
        Ok(Delivery {
            status: DeliveryStatus::parse(&self.status)
                .ok_or_else(|| corrupt_status(&self.status))?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
            finished_at: self.finished_at,
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
    attempt: i32,
    at: OffsetDateTime,
    status_code: Option<i32>,
    error: Option<String>,
    duration_ms: i64,
}

impl From<AttemptRow> for DeliveryAttempt {
    fn from(row: AttemptRow) -> Self {
        DeliveryAttempt {
            attempt: u32::try_from(row.attempt).unwrap_or(0),
            at: row.at,
            status_code: row.status_code.and_then(|c| u16::try_from(c).ok()),
            error: row.error,
            duration_ms: u64::try_from(row.duration_ms).unwrap_or(0),
        }
    }
}

/// A run with its event, for backtests.
#[derive(sqlx::FromRow)]
struct HistoryRow {
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
    body: String,
}

impl HistoryRow {
    fn into_work(self) -> StoreResult<RunWork> {
        Ok(RunWork {
            claims: 0,
            event: json_from_text("event body", &self.body)?,
            run: RunRecord {
                status: RunStatus::parse(&self.status)
                    .ok_or_else(|| corrupt_status(&self.status))?,
                nodes: nodes_from_text(&self.nodes)?,
                created_at: self.created_at,
                started_at: self.started_at,
                finished_at: self.finished_at,
                run_id: self.run_id,
                company_id: self.company_id,
                event_id: self.event_id,
                event_type: self.event_type,
                rule_version: self.rule_version,
            },
        })
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn attempt_number(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl NotificationStore for PgStore {
    async fn create_notification_endpoint(
        &self,
        endpoint: NewNotificationEndpoint<'_>,
    ) -> StoreResult<NotificationEndpoint> {
        let created_at = truncate(endpoint.now);
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // Concurrent creates for one company queue on its row, so the count
        // each sees includes the others'.
        sqlx::query("SELECT 1 FROM companies WHERE id = $1 FOR UPDATE")
            .bind(endpoint.company_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        let inserted = sqlx::query(
            "INSERT INTO notification_endpoints \
             (endpoint_id, company_id, url, description, event_types, secret, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 \
             WHERE (SELECT count(*) FROM notification_endpoints WHERE company_id = $2) < $8",
        )
        .bind(endpoint.id)
        .bind(endpoint.company_id)
        .bind(endpoint.url)
        .bind(endpoint.description)
        .bind(endpoint.event_types)
        .bind(endpoint.secret)
        .bind(created_at)
        .bind(i64::try_from(endpoint.max_per_company).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("notification endpoint {}", endpoint.id),
                || format!("company {}", endpoint.company_id),
            )
        })?;
        endpoint_inserted(inserted.rows_affected(), &endpoint)?;
        tx.commit().await.map_err(from_sqlx)?;
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
        Ok(sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE company_id = $1 \
             ORDER BY created_at, endpoint_id"
        ))
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(NotificationEndpoint::from)
        .collect())
    }

    async fn get_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<Option<NotificationEndpoint>> {
        Ok(sqlx::query_as::<_, EndpointRow>(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints \
             WHERE company_id = $1 AND endpoint_id = $2"
        ))
        .bind(company_id)
        .bind(endpoint_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(NotificationEndpoint::from))
    }

    async fn delete_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The endpoint's row first: a worker's attempt for it waits for this
        // transaction, then finds nothing to update.
        let found: Option<String> = sqlx::query_scalar(
            "SELECT endpoint_id FROM notification_endpoints \
             WHERE company_id = $1 AND endpoint_id = $2 FOR UPDATE",
        )
        .bind(company_id)
        .bind(endpoint_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if found.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM notification_attempts WHERE delivery_id IN \
             (SELECT delivery_id FROM notification_deliveries WHERE endpoint_id = $1)",
        )
        .bind(endpoint_id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        sqlx::query("DELETE FROM notification_deliveries WHERE endpoint_id = $1")
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        sqlx::query("DELETE FROM notification_endpoints WHERE endpoint_id = $1")
            .bind(endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        company_id: &str,
        endpoint_id: &str,
        limit_to: usize,
    ) -> StoreResult<Vec<Delivery>> {
        sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries AS d \
             WHERE d.company_id = $1 AND d.endpoint_id = $2 \
             ORDER BY d.created_at DESC, d.delivery_id DESC LIMIT $3"
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
             WHERE d.company_id = $1 AND d.delivery_id = $2"
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
             WHERE delivery_id = $1 ORDER BY attempt_id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(DeliveryAttempt::from)
        .collect();
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
            "UPDATE notification_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE delivery_id IN (SELECT delivery_id FROM notification_deliveries \
                 WHERE status = 'pending' AND next_attempt_at <= $3 \
                   AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING delivery_id",
        )
        .bind(owner)
        .bind(add_duration(now, lease))
        .bind(now)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sqlx::query_as::<_, DueRow>(&format!(
            "SELECT {DELIVERY_COLUMNS}, e.url, e.secret, e.enabled \
             FROM notification_deliveries AS d \
             JOIN notification_endpoints AS e ON e.endpoint_id = d.endpoint_id \
             WHERE d.delivery_id = ANY($1) ORDER BY d.next_attempt_at"
        ))
        .bind(&ids)
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
        sqlx::query_scalar(
            "SELECT MIN(GREATEST(next_attempt_at, lease_until)) \
             FROM notification_deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)
    }

    async fn record_delivery_attempt(&self, record: AttemptRecord) -> StoreResult<()> {
        let now = truncate(record.now);
        let attempt = &record.attempt;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        sqlx::query(
            "INSERT INTO notification_attempts \
             (delivery_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.delivery_id)
        .bind(attempt_number(attempt.attempt))
        .bind(truncate(attempt.at))
        .bind(attempt.status_code.map(i32::from))
        .bind(&attempt.error)
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("an attempt of delivery {}", record.delivery_id),
                || format!("delivery {}", record.delivery_id),
            )
        })?;
        let (status, next_at, finished_at) = match &record.next {
            DeliveryNext::Delivered => ("delivered", None, Some(now)),
            DeliveryNext::RetryAt(at) => ("pending", Some(truncate(*at)), None),
            DeliveryNext::Failed | DeliveryNext::EndpointGone => ("failed", None, Some(now)),
        };
        // Fenced on the lease: a worker that lost it records its attempt
        // but does not move the delivery the new holder is working on.
        let endpoint: Option<String> = sqlx::query_scalar(
            "UPDATE notification_deliveries SET status = $1, next_attempt_at = $2, \
                 finished_at = $3, attempts = GREATEST(attempts, $4), last_error = $5, \
                 lease_owner = NULL, lease_until = NULL \
             WHERE delivery_id = $6 AND lease_owner = $7 \
             RETURNING endpoint_id",
        )
        .bind(status)
        .bind(next_at)
        .bind(finished_at)
        .bind(attempt_number(attempt.attempt))
        .bind(&record.last_error)
        .bind(&record.delivery_id)
        .bind(&record.owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if let (Some(endpoint_id), DeliveryNext::EndpointGone) = (endpoint, &record.next) {
            sqlx::query(
                "UPDATE notification_endpoints SET enabled = false, disabled_reason = $1, \
                     disabled_at = $2 WHERE endpoint_id = $3",
            )
            .bind("the endpoint answered 410 Gone")
            .bind(now)
            .bind(&endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
            sqlx::query(
                "UPDATE notification_deliveries SET status = 'failed', next_attempt_at = NULL, \
                     finished_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'pending' AND endpoint_id = $3",
            )
            .bind(now)
            .bind("the endpoint was disabled: it answered 410 Gone")
            .bind(&endpoint_id)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        }
        tx.commit().await.map_err(from_sqlx)
    }
}

impl RunHistoryStore for PgStore {
    async fn recent_runs(
        &self,
        company_id: &str,
        before: Option<&HistoryCursor>,
        limit_to: usize,
    ) -> StoreResult<Vec<RunWork>> {
        // Keyset paging on runs_company_created: each page is one index
        // range, however deep the backtest goes.
        let (before_at, before_id) = match before {
            Some(cursor) => (Some(truncate(cursor.created_at)), cursor.run_id.as_str()),
            None => (None, ""),
        };
        sqlx::query_as::<_, HistoryRow>(
            "SELECT r.run_id, r.company_id, r.event_id, r.event_type, r.rule_version, r.status, \
                    r.nodes, r.created_at, r.started_at, r.finished_at, e.body \
             FROM runs AS r \
             JOIN events AS e ON e.company_id = r.company_id AND e.event_id = r.event_id \
                             AND e.run_id = r.run_id \
             WHERE r.company_id = $1 \
               AND ($2::timestamptz IS NULL OR (r.created_at, r.run_id) < ($2, $3)) \
             ORDER BY r.created_at DESC, r.run_id DESC LIMIT $4",
        )
        .bind(company_id)
        .bind(before_at)
        .bind(before_id)
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(HistoryRow::into_work)
        .collect()
    }
}
