//! [`Broker`]: the entry point: connects, declares the topology, hands out
//! publishers, consumers and the dead-letter queue, answers health checks.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::time::timeout;
use tracing::instrument;

use crate::config::BrokerConfig;
use crate::consumer::Consumer;
use crate::dead_letters::DeadLetters;
use crate::error::BrokerError;
use crate::link::{Link, StatusCell};
use crate::publisher::Publisher;
use crate::topology;

/// What the queues hold now (for metrics and readiness).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// Run messages ready for delivery (not counting unacked ones).
    pub ready: u32,
    /// Consumers on the run queue.
    pub consumers: u32,
    /// Messages in the dead-letter queue.
    pub dead_letters: u32,
}

/// A handle on RabbitMQ for one process. Its own connection (the "admin"
/// one) serves health checks, statistics and the dead-letter queue;
/// each [`Publisher`] and [`Consumer`] opens its own.
#[derive(Clone)]
pub struct Broker {
    config: Arc<BrokerConfig>,
    admin: Arc<Mutex<Link>>,
    status: StatusCell,
}

impl Broker {
    /// Validates the configuration, connects and declares the topology
    /// (idempotent: it is declared again on every reconnect, by every
    /// connection). One attempt: an error here is the caller's to retry
    /// ([`BrokerError::is_retryable`]) or to report.
    #[instrument(skip_all, fields(url = %config.redacted_url(), queue = %config.queue))]
    pub async fn connect(config: BrokerConfig) -> Result<Self, BrokerError> {
        config.validate()?;
        let config = Arc::new(config);
        let mut admin = Link::new(config.clone(), "admin");
        admin.connection().await?;
        let status = admin.status();
        Ok(Self {
            config,
            admin: Arc::new(Mutex::new(admin)),
            status,
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// A publisher on a new connection (connected now; reconnects later).
    pub async fn publisher(&self) -> Result<Publisher, BrokerError> {
        Publisher::open(self.config.clone()).await
    }

    /// A consumer of the run queue on a new connection, consuming from now
    /// on (reconnects later by itself).
    pub async fn consumer(&self) -> Result<Consumer, BrokerError> {
        Consumer::open(self.config.clone()).await
    }

    /// The dead-letter queue.
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.admin.clone(), self.config.clone())
    }

    /// Readiness: reconnects if needed, then checks that the run queue
    /// exists and that RabbitMQ answers, within
    /// [`BrokerConfig::connect_timeout`].
    pub async fn ping(&self) -> Result<(), BrokerError> {
        self.stats().await.map(|_| ())
    }

    /// Ready messages and consumers of the run queue, and dead letters.
    pub async fn stats(&self) -> Result<QueueStats, BrokerError> {
        let limit = self.config.connect_timeout;
        timeout(limit, async {
            let channel = self.admin.lock().await.channel().await?;
            let (ready, consumers) = topology::inspect(&channel, &self.config.queue).await?;
            let (dead_letters, _) =
                topology::inspect(&channel, &self.config.dead_letter_queue).await?;
            let _ = channel.close(200, "checked".into()).await;
            Ok(QueueStats {
                ready,
                consumers,
                dead_letters,
            })
        })
        .await
        .map_err(|_| BrokerError::Timeout {
            during: "checking the queues",
            timeout: limit,
        })?
    }

    /// Whether the admin connection is up, without I/O (liveness of the
    /// link; [`ping`](Self::ping) for readiness).
    pub fn is_connected(&self) -> bool {
        self.status.is_connected()
    }

    /// Deletes both queues and the exchange, **with their messages**. For
    /// tests and uninstalling; clients still connected declare them again
    /// when they reconnect.
    pub async fn delete_topology(&self) -> Result<(), BrokerError> {
        let channel = self.admin.lock().await.channel().await?;
        topology::delete(&channel, &self.config).await?;
        let _ = channel.close(200, "deleted".into()).await;
        Ok(())
    }

    /// Closes the admin connection (publishers and consumers close their own).
    pub async fn close(&self) {
        self.admin.lock().await.close().await;
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("config", &self.config)
            .field("connected", &self.is_connected())
            .finish()
    }
}
