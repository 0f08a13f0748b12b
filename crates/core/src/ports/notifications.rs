//! Ports for notifications and backtests: a company's notification
//! endpoints, the deliveries to them (an outbox the store fills in the same
//! transaction as a run's final step commit) with every attempt, and the
//! bounded read of a company's recent runs with their events that a
//! backtest replays.
//!
//! A delivery is `pending` until it is `delivered` or `failed`; a worker
//! claims due ones with a lease (like the run queue), sends, and records the
//! attempt and what comes next in one transaction, fenced on its lease.

use std::future::Future;

use serde::Serialize;
use time::OffsetDateTime;

use super::{RunWork, StoreResult};

/// The run event types an endpoint may receive.
pub const NOTIFICATION_EVENT_TYPES: [&str; 3] = ["run.succeeded", "run.failed", "run.aborted"];

/// A company's notification endpoint. The secret is kept (signing needs it)
/// but never serialised nor printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NotificationEndpoint {
    pub id: String,
    pub company_id: String,
    pub url: String,
    pub description: Option<String>,
    /// A subset of [`NOTIFICATION_EVENT_TYPES`].
    pub event_types: Vec<String>,
    #[serde(skip)]
    pub secret: String,
    /// False once the endpoint answered 410 Gone.
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for NotificationEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationEndpoint")
            .field("id", &self.id)
            .field("company_id", &self.company_id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"[redacted]")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// What is needed to store a new endpoint.
#[derive(Clone)]
pub struct NewNotificationEndpoint<'a> {
    pub id: &'a str,
    pub company_id: &'a str,
    pub url: &'a str,
    pub description: Option<&'a str>,
    pub event_types: &'a [String],
    pub secret: &'a str,
    pub now: OffsetDateTime,
    /// The most endpoints the company may have: the insert is refused with
    /// [`crate::ports::StoreError::Conflict`] when it has that many already
    /// (checked in the same transaction, so concurrent creates cannot pass it).
    pub max_per_company: usize,
}

impl std::fmt::Debug for NewNotificationEndpoint<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewNotificationEndpoint")
            .field("id", &self.id)
            .field("company_id", &self.company_id)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One notification to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// `msg_…`, sent as `webhook-id` on every attempt.
    pub id: String,
    pub endpoint_id: String,
    pub company_id: String,
    pub run_id: String,
    /// `run.succeeded`, `run.failed` or `run.aborted`.
    pub event_type: String,
    /// The JSON body, byte for byte as sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    /// 1 for the first.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The HTTP status the endpoint answered; `None` when it did not (`error` says why).
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A claimed delivery with what sending it needs.
#[derive(Clone)]
pub struct DueDelivery {
    pub delivery: Delivery,
    pub url: String,
    /// The endpoint's `whsec_…` secret.
    pub secret: String,
    /// False when the endpoint was disabled after the delivery was queued.
    pub endpoint_enabled: bool,
}

impl std::fmt::Debug for DueDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueDelivery")
            .field("delivery", &self.delivery)
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("endpoint_enabled", &self.endpoint_enabled)
            .finish()
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryNext {
    /// The endpoint answered 2xx.
    Delivered,
    /// Try again then (the lease is released).
    RetryAt(OffsetDateTime),
    /// Permanently failed (a 4xx, or the retry window is over).
    Failed,
    /// The endpoint answered 410 Gone: the delivery fails and the endpoint
    /// is disabled, failing its other pending deliveries too.
    EndpointGone,
}

/// An attempt to record, with what comes next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: String,
    /// The worker that claimed it: the delivery's state only changes while
    /// it still holds the lease (the attempt is recorded either way).
    pub owner: String,
    pub attempt: DeliveryAttempt,
    pub next: DeliveryNext,
    /// A summary for the delivery (`503 Service Unavailable`, `timed out`…).
    pub last_error: Option<String>,
    pub now: OffsetDateTime,
}

/// Notification endpoints and their deliveries.
pub trait NotificationStore: Send + Sync {
    /// [`super::StoreError::NotFound`] when the company does not exist.
    fn create_notification_endpoint(
        &self,
        endpoint: NewNotificationEndpoint<'_>,
    ) -> impl Future<Output = StoreResult<NotificationEndpoint>> + Send;
    /// Oldest first.
    fn list_notification_endpoints(
        &self,
        company_id: &str,
    ) -> impl Future<Output = StoreResult<Vec<NotificationEndpoint>>> + Send;
    fn get_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> impl Future<Output = StoreResult<Option<NotificationEndpoint>>> + Send;
    /// Deletes the endpoint with its deliveries and their attempts; `false`
    /// when the company has no such endpoint.
    fn delete_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// The endpoint's deliveries, newest first, at most `limit`.
    fn list_deliveries(
        &self,
        company_id: &str,
        endpoint_id: &str,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<Delivery>>> + Send;
    /// A delivery with its attempts, oldest first.
    fn get_delivery(
        &self,
        company_id: &str,
        delivery_id: &str,
    ) -> impl Future<Output = StoreResult<Option<(Delivery, Vec<DeliveryAttempt>)>>> + Send;
    /// Leases up to `limit` due pending deliveries to `owner` until `now + lease`.
    fn claim_deliveries(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = StoreResult<Vec<DueDelivery>>> + Send;
    /// When the next pending delivery is due (leased ones included: their
    /// lease may run out), if any.
    fn next_delivery_due(&self)
    -> impl Future<Output = StoreResult<Option<OffsetDateTime>>> + Send;
    /// Records an attempt and moves the delivery on, in one transaction.
    fn record_delivery_attempt(
        &self,
        record: AttemptRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Where a page of [`RunHistoryStore::recent_runs`] continues: strictly
/// older than this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    pub created_at: OffsetDateTime,
    pub run_id: String,
}

/// A company's stored runs with their events, read in bounded pages.
pub trait RunHistoryStore: Send + Sync {
    /// Up to `limit` of the company's runs with their events, newest first
    /// (by creation, then run id), older than `before` when given.
    fn recent_runs(
        &self,
        company_id: &str,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<RunWork>>> + Send;
}
