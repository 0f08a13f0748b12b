//! The queues and the exchange, declared idempotently on every (re)connect.
//!
//! ```text
//! publishers ──(default exchange, routing key = queue)──▶ moneyflow.runs   quorum queue
//!                                                              │ x-delivery-limit = 5
//!                      delivery limit exceeded, or rejected    │ x-dead-letter-strategy = at-least-once
//!                                                              ▼
//!                                 moneyflow.runs.dlx (fanout) ──▶ moneyflow.runs.dead   classic, durable
//! ```
//!
//! **Dead-letter strategy.** Quorum queues dead-letter `at-most-once` by
//! default: the message is removed from the run queue as it is handed to the
//! DLX, and is gone if the dead-letter queue cannot take it (unavailable,
//! unbound, full). MoneyFlow wants every run accounted for, so the run queue
//! declares `x-dead-letter-strategy = at-least-once` (RabbitMQ ≥ 3.10): the
//! run queue keeps the message until the dead-letter queue has confirmed it,
//! retrying meanwhile. RabbitMQ honours it only together with
//! `x-overflow = reject-publish` (with `drop-head` it falls back to
//! at-most-once), so that is declared too; with no `x-max-length` set, the
//! overflow behaviour never applies to publishers. The cost, a little more
//! work inside the queue when messages die, is only paid by failing runs.
//!
//! **Dead-letter queue type.** The dead-letter queue is a durable *classic*
//! queue, declared with `x-queue-type = classic` explicitly so a vhost
//! default cannot change it: listing dead letters takes them and returns
//! them (AMQP 0-9-1 has no peek), and on a quorum queue every return would
//! count towards a delivery limit (RabbitMQ 4 sets one by default: 20) after
//! which a listed message would be dropped. A classic queue counts nothing
//! and puts returned messages back in their place. Being unreplicated costs
//! no message: with at-least-once dead-lettering, a run queue whose
//! dead-letter queue is down keeps the message until it is back.

use lapin::options::{
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::config::BrokerConfig;
use crate::error::BrokerError;

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// The run queue's arguments.
pub(crate) fn run_queue_arguments(config: &BrokerConfig) -> FieldTable {
    let limit = i64::from(config.delivery_limit);
    let mut arguments = FieldTable::default();
    arguments
        .insert("x-queue-type".into(), text("quorum"))
        .insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit))
        .insert(
            "x-dead-letter-exchange".into(),
            text(&config.dead_letter_exchange),
        )
        .insert("x-dead-letter-strategy".into(), text("at-least-once"))
        .insert("x-overflow".into(), text("reject-publish"));
    arguments
}

/// The dead-letter queue's arguments.
pub(crate) fn dead_letter_queue_arguments() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text("classic"));
    arguments
}

/// Declares the dead-letter exchange and queue, their binding, then the run
/// queue. Declaring what exists with the same arguments changes nothing;
/// with other arguments it fails with [`BrokerError::TopologyMismatch`] (and
/// closes `channel`).
pub(crate) async fn declare(channel: &Channel, config: &BrokerConfig) -> Result<(), BrokerError> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            config.dead_letter_exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|error| BrokerError::declare(&config.dead_letter_exchange, error))?;
    channel
        .queue_declare(
            config.dead_letter_queue.as_str().into(),
            durable,
            dead_letter_queue_arguments(),
        )
        .await
        .map_err(|error| BrokerError::declare(&config.dead_letter_queue, error))?;
    channel
        .queue_bind(
            config.dead_letter_queue.as_str().into(),
            config.dead_letter_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|error| BrokerError::declare(&config.dead_letter_queue, error))?;
    channel
        .queue_declare(
            config.queue.as_str().into(),
            durable,
            run_queue_arguments(config),
        )
        .await
        .map_err(|error| BrokerError::declare(&config.queue, error))?;
    Ok(())
}

/// Ready messages and consumers of a queue that must exist.
pub(crate) async fn inspect(channel: &Channel, queue: &str) -> Result<(u32, u32), BrokerError> {
    let queue = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|error| BrokerError::lapin("inspecting a queue", error))?;
    Ok((queue.message_count(), queue.consumer_count()))
}

/// Deletes both queues and the exchange, with their messages.
pub(crate) async fn delete(channel: &Channel, config: &BrokerConfig) -> Result<(), BrokerError> {
    for queue in [&config.queue, &config.dead_letter_queue] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(|error| BrokerError::lapin("deleting the topology", error))?;
    }
    channel
        .exchange_delete(
            config.dead_letter_exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .map_err(|error| BrokerError::lapin("deleting the topology", error))?;
    Ok(())
}
