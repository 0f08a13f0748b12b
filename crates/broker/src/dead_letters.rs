//! [`DeadLetters`]: what is in the dead-letter queue, and moving it back.

use std::sync::Arc;

use futures::future::join_all;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::{Channel, Confirmation};
use tokio::sync::Mutex;
use tracing::instrument;

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::link::Link;
use crate::message::{RunMessage, death, for_replay};

/// How many dead letters a replay moves per round of confirms.
const REPLAY_BATCH: usize = 128;

/// A message RabbitMQ dead-lettered, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The run message; `None` if the body is not one (it was rejected as
    /// malformed): see `body`.
    pub message: Option<RunMessage>,
    /// The AMQP `message_id` (the run id for run messages).
    pub message_id: Option<String>,
    /// Why RabbitMQ dead-lettered it first: `delivery_limit` (it failed
    /// too often), `rejected` (a consumer rejected it), `expired`, `maxlen`.
    pub reason: Option<String>,
    /// The queue it was dead-lettered from.
    pub source_queue: Option<String>,
    /// How many times it was dead-lettered in all (more than 1 after a
    /// replay that failed again).
    pub deaths: u64,
    /// The raw body.
    pub body: Vec<u8>,
}

impl DeadLetter {
    fn from_get(got: &BasicGetMessage) -> Self {
        let delivery = &got.delivery;
        let death = death(&delivery.properties);
        Self {
            message: RunMessage::from_json(&delivery.data),
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string()),
            reason: death.reason,
            source_queue: death.queue,
            deaths: death.count,
            body: delivery.data.clone(),
        }
    }

    /// The run this dead letter is about: the body's run id, else the message id.
    pub fn run_id(&self) -> Option<&str> {
        self.message
            .as_ref()
            .map(|message| message.run_id.as_str())
            .or(self.message_id.as_deref())
    }
}

/// The dead-letter queue, for operators: list it, move messages back to
/// the run queue. Shares the broker's admin connection.
///
/// AMQP 0-9-1 cannot peek, so both take messages without acking them and
/// give back those they leave (`basic.nack` with requeue, or the channel
/// closing on any error): a listing never loses a message, and a replayed
/// message is acked from the dead-letter queue only after RabbitMQ has
/// confirmed it on the run queue. A crash between the two leaves it in
/// both; consumers tolerate the duplicate.
///
/// While one of these runs, the messages it holds are invisible to another
/// listing (which then shows fewer).
#[derive(Clone)]
pub struct DeadLetters {
    link: Arc<Mutex<Link>>,
    config: Arc<BrokerConfig>,
}

impl DeadLetters {
    pub(crate) fn new(link: Arc<Mutex<Link>>, config: Arc<BrokerConfig>) -> Self {
        Self { link, config }
    }

    /// Up to `limit` dead letters, oldest first, left in place.
    #[instrument(skip(self))]
    pub async fn list(&self, limit: usize) -> Result<Vec<DeadLetter>, BrokerError> {
        let channel = self.channel(false).await?;
        let mut letters = Vec::new();
        let mut last_tag = None;
        while letters.len() < limit {
            let Some(got) = self.get(&channel).await? else {
                break;
            };
            letters.push(DeadLetter::from_get(&got));
            last_tag = Some(got.delivery.delivery_tag);
        }
        if let Some(tag) = last_tag {
            channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .map_err(|error| BrokerError::lapin("returning dead letters", error))?;
        }
        close(channel).await;
        Ok(letters)
    }

    /// Moves the dead letters of run `run_id` back to the run queue;
    /// returns how many were moved (0: none was there).
    #[instrument(skip(self))]
    pub async fn replay(&self, run_id: &str) -> Result<usize, BrokerError> {
        self.replay_where(|letter| letter.run_id() == Some(run_id))
            .await
    }

    /// Moves every dead letter present when it starts back to the run
    /// queue; returns how many were moved.
    #[instrument(skip(self))]
    pub async fn replay_all(&self) -> Result<usize, BrokerError> {
        self.replay_where(|_| true).await
    }

    /// How many dead letters wait (not counting any being listed or replayed).
    pub async fn count(&self) -> Result<u32, BrokerError> {
        let channel = self.channel(false).await?;
        let (ready, _) = crate::topology::inspect(&channel, &self.config.dead_letter_queue).await?;
        close(channel).await;
        Ok(ready)
    }

    async fn replay_where(
        &self,
        wanted: impl Fn(&DeadLetter) -> bool,
    ) -> Result<usize, BrokerError> {
        let channel = self.channel(true).await?;
        let mut moved = 0;
        let mut kept_tag = None;
        // Bounded by what was there at the start, so a message that dies
        // again meanwhile is not replayed twice in one call.
        let mut remaining: Option<u64> = None;
        loop {
            let mut batch = Vec::new();
            while batch.len() < REPLAY_BATCH && remaining != Some(0) {
                let Some(got) = self.get(&channel).await? else {
                    remaining = Some(0);
                    break;
                };
                let left = remaining.unwrap_or(u64::from(got.message_count) + 1);
                remaining = Some(left - 1);
                if wanted(&DeadLetter::from_get(&got)) {
                    batch.push(got);
                } else {
                    kept_tag = Some(got.delivery.delivery_tag);
                }
            }
            if batch.is_empty() && remaining == Some(0) {
                break;
            }
            moved += self.republish(&channel, batch).await?;
        }
        if let Some(tag) = kept_tag {
            // Every kept tag up to this one is unacked; the moved ones are
            // acked already and are not covered twice.
            channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await
                .map_err(|error| BrokerError::lapin("returning dead letters", error))?;
        }
        // Closing waits for RabbitMQ's close-ok: every ack above is processed.
        close(channel).await;
        if moved > 0 {
            tracing::info!(moved, "dead letters replayed to the run queue");
        }
        Ok(moved)
    }

    /// Publishes each message to the run queue, waits for every confirm,
    /// then acks them from the dead-letter queue. On any error nothing of
    /// the batch is acked; the channel closing returns them.
    async fn republish(
        &self,
        channel: &Channel,
        batch: Vec<BasicGetMessage>,
    ) -> Result<usize, BrokerError> {
        let mut confirms = Vec::with_capacity(batch.len());
        for got in &batch {
            let delivery = &got.delivery;
            let confirm = channel
                .basic_publish(
                    "".into(),
                    self.config.queue.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        immediate: false,
                    },
                    &delivery.data,
                    for_replay(&delivery.properties),
                )
                .await
                .map_err(|error| BrokerError::lapin("replaying", error))?;
            confirms.push(confirm);
        }
        let limit = self.config.confirm_timeout;
        let answers = tokio::time::timeout(limit, join_all(confirms))
            .await
            .map_err(|_| BrokerError::ConfirmTimeout(limit))?;
        for (got, answer) in batch.iter().zip(answers) {
            let run_id = DeadLetter::from_get(got)
                .run_id()
                .unwrap_or_default()
                .to_owned();
            match answer.map_err(|error| BrokerError::lapin("replaying", error))? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(BrokerError::Unroutable {
                        run_id,
                        queue: self.config.queue.clone(),
                    });
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    return Err(BrokerError::Nacked { run_id });
                }
            }
        }
        for got in &batch {
            channel
                .basic_ack(
                    got.delivery.delivery_tag,
                    BasicAckOptions { multiple: false },
                )
                .await
                .map_err(|error| BrokerError::lapin("acking a replayed dead letter", error))?;
        }
        Ok(batch.len())
    }

    async fn channel(&self, confirms: bool) -> Result<Channel, BrokerError> {
        let mut link = self.link.lock().await;
        let channel = link.channel().await?;
        if confirms
            && let Err(error) = channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
        {
            link.disconnect();
            return Err(BrokerError::lapin("enabling publisher confirms", error));
        }
        Ok(channel)
    }

    async fn get(&self, channel: &Channel) -> Result<Option<BasicGetMessage>, BrokerError> {
        channel
            .basic_get(
                self.config.dead_letter_queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .map_err(|error| BrokerError::lapin("reading dead letters", error))
    }
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("queue", &self.config.dead_letter_queue)
            .finish()
    }
}

async fn close(channel: Channel) {
    if let Err(error) = channel.close(200, "done".into()).await {
        tracing::debug!(error = %error, "closing a channel failed");
    }
}
