//! Ports: the records MoneyFlow keeps and the traits a storage backend
//! implements. The store crate implements them on SQLite and PostgreSQL; the
//! server and the engine depend on these traits, never on a database.

use std::future::Future;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// A company: the tenant that owns rules, keys, events and runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
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
