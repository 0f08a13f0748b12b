//! Webhook signing secrets on SQLite, through the pool: rotations are rare.

use moneyflow_core::ports::{SigningSecret, SigningSecretStore, StoreResult};
use time::OffsetDateTime;

use super::SqliteStore;
use crate::codec::{from_micros, to_micros, truncate};
use crate::error::{from_sqlx, from_sqlx_as};

#[derive(sqlx::FromRow)]
struct SecretRow {
    id: String,
    company_id: String,
    secret: String,
    created_at: i64,
    expires_at: Option<i64>,
}

impl SecretRow {
    fn into_secret(self) -> StoreResult<SigningSecret> {
        Ok(SigningSecret {
            id: self.id,
            company_id: self.company_id,
            secret: self.secret,
            created_at: from_micros(self.created_at)?,
            expires_at: self.expires_at.map(from_micros).transpose()?,
        })
    }
}

impl SigningSecretStore for SqliteStore {
    async fn create_signing_secret(
        &self,
        company_id: &str,
        id: &str,
        secret: &str,
        now: OffsetDateTime,
        rotate_previous_at: OffsetDateTime,
    ) -> StoreResult<SigningSecret> {
        let created_at = truncate(now);
        // IMMEDIATE: the write lock from the start, so the rotation and the
        // insert cannot interleave with another rotation.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlx)?;
        // The secrets in use stay valid for the grace period, so senders
        // can switch to the new one; none stays valid longer (an earlier
        // rotation's grace is cut short too, so a leaked secret can be
        // ended by rotating with no grace).
        sqlx::query(
            "UPDATE signing_secrets SET expires_at = ?1 \
             WHERE company_id = ?2 AND (expires_at IS NULL OR expires_at > ?1)",
        )
        .bind(to_micros(truncate(rotate_previous_at)))
        .bind(company_id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        sqlx::query(
            "INSERT INTO signing_secrets (id, company_id, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(id)
        .bind(company_id)
        .bind(secret)
        .bind(to_micros(created_at))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("signing secret {id}"),
                || format!("company {company_id}"),
            )
        })?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(SigningSecret {
            id: id.to_owned(),
            company_id: company_id.to_owned(),
            secret: secret.to_owned(),
            created_at,
            expires_at: None,
        })
    }

    async fn active_signing_secrets(
        &self,
        company_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SigningSecret>> {
        sqlx::query_as::<_, SecretRow>(
            "SELECT id, company_id, secret, created_at, expires_at FROM signing_secrets \
             WHERE company_id = ?1 AND (expires_at IS NULL OR expires_at > ?2) \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(company_id)
        .bind(to_micros(truncate(now)))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(SecretRow::into_secret)
        .collect()
    }

    async fn delete_signing_secret(&self, company_id: &str, id: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM signing_secrets WHERE company_id = ?1 AND id = ?2")
            .bind(company_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(deleted > 0)
    }
}
