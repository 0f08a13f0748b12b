//! Distributed mode on PostgreSQL (DESIGN §6): the outbox between the store
//! and RabbitMQ, the dispatcher that turns due retries (and runs whose worker
//! died) into outbox rows, and claiming one run named by a broker message.
//!
//! The store stays the source of truth: a message only says "run X may be
//! due". Accepting an event writes its outbox row in the event's own
//! transaction (`runs.rs`, when [`PgStore::enable_distributed_mode`] was
//! called on this database), so a committed run always gets its message.

use std::future::Future;

use moneyflow_core::ports::{RunClaim, StoreError, StoreResult};
use time::OffsetDateTime;

use super::PgStore;
use crate::codec::{add_duration, truncate};
use crate::error::from_sqlx;

/// The settings key whose presence makes accepts write outbox rows. A
/// database-wide switch: every process on a distributed database relays.
pub(crate) const DISTRIBUTED_SETTING: &str = "distributed_mode";

/// One outbox row to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub run_id: String,
    pub company_id: String,
}

/// Why a relay round did not mark its rows sent.
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E: std::error::Error + 'static> {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("publishing failed")]
    Publish(#[source] E),
}

impl PgStore {
    /// Turns distributed mode on for this database: from now on accepts
    /// also write outbox rows. Idempotent.
    pub async fn enable_distributed_mode(&self) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, 'on') ON CONFLICT (key) DO NOTHING",
        )
        .bind(DISTRIBUTED_SETTING)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }

    /// One relay round: locks up to `limit` unsent rows (`SKIP LOCKED`, so
    /// relays in other routers take other rows), hands them to `publish`,
    /// and marks them sent only when it returned `Ok` (publisher confirms),
    /// in the same transaction. On any error nothing is marked: the rows
    /// are published again (at least once; consumers tolerate duplicates).
    /// Returns how many rows were sent.
    pub async fn relay_outbox<F, Fut, E>(
        &self,
        limit: usize,
        publish: F,
    ) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxMessage>) -> Fut + Send,
        Fut: Future<Output = Result<(), E>> + Send,
        E: std::error::Error + Send + 'static,
    {
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT id, run_id, company_id FROM outbox WHERE sent_at IS NULL \
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
        let messages = rows
            .into_iter()
            .map(|(_, run_id, company_id)| OutboxMessage { run_id, company_id })
            .collect();
        // Dropping `tx` on an error rolls back: the rows stay unsent.
        publish(messages).await.map_err(RelayError::Publish)?;
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(ids.len())
    }

    /// Deletes rows sent before `before` (they only matter until sent).
    pub async fn prune_outbox(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE sent_at < $1")
            .bind(truncate(before))
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    /// Moves up to `limit` queue entries that became due since their last
    /// message onto the outbox: waiting retries whose time came (retries
    /// stay durable here, not in the broker), and runs whose worker's lease
    /// ran out (it died mid-step: its message was acked as a duplicate by
    /// the others). A run released after a failed delivery (a panic) is not
    /// due again: the broker's redelivery and delivery limit own it.
    /// Returns how many were moved.
    pub async fn dispatch_due(&self, now: OffsetDateTime, limit: usize) -> StoreResult<u64> {
        let now = truncate(now);
        let done = sqlx::query(
            "WITH due AS ( \
                 SELECT run_id FROM run_queue \
                 WHERE available_at <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
                   AND (dispatched_at IS NULL OR dispatched_at < available_at \
                        OR (lease_until IS NOT NULL AND dispatched_at < lease_until)) \
                 ORDER BY available_at LIMIT $2 \
                 FOR UPDATE SKIP LOCKED), \
             moved AS ( \
                 UPDATE run_queue AS q SET dispatched_at = $1 \
                 FROM due WHERE q.run_id = due.run_id RETURNING q.run_id) \
             INSERT INTO outbox (run_id, company_id) \
             SELECT m.run_id, r.company_id FROM moved AS m JOIN runs AS r ON r.run_id = m.run_id",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected())
    }

    /// Unsent outbox rows (for readiness and tests).
    pub async fn outbox_pending(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    pub(crate) async fn claim_one(
        &self,
        run_id: &str,
        owner: &str,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<RunClaim> {
        let now = truncate(now);
        let claimed: Option<String> = sqlx::query_scalar(
            "UPDATE run_queue SET lease_owner = $2, lease_until = $3, claims = claims + 1 \
             WHERE run_id = $1 AND available_at <= $4 \
               AND (lease_until IS NULL OR lease_until <= $4) \
             RETURNING run_id",
        )
        .bind(run_id)
        .bind(owner)
        .bind(add_duration(now, lease))
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        if claimed.is_some() {
            return Ok(RunClaim::Claimed);
        }
        let (queued, exists): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM run_queue WHERE run_id = $1), \
                    EXISTS (SELECT 1 FROM runs WHERE run_id = $1)",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(match (queued, exists) {
            (true, _) => RunClaim::Busy,
            (false, true) => RunClaim::Finished,
            (false, false) => RunClaim::Unknown,
        })
    }

    pub(crate) async fn release_one(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE run_queue SET lease_owner = NULL, lease_until = NULL \
             WHERE run_id = $1 AND lease_owner = $2",
        )
        .bind(run_id)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }
}
