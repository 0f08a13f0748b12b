//! Distributed mode's background tasks (DESIGN §6), between the store
//! (PostgreSQL, the source of truth) and RabbitMQ (wake-ups, at least once):
//!
//! - the **relay** (router role): publishes unsent outbox rows in batches
//!   with publisher confirms and marks them sent only then; woken by
//!   `POST /payment` after its commit, polling as a fallback;
//! - the **dispatcher** (router and orchestrator roles): moves due retries,
//!   and runs whose worker died, from `run_queue` onto the outbox, so
//!   retries and timers stay durable in PostgreSQL;
//! - the **consumer** (orchestrator role): for each message, one step of
//!   its run under a lease, committed before the ack.

use std::sync::Arc;
use std::time::Duration;

use moneyflow_broker::{Broker, Delivery, RunMessage};
use moneyflow_engine::{Orchestrator, StepOne};
use moneyflow_store::{PgStore, RelayError, Store};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Outbox rows one relay round publishes.
const RELAY_BATCH: usize = 500;
/// The relay's fallback poll (rows written by other processes' dispatchers).
const RELAY_POLL: Duration = Duration::from_millis(200);
/// How often the dispatcher looks for due retries and expired leases.
const DISPATCH_POLL: Duration = Duration::from_millis(250);
/// Sent outbox rows are kept this long (for inspection), then pruned.
const OUTBOX_RETENTION: time::Duration = time::Duration::hours(1);

/// The running background tasks; [`Self::shutdown`] stops them.
pub struct DistributedHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl DistributedHandle {
    pub fn new() -> Self {
        Self {
            stop: watch::Sender::new(false),
            tasks: Vec::new(),
        }
    }

    fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// The relay: returns its waker (for `POST /payment`).
    pub fn spawn_relay(&mut self, store: PgStore, broker: Broker) -> Arc<Notify> {
        let wake = Arc::new(Notify::new());
        let stop = self.stop_signal();
        self.tasks
            .push(tokio::spawn(relay(store, broker, wake.clone(), stop)));
        wake
    }

    pub fn spawn_dispatcher(&mut self, store: PgStore, relay: Option<Arc<Notify>>) {
        let stop = self.stop_signal();
        self.tasks
            .push(tokio::spawn(dispatcher(store, relay, stop)));
    }

    pub fn spawn_consumer(&mut self, orchestrator: Arc<Orchestrator<Store>>, broker: Broker) {
        let stop = self.stop_signal();
        self.tasks
            .push(tokio::spawn(consume(orchestrator, broker, stop)));
    }

    /// Stops the tasks: the consumer hands back what it holds unfinished.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl Default for DistributedHandle {
    fn default() -> Self {
        Self::new()
    }
}

async fn stopped_or(stop: &mut watch::Receiver<bool>, pause: impl std::future::Future) -> bool {
    tokio::select! {
        _ = stop.changed() => true,
        _ = pause => *stop.borrow(),
    }
}

async fn relay(store: PgStore, broker: Broker, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let publisher = loop {
        match broker.publisher().await {
            Ok(publisher) => break publisher,
            Err(error) => {
                tracing::warn!(error = %error, "relay: cannot open a publisher; retrying");
                if stopped_or(&mut stop, tokio::time::sleep(Duration::from_secs(1))).await {
                    return;
                }
            }
        }
    };
    let mut last_prune = OffsetDateTime::now_utc();
    loop {
        if *stop.borrow() {
            break;
        }
        let round = store
            .relay_outbox(RELAY_BATCH, |rows| {
                let messages: Vec<RunMessage> = rows
                    .into_iter()
                    .map(|row| RunMessage::new(row.run_id, row.company_id))
                    .collect();
                let publisher = &publisher;
                async move { publisher.publish_batch(&messages).await }
            })
            .await;
        match round {
            // A full batch: more are probably waiting.
            Ok(sent) if sent == RELAY_BATCH => continue,
            Ok(sent) => {
                if sent > 0 {
                    tracing::debug!(sent, "relay: published outbox rows");
                }
                if stopped_or(&mut stop, tokio::time::timeout(RELAY_POLL, wake.notified())).await {
                    break;
                }
            }
            Err(error) => {
                let what = match &error {
                    RelayError::Store(_) => "the store",
                    RelayError::Publish(_) => "the broker",
                };
                tracing::warn!(error = %crate::error::error_chain(&error), "relay: {what} failed; the rows stay unsent");
                if stopped_or(&mut stop, tokio::time::sleep(Duration::from_millis(500))).await {
                    break;
                }
            }
        }
        let now = OffsetDateTime::now_utc();
        if now - last_prune > time::Duration::minutes(1) {
            last_prune = now;
            if let Err(error) = store.prune_outbox(now - OUTBOX_RETENTION).await {
                tracing::warn!(error = %error, "relay: pruning sent outbox rows failed");
            }
        }
    }
    publisher.close().await;
}

async fn dispatcher(store: PgStore, relay: Option<Arc<Notify>>, mut stop: watch::Receiver<bool>) {
    loop {
        match store
            .dispatch_due(OffsetDateTime::now_utc(), RELAY_BATCH)
            .await
        {
            Ok(0) => {}
            Ok(moved) => {
                tracing::debug!(moved, "dispatcher: due runs moved to the outbox");
                if let Some(relay) = &relay {
                    relay.notify_one();
                }
            }
            Err(error) => tracing::warn!(error = %error, "dispatcher: the store failed"),
        }
        if stopped_or(&mut stop, tokio::time::sleep(DISPATCH_POLL)).await {
            break;
        }
    }
}

async fn consume(
    orchestrator: Arc<Orchestrator<Store>>,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
) {
    let mut consumer = loop {
        match broker.consumer().await {
            Ok(consumer) => break consumer,
            Err(error) => {
                tracing::warn!(error = %error, "consumer: cannot connect; retrying");
                if stopped_or(&mut stop, tokio::time::sleep(Duration::from_secs(1))).await {
                    return;
                }
            }
        }
    };
    // Prefetch bounds what is in flight: each delivery is one task.
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let next = tokio::select! {
            next = consumer.next() => next,
            _ = stop.changed() => break,
        };
        match next {
            Ok(delivery) => {
                running.spawn(handle(orchestrator.clone(), delivery, stop.clone()));
            }
            Err(error) => {
                tracing::warn!(error = %error, "consumer: receiving failed; retrying");
                if stopped_or(&mut stop, tokio::time::sleep(Duration::from_millis(200))).await {
                    break;
                }
            }
        }
    }
    // Let steps in flight commit and ack; what is left comes back to another
    // consumer when the connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while running.join_next().await.is_some() {}
    })
    .await;
    running.abort_all();
    consumer.close().await;
}

/// One delivery: the step first, the settlement after its commit.
async fn handle(
    orchestrator: Arc<Orchestrator<Store>>,
    delivery: Delivery,
    stop: watch::Receiver<bool>,
) {
    let run_id = delivery.run_id().to_owned();
    let mut backoff = Duration::from_millis(200);
    loop {
        let this = orchestrator.clone();
        let id = run_id.clone();
        // Its own task, so a task's panic ends the step, not the consumer.
        let outcome = tokio::spawn(async move { this.step_one(&id).await }).await;
        let settled = match outcome {
            Ok(StepOne::Committed(_) | StepOne::Duplicate) => delivery.ack().await,
            Ok(StepOne::Unknown) => {
                tracing::error!(run_id, "no such run; dead-lettering its message");
                delivery.reject().await
            }
            Ok(StepOne::Retry(error)) => {
                // The store is down: hold the message (it counts against the
                // delivery limit only when handed back) and try again, until
                // the process stops.
                tracing::warn!(run_id, error = %error, "step failed on the store; retrying");
                if *stop.borrow() {
                    delivery.nack(true).await
                } else {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            Err(join) => {
                // A panic (or an abort at shutdown): a failed delivery, which
                // RabbitMQ counts; past the delivery limit it dead-letters it.
                tracing::error!(run_id, error = %join, "step panicked; handing the message back");
                orchestrator.release(&run_id).await;
                delivery.nack(true).await
            }
        };
        if let Err(error) = settled {
            tracing::warn!(run_id, error = %error, "settling a message failed; it will be delivered again");
        }
        return;
    }
}
