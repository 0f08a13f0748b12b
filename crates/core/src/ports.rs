//! Ports: the records MoneyFlow keeps and the traits a storage backend
//! implements. The store crate implements them on SQLite and PostgreSQL; the
//! server and the engine depend on these traits, never on a database.

use std::future::Future;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

pub mod monitoring;
pub mod notifications;

pub use monitoring::{
    NewRunEvent, QueueStats, Redrive, RunEvent, RunEventKind, RunEventStore, RunQuery, RunSummary,
};
pub use notifications::{
    AttemptRecord, Delivery, DeliveryAttempt, DeliveryNext, DeliveryStatus, DueDelivery,
    HistoryCursor, NOTIFICATION_EVENT_TYPES, NewNotificationEndpoint, NotificationEndpoint,
    NotificationStore, RunHistoryStore,
};

/// A company: the tenant that owns rules, keys, events and runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What the admin set for one company, over the deployment's defaults.
/// `None` is "the deployment's default" (`--payments-per-second`,
/// `--payments-burst`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompanyLimits {
    /// Payment events (`POST /payment`) and redrives accepted per second,
    /// sustained.
    pub payments_per_second: Option<u32>,
    /// How many may arrive at once above the sustained rate (the token
    /// bucket's size).
    pub payments_burst: Option<u32>,
}

/// A company API key as stored: the key itself is never kept, only its
/// SHA-256 hash and a short prefix to recognise it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub company_id: String,
    /// The first characters of the key, for people to tell keys apart.
    pub prefix: String,
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// What is needed to store a new API key.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub company_id: &'a str,
    /// Lower-case hex SHA-256 of the key.
    pub key_hash: &'a str,
    pub prefix: &'a str,
    pub label: Option<&'a str>,
}

/// One immutable version of a company's rule set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleVersion {
    /// The company's rule id: the same for every version of that company.
    pub id: String,
    pub company_id: String,
    /// 1, 2, 3… per company.
    pub version: i64,
    /// The normalised rule set JSON (`{"company_id", "rules"}`).
    pub rules: Value,
    /// When the company's first version was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When this version was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A version without its rules, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleVersionSummary {
    pub version: i64,
    pub node_count: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing already exists (duplicate id). Retrying will not help.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The referenced thing does not exist. Retrying will not help.
    #[error("not found: {0}")]
    NotFound(String),
    /// The store could not be reached or could not commit. Safe to retry later.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store's write queue is full: back-pressure. Safe to retry shortly.
    #[error("store overloaded")]
    Overloaded,
    /// Anything else: a bug or corrupt data. Not safe to retry blindly.
    #[error("store failure")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of every store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Companies.
pub trait CompanyStore: Send + Sync {
    /// Creates a company; [`StoreError::Conflict`] when the id is taken.
    fn create_company(
        &self,
        id: &str,
        name: &str,
    ) -> impl Future<Output = StoreResult<Company>> + Send;
    fn get_company(&self, id: &str) -> impl Future<Output = StoreResult<Option<Company>>> + Send;
    fn list_companies(&self) -> impl Future<Output = StoreResult<Vec<Company>>> + Send;
    /// The company's limits; `None` when the company does not exist.
    fn company_limits(
        &self,
        company_id: &str,
    ) -> impl Future<Output = StoreResult<Option<CompanyLimits>>> + Send;
    /// Replaces the company's limits; [`StoreError::NotFound`] when the
    /// company does not exist.
    fn set_company_limits(
        &self,
        company_id: &str,
        limits: CompanyLimits,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Company API keys, stored as hashes.
pub trait ApiKeyStore: Send + Sync {
    /// [`StoreError::NotFound`] when the company does not exist.
    fn create_api_key(
        &self,
        key: NewApiKey<'_>,
    ) -> impl Future<Output = StoreResult<ApiKey>> + Send;
    fn list_api_keys(
        &self,
        company_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;
    /// Marks a key revoked; `false` when the company has no such key.
    fn revoke_api_key(
        &self,
        company_id: &str,
        key_id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The live (not revoked) key with this hash.
    fn find_api_key_by_hash(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
}

/// Immutable rule versions.
pub trait RuleStore: Send + Sync {
    /// Stores `rules` as the company's next version (1 when it has none), in
    /// one transaction; the rule `id` and `created_at` carry over from the
    /// first version. [`StoreError::NotFound`] when the company does not exist.
    fn save_rule_version(
        &self,
        company_id: &str,
        rules: &Value,
        node_count: i64,
    ) -> impl Future<Output = StoreResult<RuleVersion>> + Send;
    /// The newest version.
    fn current_rule_version(
        &self,
        company_id: &str,
    ) -> impl Future<Output = StoreResult<Option<RuleVersion>>> + Send;
    fn get_rule_version(
        &self,
        company_id: &str,
        version: i64,
    ) -> impl Future<Output = StoreResult<Option<RuleVersion>>> + Send;
    /// Newest first.
    fn list_rule_versions(
        &self,
        company_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<RuleVersionSummary>>> + Send;
}

/// Small named settings the server keeps (e.g. the admin token's hash).
pub trait SettingStore: Send + Sync {
    fn get_setting(&self, key: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// Sets the value only if the key has none; returns whether it was set.
    fn set_setting_if_absent(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    fn put_setting(&self, key: &str, value: &str) -> impl Future<Output = StoreResult<()>> + Send;
}

// ---------------------------------------------------------------------------
// Events, runs, the queue and documents (the router and the orchestrator).
// ---------------------------------------------------------------------------

/// A payment event the router has authenticated and validated, with the run
/// it starts. Accepting stores both, and queues the run, in one transaction.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub company_id: String,
    /// The event's own `event_id`, or one the router generated.
    pub event_id: String,
    /// The `Idempotency-Key` header, else the `event_id`; unique per company.
    pub idempotency_key: String,
    /// The Standard Webhooks `webhook-id` of a signed request; unique per
    /// company too, so a signed message is accepted once whatever key a
    /// replay carries.
    pub webhook_id: Option<String>,
    /// Lower-case hex SHA-256 of the request body, to tell a replay from a reuse.
    pub body_sha256: String,
    /// The event JSON as received.
    pub body: String,
    /// The event's `type`, kept for filtering.
    pub event_type: String,
    /// The company's rule version the run is pinned to.
    pub rule_version: i64,
    pub run_id: String,
    pub received_at: OffsetDateTime,
}

/// What accepting an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Stored and queued now.
    Accepted { event_id: String, run_id: String },
    /// The key (or the `webhook-id`) was seen before with the same body:
    /// the original answer.
    Replayed { event_id: String, run_id: String },
    /// The key was seen before with another body: the caller must not reuse it.
    KeyReused { event_id: String, run_id: String },
}

/// One node's checkpoint inside a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct NodeRecord {
    pub state: crate::run::NodeState,
    /// Executions started so far (0 for conditions not yet evaluated).
    pub attempts: u32,
    /// The task's resolved parameters, as last executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// `{"message", "retryable", ...}` of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub started_at: Option<OffsetDateTime>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub finished_at: Option<OffsetDateTime>,
    /// When a waiting retry is due.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// The node's earlier executions, oldest first, each as it stood when a
    /// redrive reset it (`{state, attempts, error, started_at, finished_at}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Value>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub company_id: String,
    pub event_id: String,
    pub event_type: String,
    pub rule_version: i64,
    pub status: crate::run::RunStatus,
    /// Node id → checkpoint, in rule order; empty until the first step.
    pub nodes: serde_json::Map<String, Value>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

/// A run with its event, ready to execute.
#[derive(Debug, Clone)]
pub struct RunWork {
    pub run: RunRecord,
    pub event: Value,
    /// How many times the run was claimed since a step of it last moved it
    /// in the queue (finished it, or scheduled its next attempt), the
    /// current claim included: a run claimed again and again without that
    /// crashes the process or loses its lease every time (a poison run).
    pub claims: u32,
}

/// A document a task produced (invoice, shipment, royalty…), stored once
/// under its idempotency key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    /// `{run_id}:{node_id}`, with a suffix when one node makes several.
    pub key: String,
    pub run_id: String,
    pub company_id: String,
    pub node_id: String,
    pub kind: String,
    pub body: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Where a run goes after a step is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueNext {
    /// Finished: the queue entry is removed.
    Done,
    /// Waiting (a retry): the lease is released and the run is due again then.
    At(OffsetDateTime),
    /// Still being worked on by this owner: the lease is kept (a checkpoint
    /// before awaiting slow tasks).
    Keep,
    /// Quarantined (a poison run, failed without executing): the queue
    /// entry is removed and the run is marked quarantined.
    Quarantine,
}

/// The result of one step of a run, committed atomically: the checkpoint,
/// the documents and the queue move. Rejected when `owner` no longer holds
/// the run's lease, so a worker that lost its lease cannot overwrite another's work.
#[derive(Debug, Clone)]
pub struct StepCommit {
    pub run_id: String,
    pub owner: String,
    pub status: crate::run::RunStatus,
    pub nodes: serde_json::Map<String, Value>,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub documents: Vec<Document>,
    pub next: QueueNext,
    /// What this step changed, as run events (`run.started`, `node.finished`,
    /// `run.finished`), in order: the store appends them in the same
    /// transaction, numbering them after the run's last event.
    pub events: Vec<NewRunEvent>,
}

/// Events and their runs: the router's side.
pub trait EventStore: Send + Sync {
    /// Stores the event, its run (status `queued`) and its queue entry in one
    /// transaction, or reports the earlier event with the same idempotency key.
    /// Returns only once that transaction is durable.
    fn accept_event(
        &self,
        event: NewEvent,
    ) -> impl Future<Output = StoreResult<AcceptOutcome>> + Send;
}

/// What [`RunStore::claim_run`] found (distributed mode: a broker message
/// names the run to work on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunClaim {
    /// Leased to the caller now.
    Claimed,
    /// Queued, but leased to another worker or waiting for a retry's time:
    /// the message is a duplicate (whoever holds it, or the dispatcher when
    /// the retry is due, moves the run on).
    Busy,
    /// The run exists and is no longer queued: it finished.
    Finished,
    /// No such run.
    Unknown,
}

/// Runs, the queue and documents: the orchestrator's side.
pub trait RunStore: Send + Sync {
    /// Leases up to `limit` due runs to `owner` until `now + lease`; returns their ids.
    fn claim_runs(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Extends `owner`'s leases on these runs to `until`.
    fn renew_leases(
        &self,
        owner: &str,
        run_ids: &[String],
        until: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Releases every lease (one-process start: nobody else holds any).
    fn release_all_leases(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    /// When the next unleased queue entry is due, if any.
    fn next_due_at(&self) -> impl Future<Output = StoreResult<Option<OffsetDateTime>>> + Send;
    /// The runs with their events, in any order; missing ids are left out.
    fn load_runs(
        &self,
        run_ids: &[String],
    ) -> impl Future<Output = StoreResult<Vec<RunWork>>> + Send;
    /// Commits a step; [`StoreError::Conflict`] when `owner` lost the lease.
    fn commit_step(&self, step: StepCommit) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_run(&self, run_id: &str) -> impl Future<Output = StoreResult<Option<RunRecord>>> + Send;
    /// The run's documents, oldest first.
    fn list_documents(
        &self,
        run_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<Document>>> + Send;

    /// Leases one named run to `owner` until `now + lease`, if it is queued,
    /// due, and not leased to a live worker (distributed mode). Backends
    /// without distributed mode keep the default: an error.
    fn claim_run(
        &self,
        run_id: &str,
        owner: &str,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<RunClaim>> + Send {
        let _ = (run_id, owner, lease, now);
        async {
            Err(StoreError::Internal(
                "claiming one run needs distributed mode (PostgreSQL)".into(),
            ))
        }
    }

    /// Gives up `owner`'s lease on `run_id` without marking it due again
    /// (the broker's redelivery, not the dispatcher, brings it back).
    fn release_lease(
        &self,
        run_id: &str,
        owner: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = (run_id, owner);
        async {
            Err(StoreError::Internal(
                "releasing one lease needs distributed mode (PostgreSQL)".into(),
            ))
        }
    }

    /// Starts the claim count of these queued runs over (distributed mode:
    /// a dead letter replayed once its cause is fixed is not a poison run).
    fn reset_claims(&self, run_ids: &[String]) -> impl Future<Output = StoreResult<()>> + Send {
        let _ = run_ids;
        async {
            Err(StoreError::Internal(
                "resetting claim counts needs distributed mode (PostgreSQL)".into(),
            ))
        }
    }
}

/// A company's webhook signing secret (Standard Webhooks, `whsec_…`).
/// Kept retrievable: verifying an HMAC needs the secret itself.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SigningSecret {
    pub id: String,
    pub company_id: String,
    #[serde(skip)]
    pub secret: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set when a newer secret replaced it: it stays valid until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecret")
            .field("id", &self.id)
            .field("company_id", &self.company_id)
            .field("secret", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Webhook signing secrets, with rotation.
pub trait SigningSecretStore: Send + Sync {
    /// Stores a new secret; every earlier secret of the company valid past
    /// `rotate_previous_at` (the rotation's grace period) now expires then,
    /// so a short grace ends the grace of earlier rotations too.
    /// [`StoreError::NotFound`] when the company does not exist.
    fn create_signing_secret(
        &self,
        company_id: &str,
        id: &str,
        secret: &str,
        now: OffsetDateTime,
        rotate_previous_at: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<SigningSecret>> + Send;
    /// Secrets valid at `now` (no expiry, or expiring later), newest first.
    fn active_signing_secrets(
        &self,
        company_id: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<SigningSecret>>> + Send;
    /// Revokes one of the company's secrets: it verifies nothing from now
    /// on. `false` when the company has no such secret.
    fn delete_signing_secret(
        &self,
        company_id: &str,
        id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}
