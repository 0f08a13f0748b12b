use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moneyflow_broker::{Consumer, RunMessage};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::helpers::{TestBroker, close_connections, eventually, next_within, rabbitmqctl};

/// Consumes and acks until told to stop; returns the consumer and what it saw.
fn spawn_acking(
    mut consumer: Consumer,
    seen: Arc<Mutex<HashSet<String>>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Consumer> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return consumer,
                delivery = consumer.next() => {
                    let delivery = delivery.expect("only permanent errors end a consumer");
                    let run_id = delivery.run_id().to_owned();
                    // An ack on a dropped channel fails: the message comes back.
                    if delivery.ack().await.is_ok() {
                        seen.lock().unwrap().insert(run_id);
                    }
                }
            }
        }
    })
}

/// Publishes `batch` until RabbitMQ confirms it, as the outbox relay does.
async fn publish_until_confirmed(
    publisher: &moneyflow_broker::Publisher,
    batch: &[RunMessage],
    failures: &mut u32,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match publisher.publish_batch(batch).await {
            Ok(()) => return,
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                *failures += 1;
                assert!(Instant::now() < deadline, "never confirmed: {error}");
            }
        }
    }
}

#[tokio::test]
async fn publishing_and_consuming_survive_a_server_side_close() {
    if let Err(reason) = close_connections("moneyflow-test.nothing-matches-this") {
        eprintln!("SKIPPED: cannot run rabbitmqctl here ({reason})");
        return;
    }
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let (stop, stopped) = watch::channel(false);
    let consuming = spawn_acking(test.broker.consumer().await.unwrap(), seen.clone(), stopped);

    // Close this test's connections (publisher, consumer, admin) from the
    // server side while batches keep going out.
    let name = test.config().connection_name.clone();
    let mut closing = Some(tokio::task::spawn_blocking(move || {
        close_connections(&name)
    }));
    let mut confirmed = HashSet::new();
    let mut failures = 0;
    let mut batch_number = 0;
    let mut closed = None;
    while closed.is_none() || batch_number < 5 + closed.map_or(0, |(at, _)| at) {
        let batch: Vec<_> = (0..50)
            .map(|i| RunMessage::new(format!("r{batch_number}-{i}"), "acme"))
            .collect();
        publish_until_confirmed(&publisher, &batch, &mut failures).await;
        confirmed.extend(batch.into_iter().map(|message| message.run_id));
        batch_number += 1;
        if let Some(handle) = closing.take_if(|handle| handle.is_finished()) {
            let count = handle.await.unwrap().expect("rabbitmqctl close_connection");
            closed = Some((batch_number, count));
        }
        assert!(batch_number < 10_000, "rabbitmqctl never finished");
    }
    let (_, count) = closed.unwrap();
    assert!(
        count >= 2,
        "closed {count} connections, expected the publisher's and the consumer's"
    );
    assert!(publisher.reconnects() >= 1, "the publisher reconnected");

    // Every confirmed message is consumed (duplicates allowed, losses not).
    eventually(
        Duration::from_secs(60),
        "every confirmed message consumed",
        || {
            let missing = confirmed.difference(&seen.lock().unwrap()).count();
            async move { (missing == 0).then_some(()) }
        },
    )
    .await;
    stop.send(true).unwrap();
    let consumer = consuming.await.unwrap();
    assert!(
        consumer.reconnects() >= 1,
        "the consumer reconnected by itself"
    );
    assert!(consumer.is_connected());
    test.broker
        .ping()
        .await
        .expect("the admin connection reconnects too");
    eprintln!(
        "published {} messages in {batch_number} batches; {failures} publish attempts failed and were retried",
        confirmed.len()
    );
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}

/// `rabbitmqctl stop_app` / `start_app` stops RabbitMQ for every user of the
/// machine, so this one runs only when asked: `cargo test -p
/// moneyflow-broker -- --ignored --test-threads 1`.
#[tokio::test]
#[ignore = "restarts the RabbitMQ application for everyone on the machine"]
async fn the_consumer_and_publisher_resume_after_the_broker_restarts() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    let mut consumer = test.broker.consumer().await.unwrap();
    let mut failures = 0;
    let before: Vec<_> = (0..10)
        .map(|i| RunMessage::new(format!("before-{i}"), "acme"))
        .collect();
    publish_until_confirmed(&publisher, &before, &mut failures).await;
    // One delivery held unacked across the restart: it must come back.
    let held = next_within(&mut consumer, Duration::from_secs(10))
        .await
        .unwrap();
    let held_id = held.run_id().to_owned();

    tokio::task::spawn_blocking(|| rabbitmqctl(&["stop_app"]))
        .await
        .unwrap();
    assert!(held.ack().await.is_err() || !test.broker.is_connected());
    tokio::task::spawn_blocking(|| rabbitmqctl(&["start_app"]))
        .await
        .unwrap();

    let after: Vec<_> = (0..10)
        .map(|i| RunMessage::new(format!("after-{i}"), "acme"))
        .collect();
    publish_until_confirmed(&publisher, &after, &mut failures).await;
    let mut seen = HashSet::new();
    let mut redelivered_held = false;
    while seen.len() < before.len() + after.len() {
        let delivery = next_within(&mut consumer, Duration::from_secs(60))
            .await
            .expect("the consumer resumes after the restart");
        let (run_id, redelivered) = (delivery.run_id().to_owned(), delivery.redelivered());
        // An ack can still meet a channel that died after the delivery was
        // handed out: it fails, and the message comes back.
        if delivery.ack().await.is_ok() {
            redelivered_held |= run_id == held_id && redelivered;
            seen.insert(run_id);
        }
    }
    assert!(
        redelivered_held,
        "the delivery unacked at the stop came back"
    );
    assert!(consumer.reconnects() >= 1 && publisher.reconnects() >= 1);
    eventually(
        Duration::from_secs(30),
        "the admin connection back",
        || async { test.broker.ping().await.ok() },
    )
    .await;
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}
