//! The ports on SQLite: one database file (WAL) in the data directory, the
//! default for `moneyflow up`.
//!
//! Three kinds of connections:
//! - the writer thread's own rusqlite connection (`sqlite/writer.rs`) for
//!   every write of the hot path: events, claims, leases, step commits,
//!   redrives, batched into one transaction each;
//! - a few rusqlite read connections (`sqlite/connection.rs`) for what the
//!   engine and monitoring read: runs, documents, run events, listings;
//! - the sqlx pool, for migrations and the cold paths (companies, keys,
//!   rules, settings, signing secrets, notification endpoints and
//!   deliveries).
//!
//! Writes serialise on SQLite's single write lock; `busy_timeout` makes a
//! writer wait for it instead of failing. A transaction that reads before it
//! writes (the next rule version, a writer batch) starts with `BEGIN
//! IMMEDIATE`, so it holds the write lock from its first read and two of them
//! cannot both read the same latest version.
//!
//! `sqlite::memory:` is a private database file in a temporary directory,
//! removed with the store's last clone: the writer, the readers and the pool
//! need one database they can all open.
//!
//! - `runs.rs`: events, runs, the queue and documents.
//! - `secrets.rs`: webhook signing secrets.
//! - `events.rs`: run events (appended by the writer's requests), run
//!   listings, the queue's gauges and redrive.
//! - `notifications.rs`: notification endpoints, the deliveries outbox and
//!   their attempts; recent runs with their events (backtests).
//! - `writer.rs`: the writer thread; `connection.rs`: opening connections
//!   and the read connections.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use moneyflow_core::ports::{
    ApiKey, ApiKeyStore, Company, CompanyLimits, CompanyStore, NewApiKey, RuleStore, RuleVersion,
    RuleVersionSummary, SettingStore, StoreError, StoreResult,
};
use serde_json::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::codec::{from_micros, now, rules_from_text, rules_to_text, to_micros};
use crate::error::{from_migrate, from_rusqlite, from_sqlx, from_sqlx_as};
use crate::writer::{WriterConfig, WriterHandle, channel};
use connection::{BUSY_TIMEOUT, Readers};

mod connection;
mod events;
mod notifications;
mod runs;
mod secrets;
mod writer;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The sqlx pool's connections: cold paths only. Readers run in parallel
/// under WAL; writers queue on the file lock, so more would only wait.
const MAX_CONNECTIONS: u32 = 4;

/// Read connections for the hot reads, one per read at a time.
const READERS: usize = 4;

/// The SQLite backend. Cloning shares the pool, the readers and the writer;
/// the writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: WriterHandle,
    readers: Readers,
    /// The temporary directory of `sqlite::memory:`, removed with the last
    /// clone.
    _temporary: Option<Arc<tempfile::TempDir>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("pool_size", &self.pool.size())
            .field("readers", &self.readers)
            .field("writer", &self.writer)
            .finish()
    }
}

impl SqliteStore {
    /// Opens `sqlite:///abs/path.db`, `sqlite://relative.db` or
    /// `sqlite::memory:`, creating the file if it is missing.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_config(url, WriterConfig::default()).await
    }

    /// [`SqliteStore::connect`] with a writer configured by `config`
    /// (`writers` is ignored: SQLite has one writer).
    pub async fn connect_with_config(url: &str, config: WriterConfig) -> StoreResult<Self> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            let path = dir.path().join(crate::SQLITE_FILE_NAME);
            return Self::connect_with(path, config, Some(Arc::new(dir))).await;
        }
        let options = SqliteConnectOptions::from_str(url).map_err(from_sqlx)?;
        Self::connect_with(options.get_filename().to_owned(), config, None).await
    }

    /// Opens (creating it if missing) the database file at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_config(path, WriterConfig::default()).await
    }

    /// [`SqliteStore::open`] with a writer configured by `config`.
    pub async fn open_with_config(path: &Path, config: WriterConfig) -> StoreResult<Self> {
        Self::connect_with(path.to_owned(), config, None).await
    }

    async fn connect_with(
        path: PathBuf,
        config: WriterConfig,
        temporary: Option<Arc<tempfile::TempDir>>,
    ) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns (see
            // `connection::open`, which the writer and readers use).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(from_sqlx)?;
        let (writer, rx) = channel(config);
        let conn = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || connection::open(&path))
                .await
                .map_err(|e| StoreError::Internal(format!("opening SQLite panicked: {e}").into()))?
                .map_err(from_rusqlite)?
        };
        writer::Writer::new(conn, path.clone(), rx, writer.parts(), config.max_batch)
            .spawn()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Self {
            pool,
            writer,
            readers: Readers::new(path, READERS),
            _temporary: temporary,
        })
    }

    /// Transactions the group-commit writer has committed so far: fewer than
    /// the writes it carried when they were batched.
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

    /// Writes waiting for the writer (the queue depth operators watch).
    pub fn queued_writes(&self) -> usize {
        self.writer.queued()
    }

    /// Applies the SQLite migrations not yet applied.
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

    /// The database file with its `-wal` and `-shm` companions; an
    /// in-memory database counts its pages.
    pub async fn size_bytes(&self) -> StoreResult<u64> {
        let file: String =
            sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
                .fetch_one(&self.pool)
                .await
                .map_err(from_sqlx)?;
        if file.is_empty() {
            let bytes: i64 = sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(from_sqlx)?;
            return Ok(u64::try_from(bytes).unwrap_or(0));
        }
        let size = |path: String| std::fs::metadata(path).map_or(0, |m| m.len());
        Ok(size(format!("{file}-wal")) + size(format!("{file}-shm")) + size(file))
    }

    /// The pool, for this crate's later modules and for tests that need raw SQL.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[derive(sqlx::FromRow)]
struct CompanyRow {
    id: String,
    name: String,
    created_at: i64,
}

impl CompanyRow {
    fn into_company(self) -> StoreResult<Company> {
        Ok(Company {
            id: self.id,
            name: self.name,
            created_at: from_micros(self.created_at)?,
        })
    }
}

impl CompanyStore for SqliteStore {
    async fn create_company(&self, id: &str, name: &str) -> StoreResult<Company> {
        let created_at = now();
        sqlx::query("INSERT INTO companies (id, name, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(to_micros(created_at))
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
        sqlx::query_as::<_, CompanyRow>("SELECT id, name, created_at FROM companies WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)?
            .map(CompanyRow::into_company)
            .transpose()
    }

    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        sqlx::query_as::<_, CompanyRow>(
            "SELECT id, name, created_at FROM companies ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(CompanyRow::into_company)
        .collect()
    }

    async fn company_limits(&self, company_id: &str) -> StoreResult<Option<CompanyLimits>> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT payments_per_second, payments_burst FROM companies WHERE id = ?",
        )
        .bind(company_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?;
        row.map(crate::company_limits_from_columns).transpose()
    }

    async fn set_company_limits(&self, company_id: &str, limits: CompanyLimits) -> StoreResult<()> {
        let updated = sqlx::query(
            "UPDATE companies SET payments_per_second = ?, payments_burst = ? WHERE id = ?",
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
    created_at: i64,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn into_api_key(self) -> StoreResult<ApiKey> {
        Ok(ApiKey {
            id: self.id,
            company_id: self.company_id,
            prefix: self.prefix,
            label: self.label,
            created_at: from_micros(self.created_at)?,
            revoked_at: self.revoked_at.map(from_micros).transpose()?,
        })
    }
}

impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey> {
        let created_at = now();
        sqlx::query(
            "INSERT INTO api_keys (id, company_id, key_hash, prefix, label, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(key.id)
        .bind(key.company_id)
        .bind(key.key_hash)
        .bind(key.prefix)
        .bind(key.label)
        .bind(to_micros(created_at))
        .execute(&self.pool)
        .await
        .map_err(|e| from_sqlx_as(e, || format!("api key {}", key.id), || format!("company {}", key.company_id)))?;
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
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE company_id = ? ORDER BY created_at, id"
        ))
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?
        .into_iter()
        .map(ApiKeyRow::into_api_key)
        .collect()
    }

    async fn revoke_api_key(&self, company_id: &str, key_id: &str) -> StoreResult<bool> {
        // Revoking twice keeps the first revocation time.
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE company_id = ? AND id = ?",
        )
        .bind(to_micros(now()))
        .bind(company_id)
        .bind(key_id)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query_as::<_, ApiKeyRow>(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(from_sqlx)?
        .map(ApiKeyRow::into_api_key)
        .transpose()
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
    rule_created_at: i64,
    created_at: i64,
}

impl RuleVersionRow {
    fn into_rule_version(self) -> StoreResult<RuleVersion> {
        Ok(RuleVersion {
            id: self.rule_id,
            company_id: self.company_id,
            version: self.version,
            rules: rules_from_text(&self.rules)?,
            created_at: from_micros(self.rule_created_at)?,
            updated_at: from_micros(self.created_at)?,
        })
    }
}

impl RuleStore for SqliteStore {
    async fn save_rule_version(
        &self,
        company_id: &str,
        rules: &Value,
        node_count: i64,
    ) -> StoreResult<RuleVersion> {
        let text = rules_to_text(rules)?;
        // IMMEDIATE: take the write lock before reading the latest version
        // (see the module header).
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(from_sqlx)?;
        let company: Option<i64> = sqlx::query_scalar("SELECT 1 FROM companies WHERE id = ?")
            .bind(company_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(from_sqlx)?;
        if company.is_none() {
            return Err(StoreError::NotFound(format!("company {company_id}")));
        }
        let latest: Option<(i64, String, i64)> = sqlx::query_as(
            "SELECT version, rule_id, rule_created_at FROM rule_versions \
             WHERE company_id = ? ORDER BY version DESC LIMIT 1",
        )
        .bind(company_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(from_sqlx)?;
        let updated_at = now();
        let (version, id, created_at) = match latest {
            Some((version, id, created_at)) => (version + 1, id, from_micros(created_at)?),
            None => (1, uuid::Uuid::new_v4().to_string(), updated_at),
        };
        sqlx::query(
            "INSERT INTO rule_versions \
             (company_id, version, rule_id, rules, node_count, rule_created_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(company_id)
        .bind(version)
        .bind(&id)
        .bind(&text)
        .bind(node_count)
        .bind(to_micros(created_at))
        .bind(to_micros(updated_at))
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
            "SELECT {RULE_VERSION_COLUMNS} FROM rule_versions WHERE company_id = ? ORDER BY version DESC LIMIT 1"
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
            "SELECT {RULE_VERSION_COLUMNS} FROM rule_versions WHERE company_id = ? AND version = ?"
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
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT version, node_count, created_at FROM rule_versions WHERE company_id = ? ORDER BY version DESC",
        )
        .bind(company_id)
        .fetch_all(&self.pool)
        .await
        .map_err(from_sqlx)?;
        rows.into_iter()
            .map(|(version, node_count, created_at)| {
                Ok(RuleVersionSummary {
                    version,
                    node_count,
                    created_at: from_micros(created_at)?,
                })
            })
            .collect()
    }
}

impl SettingStore for SqliteStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(from_sqlx)
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(from_sqlx)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(from_sqlx)?;
        Ok(())
    }
}
