//! [`Store`]'s notification and history ports, dispatched to the backend
//! (`sqlite/notifications.rs`, `postgres/notifications.rs`).

use moneyflow_core::ports::{
    AttemptRecord, Delivery, DeliveryAttempt, DueDelivery, HistoryCursor, NewNotificationEndpoint,
    NotificationEndpoint, NotificationStore, RunHistoryStore, RunWork, StoreError, StoreResult,
};
use time::OffsetDateTime;
use tracing::instrument;

use crate::Store;

/// After the insert that counts first: none inserted means the company
/// has as many endpoints as it may.
pub(crate) fn endpoint_inserted(
    rows: u64,
    endpoint: &NewNotificationEndpoint<'_>,
) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::Conflict(format!(
            "company {} has {} notification endpoints, the most it may have",
            endpoint.company_id, endpoint.max_per_company
        )))
    } else {
        Ok(())
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

impl NotificationStore for Store {
    // The secret is never logged.
    #[instrument(level = "debug", skip_all, fields(company_id = endpoint.company_id, endpoint_id = endpoint.id))]
    async fn create_notification_endpoint(
        &self,
        endpoint: NewNotificationEndpoint<'_>,
    ) -> StoreResult<NotificationEndpoint> {
        dispatch!(self.create_notification_endpoint(endpoint))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id))]
    async fn list_notification_endpoints(
        &self,
        company_id: &str,
    ) -> StoreResult<Vec<NotificationEndpoint>> {
        dispatch!(self.list_notification_endpoints(company_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, endpoint_id = endpoint_id))]
    async fn get_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<Option<NotificationEndpoint>> {
        dispatch!(self.get_notification_endpoint(company_id, endpoint_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, endpoint_id = endpoint_id))]
    async fn delete_notification_endpoint(
        &self,
        company_id: &str,
        endpoint_id: &str,
    ) -> StoreResult<bool> {
        dispatch!(self.delete_notification_endpoint(company_id, endpoint_id))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, endpoint_id = endpoint_id))]
    async fn list_deliveries(
        &self,
        company_id: &str,
        endpoint_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        dispatch!(self.list_deliveries(company_id, endpoint_id, limit))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, delivery_id = delivery_id))]
    async fn get_delivery(
        &self,
        company_id: &str,
        delivery_id: &str,
    ) -> StoreResult<Option<(Delivery, Vec<DeliveryAttempt>)>> {
        dispatch!(self.get_delivery(company_id, delivery_id))
    }

    #[instrument(level = "debug", skip_all, fields(owner = owner, limit = limit))]
    async fn claim_deliveries(
        &self,
        owner: &str,
        limit: usize,
        lease: std::time::Duration,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<DueDelivery>> {
        dispatch!(self.claim_deliveries(owner, limit, lease, now))
    }

    #[instrument(level = "debug", skip_all)]
    async fn next_delivery_due(&self) -> StoreResult<Option<OffsetDateTime>> {
        dispatch!(self.next_delivery_due())
    }

    #[instrument(level = "debug", skip_all, fields(delivery_id = record.delivery_id))]
    async fn record_delivery_attempt(&self, record: AttemptRecord) -> StoreResult<()> {
        dispatch!(self.record_delivery_attempt(record))
    }
}

impl RunHistoryStore for Store {
    #[instrument(level = "debug", skip_all, fields(company_id = company_id, limit = limit))]
    async fn recent_runs(
        &self,
        company_id: &str,
        before: Option<&HistoryCursor>,
        limit: usize,
    ) -> StoreResult<Vec<RunWork>> {
        dispatch!(self.recent_runs(company_id, before, limit))
    }
}
