//! The ports on PostgreSQL, for deployments with several processes per role.
//!
//! The hot writes (events, claims, leases, step commits) go through the
//! group-commit writer (`writer.rs`): a few writer tasks
//! ([`WriterConfig::writers`](crate::WriterConfig)), each holding one of the
//! pool's connections, share one request channel (`runs.rs`). Everything
//! else uses the pool directly.
//!
//! - `runs.rs`: events, runs, the queue (`FOR UPDATE SKIP LOCKED`) and
//!   documents.
//! - `secrets.rs`: webhook signing secrets.
//! - `events.rs`: run events (appended by the writer's batches), run
//!   listings, the queue's gauges and redrive.
//! - `notifications.rs`: notification endpoints, the deliveries outbox and
//!   their attempts; recent runs with their events (backtests).
//!
//! A transaction that reads before it writes (the next rule version) first
//! locks the company's row with `FOR NO KEY UPDATE`: concurrent saves for one
//! company queue on that lock and get versions n+1, n+2…, while inserts that
//! only reference the company (their foreign-key checks take `KEY SHARE`) are
//! not blocked by it, as they would be by `FOR UPDATE`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use moneyflow_core::ports::{
    ApiKey, ApiKeyStore, Company, CompanyLimits, CompanyStore, NewApiKey, RuleStore, RuleVersion,
    RuleVersionSummary, SettingStore, StoreError, StoreResult,
};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::OffsetDateTime;

use crate::codec::{now, rules_from_text, rules_to_text};
use crate::error::{from_migrate, from_sqlx, from_sqlx_as};
use crate::writer::{self, WriterConfig, WriterHandle};

mod events;
mod listen;
pub use listen::RemoteNews;
mod notifications;
mod outbox;
pub use outbox::{OutboxMessage, RelayError};
mod runs;
mod secrets;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Enough for a process's HTTP side and workers together, with the
/// writers' held connections ([`WriterConfig::writers`], 4 by default) among
/// them; PostgreSQL's default limit is 100 connections for all processes.
const MAX_CONNECTIONS: u32 = 16;

/// An unreachable database becomes [`StoreError::Unavailable`] after this
/// long, instead of requests hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL backend. Cloning shares the pool and the writers; the
/// writers stop when the last clone is dropped.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    writer: WriterHandle,
}

impl fmt::Debug for PgStore {
    // Not derived: the connect options hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool_size", &self.pool.size())
            .field("writer", &self.writer)
            .finish()
    }
}

impl PgStore {
    /// Connects to a `postgres://` or `postgresql://` URL.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(PgConnectOptions::from_str(url).map_err(from_sqlx)?).await
    }

    pub async fn connect_with(options: PgConnectOptions) -> StoreResult<Self> {
        Self::connect_with_config(options, WriterConfig::default()).await
    }

    /// [`PgStore::connect_with`] with writers configured by `config`.
    pub async fn connect_with_config(
        options: PgConnectOptions,
        config: WriterConfig,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.application_name("moneyflow"))
            .await
            .map_err(from_sqlx)?;
        // Never all of the pool: reads need connections too.
        let count = config
            .writers
            .clamp(1, usize::try_from(MAX_CONNECTIONS / 2).unwrap_or(1));
        let (writer, tasks) = writer::writers(&pool, config, count, true);
        for task in tasks {
            tokio::spawn(task.run());
        }
        Ok(Self { pool, writer })
    }

    /// Transactions the group-commit writers have committed so far: fewer
    /// than the writes they carried when they were batched.
    pub fn write_batches(&self) -> u64 {
        self.writer.batches()
    }

    /// The live feed of run events this process commits, a transaction's
    /// worth per message (see `run_events.rs`).
    pub fn subscribe_run_events(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::run_events::FeedBatch> {
        self.writer.feed().subscribe()
    }

    /// Writes waiting for a writer (the queue depth operators watch).
    pub fn queued_writes(&self) -> usize {
        self.writer.queued()
    }

    /// Applies the PostgreSQL migrations not yet applied. Safe to run from
    /// several processes at once: sqlx serialises them on an advisory lock.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(from_migrate)
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }

    /// The database's size on disk (every table, index and TOAST of it).
    pub async fn size_bytes(&self) -> StoreResult<u64> {
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// The pool, for this crate's later modules and for tests that need raw SQL.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl CompanyStore for PgStore {
    async fn create_company(&self, id: &str, name: &str) -> StoreResult<Company> {
        let created_at = now();
        sqlx::query("INSERT INTO companies (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| from_sqlx_as(e, || format!("company {id}"), || format!("company {id}")))?;
        Ok(Company {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at,
        })
    }

    async fn get_company(&self, id: &str) -> StoreResult<Option<Company>> {
        let row: Option<(String, String, OffsetDateTime)> =
            sqlx::query_as("SELECT id, name, created_at FROM companies WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(row.map(|(id, name, created_at)| Company {
            id,
            name,
            created_at,
        }))
    }

    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        let rows: Vec<(String, String, OffsetDateTime)> =
            sqlx::query_as("SELECT id, name, created_at FROM companies ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await
                .map_err(from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at)| Company {
                id,
                name,
                created_at,
            })
            .collect())
    }

    async fn company_limits(&self, company_id: &str) -> StoreResult<Option<CompanyLimits>> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT payments_per_second, payments_burst FROM companies WHERE id = $1",
        )
        .bind(company_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.map(crate::company_limits_from_columns).transpose()
    }

    async fn set_company_limits(&self, company_id: &str, limits: CompanyLimits) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE companies SET payments_per_second = $1, payments_burst = $2 WHERE id = $3",
        )
        .bind(limits.payments_per_second.map(i64::from))
        .bind(limits.payments_burst.map(i64::from))
        .bind(company_id)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        crate::one_company_updated(updated.rows_affected(), company_id)
    }
}

const API_KEY_COLUMNS: &str = "id, company_id, prefix, label, created_at, revoked_at";

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    company_id: String,
    prefix: String,
    label: Option<String>,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            company_id: row.company_id,
            prefix: row.prefix,
            label: row.label,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

impl ApiKeyStore for PgStore {
    async fn create_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey> {
        let created_at = now();
        sqlx::query(
            "INSERT INTO api_keys (id, company_id, key_hash, prefix, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id)
        .bind(key.company_id)
        .bind(key.key_hash)
        .bind(key.prefix)
        .bind(key.label)
        .bind(created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("api key {}", key.id),
                || format!("company {}", key.company_id),
            )
        })?;
        Ok(ApiKey {
            id: key.id.to_owned(),
            company_id: key.company_id.to_owned(),
            prefix: key.prefix.to_owned(),
            label: key.label.map(str::to_owned),
            created_at,
            revoked_at: None,
        })
    }

    async fn list_api_keys(&self, company_id: &str) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE company_id = $1 ORDER BY created_at, id"
        ))
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn revoke_api_key(&self, company_id: &str, key_id: &str) -> StoreResult<bool> {
        // Revoking twice keeps the first revocation time.
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE company_id = $2 AND id = $3",
        )
        .bind(now())
        .bind(company_id)
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(row.map(ApiKey::from))
    }
}

const RULE_VERSION_COLUMNS: &str =
    "rule_id, company_id, version, rules, rule_created_at, created_at";

#[derive(sqlx::FromRow)]
struct RuleVersionRow {
    rule_id: String,
    company_id: String,
    version: i64,
    rules: String,
    rule_created_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

impl RuleVersionRow {
    fn into_rule_version(self) -> StoreResult<RuleVersion> {
        Ok(RuleVersion {
            id: self.rule_id,
            company_id: self.company_id,
            version: self.version,
            rules: rules_from_text(&self.rules)?,
            created_at: self.rule_created_at,
            updated_at: self.created_at,
        })
    }
}

impl RuleStore for PgStore {
    async fn save_rule_version(
        &self,
        company_id: &str,
        rules: &Value,
        node_count: i64,
    ) -> StoreResult<RuleVersion> {
        let text = rules_to_text(rules)?;
        let mut tx = self.pool.begin().await.map_err(from_sqlx)?;
        // Serialises saves for this company (see the module header).
        let company: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM companies WHERE id = $1 FOR NO KEY UPDATE")
                .bind(company_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(from_sqlx)?;
        if company.is_none() {
            return Err(StoreError::NotFound(format!("company {company_id}")));
        }
        let latest: Option<(i64, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT version, rule_id, rule_created_at FROM rule_versions \
             WHERE company_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(company_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let updated_at = now();
        let (version, id, created_at) = match latest {
            Some((version, id, created_at)) => (version + 1, id, created_at),
            None => (1, uuid::Uuid::new_v4().to_string(), updated_at),
        };
        sqlx::query(
            "INSERT INTO rule_versions \
             (company_id, version, rule_id, rules, node_count, rule_created_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(company_id)
        .bind(version)
        .bind(&id)
        .bind(&text)
        .bind(node_count)
        .bind(created_at)
        .bind(updated_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            from_sqlx_as(
                e,
                || format!("rule version {version}"),
                || format!("company {company_id}"),
            )
        })?;
        tx.commit().await.map_err(from_sqlx)?;
        Ok(RuleVersion {
            id,
            company_id: company_id.to_owned(),
            version,
            rules: rules.clone(),
            created_at,
            updated_at,
        })
    }

    async fn current_rule_version(&self, company_id: &str) -> StoreResult<Option<RuleVersion>> {
        sqlx::query_as::<_, RuleVersionRow>(&format!(
            "SELECT {RULE_VERSION_COLUMNS} FROM rule_versions WHERE company_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .bind(company_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(RuleVersionRow::into_rule_version)
        .transpose()
    }

    async fn get_rule_version(
        &self,
        company_id: &str,
        version: i64,
    ) -> StoreResult<Option<RuleVersion>> {
        sqlx::query_as::<_, RuleVersionRow>(&format!(
            "SELECT {RULE_VERSION_COLUMNS} FROM rule_versions WHERE company_id = $1 AND version = $2"
        ))
        .bind(company_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(RuleVersionRow::into_rule_version)
        .transpose()
    }

    async fn list_rule_versions(&self, company_id: &str) -> StoreResult<Vec<RuleVersionSummary>> {
        let rows: Vec<(i64, i64, OffsetDateTime)> = sqlx::query_as(
            "SELECT version, node_count, created_at FROM rule_versions WHERE company_id = $1 ORDER BY version DESC",
        )
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(version, node_count, created_at)| RuleVersionSummary {
                version,
                node_count,
                created_at,
            })
            .collect())
    }
}

impl SettingStore for PgStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(())
    }
}
