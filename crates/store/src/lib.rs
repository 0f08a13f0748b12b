//! MoneyFlow's storage: the core's ports ([`moneyflow_core::ports`]) on
//! SQLite, the default (one file in the data directory, WAL), and on
//! PostgreSQL, for several processes per role.
//!
//! Callers hold a [`Store`], which picks the backend from the database URL
//! and dispatches every port call to it; they never see sqlx.
//!
//! # Layout
//!
//! - `lib.rs`: [`Store`] and [`Backend`]: connecting, migrating, pinging,
//!   and dispatching the port traits to a backend.
//! - [`sqlite`]: [`SqliteStore`], the ports on SQLite.
//! - [`postgres`]: [`PgStore`], the ports on PostgreSQL.
//! - `error.rs`: sqlx errors → [`StoreError`] (unavailable, conflict, not
//!   found, internal), the one place retry-safety is decided.
//! - `codec.rs`: how timestamps (UTC, microseconds) and rule JSON (text,
//!   byte-exact) are kept in columns, alike on both backends.
//! - `testing.rs` (feature `testing`): fresh migrated databases for tests.
//! - `migrations/sqlite/`, `migrations/postgres/`: each backend's schema,
//!   small additive files embedded at build time and applied by
//!   [`Store::migrate`].
//!
//! Events, runs, node checkpoints and the embedded queue (a table with
//! leases; `SKIP LOCKED` on PostgreSQL) will live beside these as their own
//! modules in each backend, with their own migrations.

use std::path::Path;

use moneyflow_core::ports::{
    ApiKey, ApiKeyStore, Company, CompanyStore, NewApiKey, RuleStore, RuleVersion,
    RuleVersionSummary, SettingStore, StoreError, StoreResult,
};
use serde_json::Value;
use tracing::instrument;

mod codec;
mod error;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The file [`Store::open_data_dir`] opens in the data directory.
pub const SQLITE_FILE_NAME: &str = "moneyflow.db";

/// A store on one of the backends. Cloning is cheap and shares the pool.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Store {
    /// Connects to `sqlite:///abs/path/file.db`, `sqlite://relative.db`,
    /// `sqlite::memory:`, or `postgres://…` / `postgresql://…`. Creates the
    /// SQLite file if it is missing. Does not migrate.
    #[instrument(level = "debug", skip_all)]
    pub async fn connect(url: &str) -> StoreResult<Store> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::connect(url).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(PgStore::connect(url).await?))
        } else {
            // Only the scheme: the rest may hold a password.
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            Err(StoreError::Internal(
                format!(
                    "unsupported database URL scheme {scheme:?}: expected sqlite: or postgres://"
                )
                .into(),
            ))
        }
    }

    /// Creates `dir` if it is missing and opens `dir/moneyflow.db` (SQLite,
    /// WAL, synchronous=NORMAL, foreign keys on, 5 s busy timeout). Does not
    /// migrate.
    #[instrument(level = "debug", skip_all, fields(dir = %dir.display()))]
    pub async fn open_data_dir(dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Store::Sqlite(
            SqliteStore::open(&dir.join(SQLITE_FILE_NAME)).await?,
        ))
    }

    /// Applies this backend's migrations that are not applied yet; running it
    /// again is a no-op.
    #[instrument(level = "debug", skip_all, fields(backend = ?self.backend()))]
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite(s) => s.migrate().await,
            Store::Postgres(s) => s.migrate().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Cheap liveness check (`SELECT 1`), for readiness probes.
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite(s) => s.ping().await,
            Store::Postgres(s) => s.ping().await,
        }
    }
}

/// Forwards a port call to the backend.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl CompanyStore for Store {
    #[instrument(level = "debug", skip_all, fields(company_id = id))]
    async fn create_company(&self, id: &str, name: &str) -> StoreResult<Company> {
        dispatch!(self.create_company(id, name))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = id))]
    async fn get_company(&self, id: &str) -> StoreResult<Option<Company>> {
        dispatch!(self.get_company(id))
    }

    #[instrument(level = "debug", skip_all)]
    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        dispatch!(self.list_companies())
    }
}

impl ApiKeyStore for Store {
    #[instrument(level = "debug", skip_all, fields(company_id = key.company_id, key_id = key.id))]
    async fn create_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey> {
        dispatch!(self.create_api_key(key))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id))]
    async fn list_api_keys(&self, company_id: &str) -> StoreResult<Vec<ApiKey>> {
        dispatch!(self.list_api_keys(company_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, key_id = key_id))]
    async fn revoke_api_key(&self, company_id: &str, key_id: &str) -> StoreResult<bool> {
        dispatch!(self.revoke_api_key(company_id, key_id))
    }

    // The hash is not logged: it identifies a live key.
    #[instrument(level = "debug", skip_all)]
    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        dispatch!(self.find_api_key_by_hash(key_hash))
    }
}

impl RuleStore for Store {
    #[instrument(level = "debug", skip_all, fields(company_id = company_id, node_count = node_count))]
    async fn save_rule_version(
        &self,
        company_id: &str,
        rules: &Value,
        node_count: i64,
    ) -> StoreResult<RuleVersion> {
        dispatch!(self.save_rule_version(company_id, rules, node_count))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id))]
    async fn current_rule_version(&self, company_id: &str) -> StoreResult<Option<RuleVersion>> {
        dispatch!(self.current_rule_version(company_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, version = version))]
    async fn get_rule_version(
        &self,
        company_id: &str,
        version: i64,
    ) -> StoreResult<Option<RuleVersion>> {
        dispatch!(self.get_rule_version(company_id, version))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id))]
    async fn list_rule_versions(&self, company_id: &str) -> StoreResult<Vec<RuleVersionSummary>> {
        dispatch!(self.list_rule_versions(company_id))
    }
}

impl SettingStore for Store {
    #[instrument(level = "debug", skip_all, fields(key = key))]
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        dispatch!(self.get_setting(key))
    }

    #[instrument(level = "debug", skip_all, fields(key = key))]
    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        dispatch!(self.set_setting_if_absent(key, value))
    }

    #[instrument(level = "debug", skip_all, fields(key = key))]
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        dispatch!(self.put_setting(key, value))
    }
}
