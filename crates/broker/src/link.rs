//! [`Link`]: one AMQP connection of one role, re-established on demand with
//! backoff. Every (re)connect declares the topology again, so a broker that
//! lost its definitions (a reset node) is repaired by the first client back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::{Channel, Connection, ConnectionProperties, ConnectionStatus};
use tokio::time::{Instant, sleep_until, timeout};

use crate::backoff::Backoff;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::topology;

/// Whether a link is connected and how often it reconnected, readable
/// without waiting for the link.
#[derive(Clone, Default)]
pub(crate) struct StatusCell(Arc<StatusInner>);

#[derive(Default)]
struct StatusInner {
    status: Mutex<Option<ConnectionStatus>>,
    connects: AtomicU64,
}

impl StatusCell {
    pub(crate) fn is_connected(&self) -> bool {
        self.0
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(ConnectionStatus::connected)
    }

    /// Whether RabbitMQ blocks this connection's publishes (a memory or
    /// disk alarm): publishes wait, confirms do not come.
    pub(crate) fn is_blocked(&self) -> bool {
        self.0
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(ConnectionStatus::blocked)
    }

    /// Connections established after the first one.
    pub(crate) fn reconnects(&self) -> u64 {
        self.0.connects.load(Ordering::Relaxed).saturating_sub(1)
    }

    fn set(&self, status: Option<ConnectionStatus>) {
        *self
            .0
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = status;
    }

    /// Counts a new connection; returns how many there were.
    fn connected(&self, status: ConnectionStatus) -> u64 {
        self.set(Some(status));
        self.0.connects.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A connection that lived at least this long was healthy: the next
/// reconnect starts from the initial backoff.
fn stable_after(config: &BrokerConfig) -> Duration {
    config.reconnect_max
}

pub(crate) struct Link {
    config: Arc<BrokerConfig>,
    role: &'static str,
    connection: Option<(Connection, Instant)>,
    backoff: Backoff,
    /// Not before then: the last attempt failed, or the last connection died young.
    retry_at: Option<Instant>,
    status: StatusCell,
}

impl Link {
    pub(crate) fn new(config: Arc<BrokerConfig>, role: &'static str) -> Self {
        let backoff = Backoff::new(config.reconnect_initial, config.reconnect_max);
        Self {
            config,
            role,
            connection: None,
            backoff,
            retry_at: None,
            status: StatusCell::default(),
        }
    }

    pub(crate) fn config(&self) -> &Arc<BrokerConfig> {
        &self.config
    }

    pub(crate) fn status(&self) -> StatusCell {
        self.status.clone()
    }

    /// A live connection: the current one, or a new one after waiting out
    /// the backoff. One attempt: an unreachable broker is an error.
    pub(crate) async fn connection(&mut self) -> Result<&Connection, BrokerError> {
        if self
            .connection
            .as_ref()
            .is_some_and(|(connection, _)| !connection.status().connected())
        {
            tracing::warn!(role = self.role, "connection to RabbitMQ lost");
            self.disconnect();
        }
        if self.connection.is_none() {
            if let Some(at) = self.retry_at {
                sleep_until(at).await;
            }
            match self.connect().await {
                Ok(connection) => {
                    self.retry_at = None;
                    if self.status.connected(connection.status().clone()) > 1 {
                        tracing::info!(role = self.role, "reconnected to RabbitMQ");
                    }
                    self.connection = Some((connection, Instant::now()));
                }
                Err(error) => {
                    let delay = self.backoff.next_delay();
                    self.retry_at = Some(Instant::now() + delay);
                    tracing::warn!(
                        role = self.role,
                        url = %self.config.redacted_url(),
                        error = %error,
                        retry_in = ?delay,
                        "connecting to RabbitMQ failed"
                    );
                    return Err(error);
                }
            }
        }
        self.connection
            .as_ref()
            .map(|(connection, _)| connection)
            .ok_or_else(|| unreachable_state("connection"))
    }

    /// A new channel on a live connection (one attempt).
    pub(crate) async fn channel(&mut self) -> Result<Channel, BrokerError> {
        let connection = self.connection().await?;
        match connection.create_channel().await {
            Ok(channel) => Ok(channel),
            Err(error) => {
                self.disconnect();
                Err(BrokerError::lapin("opening a channel", error))
            }
        }
    }

    /// Drops the connection (its channels close, their unacked deliveries
    /// return to the queue). A connection that died young delays the next
    /// attempt, so a broker that accepts and then drops connections is not
    /// hammered.
    pub(crate) fn disconnect(&mut self) {
        let Some((connection, since)) = self.connection.take() else {
            return;
        };
        drop(connection);
        self.status.set(None);
        if since.elapsed() >= stable_after(&self.config) {
            self.backoff.reset();
            self.retry_at = None;
        } else {
            self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        }
    }

    /// Closes the connection cleanly (waits for RabbitMQ's close-ok, so
    /// acks sent before are processed).
    pub(crate) async fn close(&mut self) {
        if let Some((connection, _)) = self.connection.take() {
            self.status.set(None);
            if let Err(error) = connection.close(200, "closing".into()).await {
                tracing::debug!(role = self.role, error = %error, "closing the connection failed");
            }
        }
    }

    async fn connect(&self) -> Result<Connection, BrokerError> {
        let name = format!("{}.{}", self.config.connection_name, self.role);
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let limit = self.config.connect_timeout;
        let connection = timeout(limit, Connection::connect(&self.config.url, properties))
            .await
            .map_err(|_| BrokerError::Timeout {
                during: "connecting",
                timeout: limit,
            })?
            .map_err(|error| BrokerError::lapin("connecting", error))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| BrokerError::lapin("opening a channel", error))?;
        timeout(limit, topology::declare(&channel, &self.config))
            .await
            .map_err(|_| BrokerError::Timeout {
                during: "declaring the topology",
                timeout: limit,
            })??;
        if let Err(error) = channel.close(200, "declared".into()).await {
            tracing::debug!(error = %error, "closing the declaring channel failed");
        }
        Ok(connection)
    }
}

fn unreachable_state(what: &'static str) -> BrokerError {
    BrokerError::ConnectionLost {
        during: what,
        source: "no connection after connecting".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing listens on port 1: every attempt fails at once.
    fn unreachable() -> Arc<BrokerConfig> {
        Arc::new(BrokerConfig {
            url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
            reconnect_initial: Duration::from_millis(400),
            reconnect_max: Duration::from_millis(800),
            connect_timeout: Duration::from_secs(3600),
            ..BrokerConfig::default()
        })
    }

    // Real time: lapin connects off the runtime's clock, so paused time
    // would fire the connect timeout. Lower bounds are exact (a sleep never
    // ends early); upper bounds leave room for a busy machine.
    #[tokio::test]
    async fn failed_attempts_wait_out_a_growing_backoff() {
        let mut link = Link::new(unreachable(), "test");
        let mut waited = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let error = link.connection().await.expect_err("nothing listens");
            assert!(error.is_retryable(), "{error}");
            waited.push(started.elapsed());
        }
        // The first attempt is immediate; then 400, 800, 800, 800 ms
        // nominal, each at least half of it (jitter).
        assert!(waited[0] < Duration::from_millis(150), "{waited:?}");
        for (wait, nominal) in waited[1..].iter().zip([400, 800, 800, 800]) {
            let nominal = Duration::from_millis(nominal);
            assert!(
                *wait >= nominal / 2 && *wait <= nominal + Duration::from_secs(1),
                "{waited:?}"
            );
        }
        assert!(!link.status().is_connected());
    }
}
