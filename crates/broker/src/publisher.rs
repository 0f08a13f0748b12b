//! [`Publisher`]: run messages onto the run queue, confirmed by RabbitMQ.

use std::sync::Arc;

use futures::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::Mutex;
use tracing::instrument;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::link::{Link, StatusCell};
use crate::message::RunMessage;

/// Publishes run messages with publisher confirms, on a connection of its
/// own (RabbitMQ throttles publishing connections; consumers must not share
/// them).
///
/// Batches are serialized: a `Publisher` can be shared (`Arc`) by tasks,
/// but one relay task publishing batches back to back is the intended use.
pub struct Publisher {
    state: Mutex<State>,
    status: StatusCell,
    config: Arc<BrokerConfig>,
}

struct State {
    link: Link,
    /// In confirm mode; `None` after a failure, reopened by the next batch.
    channel: Option<Channel>,
}

impl Publisher {
    pub(crate) async fn open(config: Arc<BrokerConfig>) -> Result<Self, BrokerError> {
        let mut link = Link::new(config.clone(), "publisher");
        let status = link.status();
        let channel = confirming_channel(&mut link).await?;
        Ok(Self {
            state: Mutex::new(State {
                link,
                channel: Some(channel),
            }),
            status,
            config,
        })
    }

    /// Publishes every message and returns `Ok` only once RabbitMQ has
    /// confirmed each one: written to the run queue (to disk, on a quorum
    /// of its replicas). Only then may the caller mark its outbox rows sent.
    ///
    /// Any error means "not all confirmed": keep every row of the batch
    /// unsent and publish it again (see [`BrokerError::is_retryable`]); some
    /// messages may then be enqueued twice, which consumers tolerate (a run
    /// message is a wake-up; the run's state decides what happens).
    ///
    /// After a lost connection the next call reconnects first, waiting out
    /// a backoff if reconnecting keeps failing, so a caller can simply loop.
    #[instrument(skip_all, fields(batch = messages.len()))]
    pub async fn publish_batch(&self, messages: &[RunMessage]) -> Result<(), BrokerError> {
        if messages.is_empty() {
            return Ok(());
        }
        let prepared = messages
            .iter()
            .map(|message| Ok((message, message.properties()?, message.to_json())))
            .collect::<Result<Vec<_>, BrokerError>>()?;
        let mut state = self.state.lock().await;
        let channel = match state.channel.clone() {
            Some(channel) if channel.status().connected() => channel,
            _ => {
                state.channel = None;
                let channel = confirming_channel(&mut state.link).await?;
                state.channel = Some(channel.clone());
                channel
            }
        };
        let result = self.publish_on(&channel, &prepared).await;
        if let Err(error) = &result {
            tracing::warn!(error = %error, "batch not confirmed; the caller keeps it unsent");
            match error {
                // The channel's confirm sequence is unusable, or it is closed.
                BrokerError::ConnectionLost { .. }
                | BrokerError::ConfirmTimeout(_)
                | BrokerError::Timeout { .. } => state.channel = None,
                // The run queue is missing: reconnecting declares it again.
                BrokerError::Unroutable { .. } => {
                    state.channel = None;
                    state.link.disconnect();
                }
                _ => {}
            }
        }
        result
    }

    async fn publish_on(
        &self,
        channel: &Channel,
        prepared: &[(&RunMessage, BasicProperties, Vec<u8>)],
    ) -> Result<(), BrokerError> {
        let options = BasicPublishOptions {
            // Unroutable (no run queue) comes back as a return, not a silent drop.
            mandatory: true,
            immediate: false,
        };
        let mut confirms = Vec::with_capacity(prepared.len());
        for (message, properties, body) in prepared {
            let confirm = channel
                .basic_publish(
                    "".into(),
                    self.config.queue.as_str().into(),
                    options,
                    body,
                    properties.clone(),
                )
                .await
                .map_err(|error| BrokerError::lapin("publishing", error))?;
            confirms.push((message, confirm));
        }
        let (messages, confirms): (Vec<&RunMessage>, Vec<lapin::PublisherConfirm>) =
            confirms.into_iter().unzip();
        let answers = tokio::time::timeout(self.config.confirm_timeout, join_all(confirms))
            .await
            .map_err(|_| BrokerError::ConfirmTimeout(self.config.confirm_timeout))?;
        for (message, answer) in messages.into_iter().zip(answers) {
            match answer.map_err(|error| BrokerError::lapin("waiting for confirms", error))? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(BrokerError::Unroutable {
                        run_id: message.run_id.clone(),
                        queue: self.config.queue.clone(),
                    });
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    return Err(BrokerError::Nacked {
                        run_id: message.run_id.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the publisher's connection is up (no I/O).
    pub fn is_connected(&self) -> bool {
        self.status.is_connected()
    }

    /// Whether RabbitMQ is blocking publishes (a memory or disk alarm): a
    /// router's readiness should fail meanwhile, batches would time out.
    pub fn is_blocked(&self) -> bool {
        self.status.is_blocked()
    }

    /// How many times the connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.status.reconnects()
    }

    /// Closes the connection after the batch in progress, if any.
    pub async fn close(&self) {
        let mut state = self.state.lock().await;
        state.channel = None;
        state.link.close().await;
    }
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("queue", &self.config.queue)
            .field("connected", &self.is_connected())
            .finish()
    }
}

async fn confirming_channel(link: &mut Link) -> Result<Channel, BrokerError> {
    let channel = link.channel().await?;
    if let Err(error) = channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
    {
        link.disconnect();
        return Err(BrokerError::lapin("enabling publisher confirms", error));
    }
    Ok(channel)
}
