//! Run events committed by other processes (PostgreSQL only): the store's
//! `LISTEN` task ([`moneyflow_store::PgStore::spawn_run_events_listener`])
//! tells this process's event streams which run (and company) has news, so
//! they read the store at once instead of at their next poll.

pub use moneyflow_store::RemoteNews;

/// How many pieces of news wait for a slow stream before it lags (and
/// then reads the store anyway).
pub const CAPACITY: usize = 1024;
