//! The monitoring ports ([`RunEventStore`]) on [`Store`], dispatched to its
//! backend.

use moneyflow_core::ports::{
    QueueStats, Redrive, RunEvent, RunEventStore, RunQuery, RunSummary, StoreResult,
};
use time::OffsetDateTime;
use tracing::instrument;

use crate::Store;

impl RunEventStore for Store {
    #[instrument(level = "debug", skip_all, fields(run_id = run_id, after_seq = after_seq))]
    async fn list_run_events(
        &self,
        run_id: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        dispatch!(self.list_run_events(run_id, after_seq, limit))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = company_id, after_id = after_id))]
    async fn list_company_events(
        &self,
        company_id: &str,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<RunEvent>> {
        dispatch!(self.list_company_events(company_id, after_id, limit))
    }

    #[instrument(level = "debug", skip_all, fields(company_id = query.company_id, limit = query.limit))]
    async fn list_runs(&self, query: &RunQuery) -> StoreResult<Vec<RunSummary>> {
        dispatch!(self.list_runs(query))
    }

    #[instrument(level = "debug", skip_all, fields(run_id = run_id))]
    async fn get_run_summary(&self, run_id: &str) -> StoreResult<Option<RunSummary>> {
        dispatch!(self.get_run_summary(run_id))
    }

    #[instrument(level = "debug", skip_all)]
    async fn queue_stats(&self, now: OffsetDateTime) -> StoreResult<QueueStats> {
        dispatch!(self.queue_stats(now))
    }

    #[instrument(level = "debug", skip_all, fields(run_id = redrive.run_id))]
    async fn redrive_run(&self, redrive: Redrive) -> StoreResult<RunSummary> {
        dispatch!(self.redrive_run(redrive))
    }
}
