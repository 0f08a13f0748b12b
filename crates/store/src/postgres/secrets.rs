//! Webhook signing secrets on PostgreSQL, through the pool: rotations are
//! rare.

use moneyflow_core::ports::{SigningSecret, SigningSecretStore, StoreResult};
use time::OffsetDateTime;

use super::PgStore;
use crate::codec::truncate;
use crate::error::{from_sqlx, from_sqlx_as};

#[derive(sqlx::FromRow)]
struct SecretRow {
    id: String,
    company_id: String,
    secret: String,
    created_at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
}

impl From<SecretRow> for SigningSecret {
    fn from(row: SecretRow) -> Self {
        SigningSecret {
            id: row.id,
            company_id: row.company_id,
            secret: row.secret,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

impl SigningSecretStore for PgStore {
    async fn create_signing_secret(
        &self,
        company_id: &str,
        id: &str,
        secret: &str,
        now: OffsetDateTime,
        rotate_previous_at: OffsetDateTime,
    ) -> StoreResult<SigningSecret> {
        let created_at = truncate(now);
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // The secrets in use stay valid for the grace period, so senders
        // can switch to the new one; none stays valid longer (an earlier
        // rotation's grace is cut short too, so a leaked secret can be
        // ended by rotating with no grace). Two rotations at once serialise on
        // these rows' locks.
        sqlx::query(
            "UPDATE signing_secrets SET expires_at = $1 \
             WHERE company_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(truncate(rotate_previous_at))
        .bind(company_id)
        .execute(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        sqlx::query(
            "INSERT INTO signing_secrets (id, company_id, secret, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(company_id)
        .bind(secret)
        .bind(created_at)
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
        let rows = sqlx::query_as::<_, SecretRow>(
            "SELECT id, company_id, secret, created_at, expires_at FROM signing_secrets \
             WHERE company_id = $1 AND (expires_at IS NULL OR expires_at > $2) \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(company_id)
        .bind(truncate(now))
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(rows.into_iter().map(SigningSecret::from).collect())
    }

    async fn delete_signing_secret(&self, company_id: &str, id: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM signing_secrets WHERE company_id = $1 AND id = $2")
            .bind(company_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?
            .rows_affected();
        Ok(deleted > 0)
    }
}
