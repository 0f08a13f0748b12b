//! Run events committed by other processes: every transaction that appends
//! run events does `pg_notify` on [`RUN_EVENTS_CHANNEL`] (see
//! `events.rs`); each server process `LISTEN`s on
//! a dedicated connection and tells its event streams which run (and
//! company) has news, so they read the store at once instead of at their
//! next poll. The store stays the record: a notification only wakes a
//! stream up; one lost while the connection was down is made up for by
//! [`RemoteNews::Resync`] on reconnecting (and by the streams' poll).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};

use super::PgStore;
use crate::RUN_EVENTS_CHANNEL;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// What a stream hears from other processes.
#[derive(Debug, Clone)]
pub enum RemoteNews {
    /// Run `run_id` of `company_id` has new events.
    Events {
        run_id: Arc<str>,
        company_id: Arc<str>,
    },
    /// Notifications may have been missed (the listener (re)connected):
    /// every stream reads the store.
    Resync,
}

impl RemoteNews {
    /// `<run_id> <company_id>`, as the store sends it.
    pub(crate) fn parse(payload: &str) -> Option<Self> {
        let (run_id, company_id) = payload.split_once(' ')?;
        Some(Self::Events {
            run_id: run_id.into(),
            company_id: company_id.into(),
        })
    }
}

impl PgStore {
    /// Listens until `stop` turns true, reconnecting with a pause when the
    /// database goes away; publishes what it hears on `news`.
    pub fn spawn_run_events_listener(
        &self,
        news: broadcast::Sender<RemoteNews>,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        spawn(self, news, stop)
    }
}

fn spawn(
    store: &PgStore,
    news: broadcast::Sender<RemoteNews>,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // A pool of its own (one connection, same options): the listener does
    // not take one of the store's connections, and reconnects through it.
    let options = (*store.pool.connect_options()).clone();
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options);
    tokio::spawn(listen(pool, news, stop))
}

async fn listen(
    pool: sqlx::PgPool,
    news: broadcast::Sender<RemoteNews>,
    mut stop: watch::Receiver<bool>,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            break;
        }
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(RUN_EVENTS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let listener = tokio::select! {
            connected = connected => connected,
            _ = stop.changed() => break,
        };
        let mut listener = match listener {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(error = %error, "run events listener: cannot listen; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => break,
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        // What was committed while not listening is in the store only.
        let _ = news.send(RemoteNews::Resync);
        loop {
            let received = tokio::select! {
                received = listener.try_recv() => received,
                _ = stop.changed() => return,
            };
            match received {
                Ok(Some(notification)) => {
                    if let Some(message) = RemoteNews::parse(notification.payload()) {
                        // No receivers (no open stream) is not an error.
                        let _ = news.send(message);
                    }
                }
                // The connection was lost: listen again on a new one.
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "run events listener: receiving failed; reconnecting");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_run_and_its_company() {
        let Some(RemoteNews::Events { run_id, company_id }) = RemoteNews::parse("run-1 acme")
        else {
            panic!("parses")
        };
        assert_eq!((&*run_id, &*company_id), ("run-1", "acme"));
        assert!(RemoteNews::parse("garbage").is_none());
    }
}
