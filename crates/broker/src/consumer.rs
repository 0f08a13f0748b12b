//! [`Consumer`] and [`Delivery`]: run messages off the run queue, with
//! bounded prefetch and explicit acknowledgements.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel};

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::link::{Link, StatusCell};
use crate::message::{RunMessage, delivery_count};

/// Receives run messages, at most [`BrokerConfig::prefetch`] unacknowledged
/// at once, on a connection of its own.
///
/// Nothing is acknowledged automatically: each [`Delivery`] stays RabbitMQ's
/// responsibility until [`Delivery::ack`]. If the connection drops, every
/// delivery not yet acked returns to the queue and is delivered again
/// (`redelivered`, with a higher [`Delivery::delivery_count`]); the
/// consumer reconnects by itself, with backoff, and goes on. Delivery is
/// therefore at least once: handle a run message idempotently.
pub struct Consumer {
    link: Link,
    session: Option<Session>,
    status: StatusCell,
}

struct Session {
    channel: Channel,
    deliveries: lapin::Consumer,
}

impl Consumer {
    pub(crate) async fn open(config: Arc<BrokerConfig>) -> Result<Self, BrokerError> {
        let mut link = Link::new(config, "consumer");
        let status = link.status();
        let session = open_session(&mut link).await?;
        Ok(Self {
            link,
            session: Some(session),
            status,
        })
    }

    /// The next delivery. Waits as long as it takes, through lost
    /// connections (reconnecting with backoff): the only errors are
    /// permanent ones ([`BrokerError::TopologyMismatch`],
    /// [`BrokerError::Refused`]), after which the consumer should be dropped.
    ///
    /// Cancel-safe: drop the future (e.g. in `tokio::select!` with a
    /// shutdown signal) and no delivery is lost; one not yet returned is
    /// returned to the queue when the consumer is closed or dropped.
    ///
    /// A message that is not a [`RunMessage`] is rejected (dead-lettered)
    /// and logged, never returned.
    pub async fn next(&mut self) -> Result<Delivery, BrokerError> {
        loop {
            if self.session.is_none() {
                let session = self.reopen().await?;
                self.session = Some(session);
            }
            let Some(session) = self.session.as_mut() else {
                continue;
            };
            match session.deliveries.next().await {
                Some(Ok(delivery)) if !delivery.acker.usable() => {
                    // Buffered before the channel died: it cannot be acked,
                    // and RabbitMQ has already put it back in the queue.
                    tracing::debug!("discarding deliveries of a closed channel; reconnecting");
                    self.session = None;
                    self.link.disconnect();
                }
                Some(Ok(delivery)) => {
                    if let Some(delivery) = Delivery::from_lapin(delivery).await {
                        return Ok(delivery);
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "consuming from RabbitMQ failed; reconnecting");
                    self.session = None;
                    self.link.disconnect();
                }
                None => {
                    tracing::warn!("RabbitMQ cancelled the consumer; reconnecting");
                    self.session = None;
                    self.link.disconnect();
                }
            }
        }
    }

    /// The deliveries as a stream; it ends after a permanent error.
    pub fn into_stream(self) -> impl Stream<Item = Result<Delivery, BrokerError>> + Send {
        futures::stream::unfold(Some(self), |consumer| async move {
            let mut consumer = consumer?;
            match consumer.next().await {
                Ok(delivery) => Some((Ok(delivery), Some(consumer))),
                Err(error) => Some((Err(error), None)),
            }
        })
    }

    /// Whether the consumer's connection is up (no I/O).
    pub fn is_connected(&self) -> bool {
        self.status.is_connected()
    }

    /// How many times the connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.status.reconnects()
    }

    /// Stops consuming and closes the connection. Deliveries not acked by
    /// then return to the queue (counted as failed deliveries): ack what
    /// was finished first.
    pub async fn close(mut self) {
        if let Some(session) = self.session.take() {
            let tag = session.deliveries.tag();
            if let Err(error) = session
                .channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await
            {
                tracing::debug!(error = %error, "cancelling the consumer failed");
            }
        }
        self.link.close().await;
    }

    async fn reopen(&mut self) -> Result<Session, BrokerError> {
        loop {
            match open_session(&mut self.link).await {
                Ok(session) => return Ok(session),
                Err(error) if error.is_retryable() => {
                    tracing::warn!(error = %error, "resuming consumption failed; retrying");
                }
                Err(error) => return Err(error),
            }
        }
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.link.config().queue)
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// A channel with the prefetch bound, consuming with manual acks. Any
/// failure drops the connection, so the retry redeclares the topology.
async fn open_session(link: &mut Link) -> Result<Session, BrokerError> {
    let config = link.config().clone();
    let channel = link.channel().await?;
    let consumed = async {
        channel
            .basic_qos(config.prefetch, BasicQosOptions { global: false })
            .await?;
        channel
            .basic_consume(
                config.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }
    .await;
    match consumed {
        Ok(deliveries) => Ok(Session {
            channel,
            deliveries,
        }),
        Err(error) => {
            link.disconnect();
            Err(BrokerError::lapin("starting to consume", error))
        }
    }
}

/// One run message, RabbitMQ's responsibility until acked.
///
/// Settle it exactly once: [`ack`](Self::ack) once the run's checkpoint is
/// committed, [`nack`](Self::nack) to hand it back, [`reject`](Self::reject)
/// to dead-letter it. Dropping it unsettled leaves it unacked until the
/// consumer's connection closes, and holds one unit of prefetch meanwhile.
#[derive(Debug)]
pub struct Delivery {
    message: RunMessage,
    redelivered: bool,
    delivery_count: u32,
    acker: Acker,
}

impl Delivery {
    /// Decodes a delivery; rejects (dead-letters) one that is not a run message.
    async fn from_lapin(delivery: lapin::message::Delivery) -> Option<Self> {
        let count = delivery_count(&delivery.properties);
        match RunMessage::from_json(&delivery.data) {
            Some(message) => Some(Self {
                message,
                redelivered: delivery.redelivered,
                delivery_count: count,
                acker: delivery.acker,
            }),
            None => {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string());
                tracing::error!(
                    message_id = ?message_id,
                    bytes = delivery.data.len(),
                    "not a run message; dead-lettering it"
                );
                let rejected = delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await;
                if let Err(error) = rejected {
                    tracing::warn!(error = %error, "rejecting a malformed message failed");
                }
                None
            }
        }
    }

    pub fn message(&self) -> &RunMessage {
        &self.message
    }

    pub fn run_id(&self) -> &str {
        &self.message.run_id
    }

    /// Whether RabbitMQ delivered this message before (to this or another
    /// consumer) without an ack: the run may be partly done already.
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// How many earlier deliveries of this message failed (nacked with
    /// requeue, or held by a consumer that went away): 0 the first time.
    /// Past [`BrokerConfig::delivery_limit`] RabbitMQ dead-letters it.
    pub fn delivery_count(&self) -> u32 {
        self.delivery_count
    }

    /// Done: RabbitMQ forgets the message. Call only after the run's
    /// checkpoint is committed. An error means the ack may not have
    /// arrived (the channel closed): the message will be delivered again.
    pub async fn ack(self) -> Result<(), BrokerError> {
        settled(
            "acking",
            self.acker.ack(BasicAckOptions { multiple: false }).await,
        )
    }

    /// Not done. With `requeue`, the message goes back to the queue (a
    /// failed delivery: it counts towards the delivery limit); without, it
    /// is dead-lettered like [`reject`](Self::reject).
    pub async fn nack(self, requeue: bool) -> Result<(), BrokerError> {
        settled(
            "nacking",
            self.acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue,
                })
                .await,
        )
    }

    /// Never processable (e.g. its run is unknown): dead-letter it now,
    /// without waiting for the delivery limit.
    pub async fn reject(self) -> Result<(), BrokerError> {
        settled(
            "rejecting",
            self.acker
                .reject(BasicRejectOptions { requeue: false })
                .await,
        )
    }
}

fn settled(during: &'static str, result: lapin::Result<bool>) -> Result<(), BrokerError> {
    match result {
        Ok(true) => Ok(()),
        // lapin answers false when the delivery's channel is gone.
        Ok(false) => Err(BrokerError::ConnectionLost {
            during,
            source: "the delivery's channel is closed; RabbitMQ will deliver it again".into(),
        }),
        Err(error) => Err(BrokerError::lapin(during, error)),
    }
}
