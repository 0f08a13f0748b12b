//! MoneyFlow's storage: the core's ports ([`moneyflow_core::ports`]) on
//! SQLite, the default (one file in the data directory, WAL), and on
//! PostgreSQL, for several processes per role.
//!
//! Callers hold a [`Store`], which picks the backend from the database URL
//! and dispatches every port call to it; they never see sqlx.
//!
//! # Group commit
//!
//! The hot writes — accepting an event, claiming runs, renewing leases,
//! committing a run's step — are not transactions of their own: they queue
//! for a writer task that runs every waiting write in one transaction and
//! answers each after that one commit (DESIGN §8). Hundreds of durable
//! writes share one fsync; a full queue answers [`StoreError::Overloaded`]
//! at once. `writer.rs` has the rules; [`WriterConfig`] the knobs.
//!
//! # Layout
//!
//! - `lib.rs`: [`Store`] and [`Backend`]: connecting, migrating, pinging,
//!   and dispatching the port traits to a backend.
//! - [`sqlite`]: [`SqliteStore`], the ports on SQLite; `sqlite/runs.rs`
//!   (events, runs, queue, documents), `sqlite/secrets.rs` (signing secrets).
//! - [`postgres`]: [`PgStore`], the ports on PostgreSQL, laid out alike.
//! - `notifications.rs`: [`Store`]'s notification and history ports
//!   (endpoints, the deliveries outbox and attempts, recent runs for
//!   backtests); each backend's `notifications.rs` implements them, and its
//!   step commit calls the outbox hook for runs it finishes.
//! - `writer.rs`: the group-commit writer and [`WriterConfig`]; what a batch
//!   writes is each backend's `runs.rs`.
//! - `run_events.rs`: run events alike on both backends: numbering a
//!   batch's events per run, and the live feed they are published on once
//!   committed ([`Store::subscribe_run_events`]); each backend's
//!   `events.rs` stores and reads them, lists runs and redrives.
//! - `monitoring.rs`: the monitoring ports dispatched to a backend.
//! - `error.rs`: sqlx errors → [`StoreError`] (unavailable, conflict, not
//!   found, internal), the one place retry-safety is decided.
//! - `data_dir.rs`: the data directory and database files, private to the
//!   server's user (`0700`/`0600`), tightened at start.
//! - `codec.rs`: how timestamps (UTC, microseconds) and JSON (text,
//!   byte-exact) are kept in columns, alike on both backends.
//! - `testing.rs` (feature `testing`): fresh migrated databases for tests.
//! - `migrations/sqlite/`, `migrations/postgres/`: each backend's schema,
//!   small additive files embedded at build time and applied by
//!   [`Store::migrate`].
//!
//! A store must be created inside a tokio runtime, which runs its writer:
//! when that runtime stops, writes answer [`StoreError::Unavailable`].

use std::path::Path;
use std::str::FromStr;

use moneyflow_core::ports::{
    AcceptOutcome, ApiKey, ApiKeyStore, Company, CompanyLimits, CompanyStore, Document, EventStore,
    NewApiKey, NewEvent, RuleStore, RuleVersion, RuleVersionSummary, RunRecord, RunStore, RunWork,
    SettingStore, SigningSecret, SigningSecretStore, StepCommit, StoreError, StoreResult,
};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use time::OffsetDateTime;
use tracing::instrument;

mod codec;
mod data_dir;
mod error;
mod fair_share;
mod notifications;
pub mod postgres;
mod run_events;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod writer;

pub use postgres::{OutboxMessage, PgStore, RelayError, RemoteNews};
pub use run_events::FeedBatch;

/// The PostgreSQL notification channel on which every transaction that
/// appends run events announces them to other processes, once per run, with
/// the payload `<run_id> <company_id>` (both ids are free of spaces).
pub const RUN_EVENTS_CHANNEL: &str = "moneyflow_run_events";
pub use sqlite::SqliteStore;
pub use writer::WriterConfig;

/// The file [`Store::open_data_dir`] opens in the data directory.
pub const SQLITE_FILE_NAME: &str = "moneyflow.db";

/// A store on one of the backends. Cloning is cheap and shares the pool and
/// the writer; the writer stops when the last clone is dropped.
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
        Self::connect_with_config(url, WriterConfig::default()).await
    }

    /// [`Store::connect`] with the group-commit writer configured by `config`.
    #[instrument(level = "debug", skip_all)]
    pub async fn connect_with_config(url: &str, config: WriterConfig) -> StoreResult<Store> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(
                SqliteStore::connect_with_config(url, config).await?,
            ))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(error::from_sqlx)?;
            Ok(Store::Postgres(
                PgStore::connect_with_config(options, config).await?,
            ))
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
    /// WAL, synchronous=FULL, foreign keys on, 5 s busy timeout). Does not
    /// migrate.
    #[instrument(level = "debug", skip_all, fields(dir = %dir.display()))]
    pub async fn open_data_dir(dir: &Path) -> StoreResult<Store> {
        Self::open_data_dir_with_config(dir, WriterConfig::default()).await
    }

    /// [`Store::open_data_dir`] with the group-commit writer configured by
    /// `config`.
    #[instrument(level = "debug", skip_all, fields(dir = %dir.display()))]
    pub async fn open_data_dir_with_config(dir: &Path, config: WriterConfig) -> StoreResult<Store> {
        let db = dir.join(SQLITE_FILE_NAME);
        data_dir::prepare(dir, &db).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Store::Sqlite(
            SqliteStore::open_with_config(&db, config).await?,
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

    /// Bytes the data takes on disk: SQLite's file with its write-ahead log
    /// and shared-memory index, or the PostgreSQL database's size.
    pub async fn size_bytes(&self) -> StoreResult<u64> {
        match self {
            Store::Sqlite(s) => s.size_bytes().await,
            Store::Postgres(s) => s.size_bytes().await,
        }
    }

    /// Transactions the group-commit writer has committed so far. With
    /// concurrent writers it grows slower than the writes do.
    pub fn write_batches(&self) -> u64 {
        match self {
            Store::Sqlite(s) => s.write_batches(),
            Store::Postgres(s) => s.write_batches(),
        }
    }

    /// Writes waiting for the writer: the queue depth to export as a metric.
    pub fn queued_writes(&self) -> usize {
        match self {
            Store::Sqlite(s) => s.queued_writes(),
            Store::Postgres(s) => s.queued_writes(),
        }
    }

    /// The live feed of the run events this process commits, a
    /// transaction's worth per message in id order, published once
    /// committed. A latency shortcut, not the record: a receiver that lags
    /// (or wants what another process wrote) reads the store.
    pub fn subscribe_run_events(&self) -> tokio::sync::broadcast::Receiver<FeedBatch> {
        match self {
            Store::Sqlite(s) => s.subscribe_run_events(),
            Store::Postgres(s) => s.subscribe_run_events(),
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

    #[instrument(level = "debug", skip_all, fields(company_id))]
    async fn company_limits(&self, company_id: &str) -> StoreResult<Option<CompanyLimits>> {
        dispatch!(self.company_limits(company_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id))]
    async fn set_company_limits(&self, company_id: &str, limits: CompanyLimits) -> StoreResult<()> {
        dispatch!(self.set_company_limits(company_id, limits))
    }
}

/// A company's stored limit columns: NULL, or counts that fit a `u32` (the
/// API refuses others, so anything else is corrupt data).
pub(crate) fn company_limits_from_columns(
    (per_second, burst): (Option<i64>, Option<i64>),
) -> StoreResult<CompanyLimits> {
    let limit = |value: Option<i64>| {
        value
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    StoreError::Internal(format!("a company limit of {n} is out of range").into())
                })
            })
            .transpose()
    };
    Ok(CompanyLimits {
        payments_per_second: limit(per_second)?,
        payments_burst: limit(burst)?,
    })
}

/// An `UPDATE companies … WHERE id = ?` changed its row, or there is none.
pub(crate) fn one_company_updated(rows: u64, company_id: &str) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(format!("company {company_id}")))
    } else {
        Ok(())
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

impl EventStore for Store {
    #[instrument(level = "debug", skip_all, fields(company_id = event.company_id, run_id = event.run_id))]
    async fn accept_event(&self, event: NewEvent) -> StoreResult<AcceptOutcome> {
        dispatch!(self.accept_event(event))
    }
}

impl RunStore for Store {
    #[instrument(level = "debug", skip_all, fields(owner = owner, limit = limit))]
    async fn claim_runs(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<String>> {
        dispatch!(self.claim_runs(owner, limit, lease, now))
    }

    #[instrument(level = "debug", skip_all, fields(owner = owner, runs = run_ids.len()))]
    async fn renew_leases(
        &self,
        owner: &str,
        run_ids: &[String],
        until: OffsetDateTime,
    ) -> StoreResult<()> {
        dispatch!(self.renew_leases(owner, run_ids, until))
    }

    #[instrument(level = "debug", skip_all)]
    async fn release_all_leases(&self) -> StoreResult<u64> {
        dispatch!(self.release_all_leases())
    }

    #[instrument(level = "debug", skip_all)]
    async fn next_due_at(&self) -> StoreResult<Option<OffsetDateTime>> {
        dispatch!(self.next_due_at())
    }

    #[instrument(level = "debug", skip_all, fields(runs = run_ids.len()))]
    async fn load_runs(&self, run_ids: &[String]) -> StoreResult<Vec<RunWork>> {
        dispatch!(self.load_runs(run_ids))
    }

    #[instrument(level = "debug", skip_all, fields(run_id = step.run_id, owner = step.owner))]
    async fn commit_step(&self, step: StepCommit) -> StoreResult<()> {
        dispatch!(self.commit_step(step))
    }

    #[instrument(level = "debug", skip_all, fields(run_id = run_id))]
    async fn get_run(&self, run_id: &str) -> StoreResult<Option<RunRecord>> {
        dispatch!(self.get_run(run_id))
    }

    #[instrument(level = "debug", skip_all, fields(run_id = run_id))]
    async fn list_documents(&self, run_id: &str) -> StoreResult<Vec<Document>> {
        dispatch!(self.list_documents(run_id))
    }

    async fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease: std::time::Duration,
        now: time::OffsetDateTime,
    ) -> StoreResult<moneyflow_core::ports::RunClaim> {
        dispatch!(self.claim_run(run_id, owner, lease, now))
    }

    async fn release_lease(&self, run_id: &str, owner: &str) -> StoreResult<()> {
        dispatch!(self.release_lease(run_id, owner))
    }

    async fn reset_claims(&self, run_ids: &[String]) -> StoreResult<()> {
        dispatch!(self.reset_claims(run_ids))
    }
}

// After the macro: textual scope.
mod monitoring;

impl SigningSecretStore for Store {
    // The secret is never logged.
    #[instrument(level = "debug", skip_all, fields(company_id = company_id, secret_id = id))]
    async fn create_signing_secret(
        &self,
        company_id: &str,
        id: &str,
        secret: &str,
        now: OffsetDateTime,
        rotate_previous_at: OffsetDateTime,
    ) -> StoreResult<SigningSecret> {
        dispatch!(self.create_signing_secret(company_id, id, secret, now, rotate_previous_at))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id))]
    async fn active_signing_secrets(
        &self,
        company_id: &str,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<SigningSecret>> {
        dispatch!(self.active_signing_secrets(company_id, now))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, secret_id = id))]
    async fn delete_signing_secret(&self, company_id: &str, id: &str) -> StoreResult<bool> {
        dispatch!(self.delete_signing_secret(company_id, id))
    }
}
