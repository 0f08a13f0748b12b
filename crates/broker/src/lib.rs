//! MoneyFlow's run queue on RabbitMQ, for distributed mode (DESIGN §6):
//! routers' outbox relays publish "run X is due" messages, orchestrators
//! consume them. The store stays the source of truth (runs, their state and
//! their outbox rows live there); a message is only a wake-up, delivered at
//! least once.
//!
//! ```text
//! router: event + run + outbox row ─(one transaction)─▶ store
//! relay:  outbox rows ─▶ Publisher::publish_batch ─(confirms)─▶ mark sent
//!                               │
//!                               ▼
//!               moneyflow.runs (quorum, delivery limit, DLX)
//!                               │  prefetch-bounded, manual acks
//!                               ▼
//! orchestrator: Consumer::next ─▶ step, commit checkpoint ─▶ Delivery::ack
//!                               │  failed delivery_limit + 1 times, or rejected
//!                               ▼
//!               moneyflow.runs.dlx ─▶ moneyflow.runs.dead ─▶ DeadLetters::replay
//! ```
//!
//! Guarantees: [`Publisher::publish_batch`] returns `Ok` only when RabbitMQ
//! has confirmed every message of the batch; nothing is acked unless the
//! caller calls [`Delivery::ack`]; a lost connection is survived by
//! reconnecting with backoff, and deliveries unacked at that moment come
//! back (`redelivered`). Errors say what to do: see [`BrokerError`].
//!
//! # Layout
//!
//! - `broker.rs`: [`Broker`]: connect, health ([`Broker::ping`],
//!   [`Broker::stats`]), and the factories for the rest.
//! - `config.rs`: [`BrokerConfig`]: URL (redacted in `Debug`), names,
//!   delivery limit, prefetch, backoff and timeouts.
//! - `topology.rs`: the queues and the exchange with their arguments, and
//!   why (the dead-letter strategy); declared on every (re)connect.
//! - `publisher.rs`: [`Publisher`]: batches with publisher confirms.
//! - `consumer.rs`: [`Consumer`] and [`Delivery`]: prefetch, manual
//!   ack/nack/reject, reconnection.
//! - `dead_letters.rs`: [`DeadLetters`]: list and replay, confirm before ack.
//! - `message.rs`: [`RunMessage`] (the JSON body) and the AMQP properties
//!   and headers (`x-delivery-count`, `x-death`).
//! - `link.rs`: one connection of one role, re-established with backoff;
//!   `backoff.rs`: the backoff.
//! - `error.rs`: [`BrokerError`]: lapin's errors classified, retryable or not.
//!
//! Everything here needs a tokio runtime (lapin runs its I/O on it).

mod backoff;
mod broker;
mod config;
mod consumer;
mod dead_letters;
mod error;
mod link;
mod message;
mod publisher;
mod topology;

pub use broker::{Broker, QueueStats};
pub use config::BrokerConfig;
pub use consumer::{Consumer, Delivery};
pub use dead_letters::{DeadLetter, DeadLetters};
pub use error::BrokerError;
pub use message::RunMessage;
pub use publisher::Publisher;
