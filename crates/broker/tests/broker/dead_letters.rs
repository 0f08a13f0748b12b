use std::collections::HashSet;
use std::time::Duration;

use lapin::options::BasicPublishOptions;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use moneyflow_broker::RunMessage;

use crate::helpers::{TestBroker, amqp_url, eventually, ids, next_within, run_messages};

#[tokio::test]
async fn a_message_failing_past_the_delivery_limit_is_dead_lettered_and_replayed() {
    let test = TestBroker::with(|config| config.delivery_limit = 2).await;
    let publisher = test.broker.publisher().await.unwrap();
    let poison = RunMessage::new("poison", "acme");
    publisher
        .publish_batch(std::slice::from_ref(&poison))
        .await
        .unwrap();
    let healthy = run_messages("healthy", 20);
    publisher.publish_batch(&healthy).await.unwrap();

    // A worker whose task panics on every attempt of `poison`.
    let mut consumer = test.broker.consumer().await.unwrap();
    let mut poison_counts = Vec::new();
    let mut acked = HashSet::new();
    while let Some(delivery) = next_within(&mut consumer, Duration::from_secs(2)).await {
        if delivery.run_id() == poison.run_id {
            poison_counts.push(delivery.delivery_count());
            delivery.nack(true).await.unwrap();
        } else {
            acked.insert(delivery.run_id().to_owned());
            delivery.ack().await.unwrap();
        }
    }
    assert_eq!(
        acked,
        ids(&healthy),
        "the poisoned message held nothing back"
    );
    assert_eq!(
        poison_counts,
        vec![0, 1, 2],
        "delivered delivery_limit + 1 times, then dead-lettered"
    );

    let dead_letters = test.broker.dead_letters();
    let listed = eventually(Duration::from_secs(10), "the dead letter", || async {
        let listed = dead_letters.list(10).await.unwrap();
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed.len(), 1);
    let letter = &listed[0];
    assert_eq!(letter.message.as_ref(), Some(&poison));
    assert_eq!(letter.message_id.as_deref(), Some("poison"));
    assert_eq!(letter.run_id(), Some("poison"));
    assert_eq!(letter.reason.as_deref(), Some("delivery_limit"));
    assert_eq!(
        letter.source_queue.as_deref(),
        Some(test.config().queue.as_str())
    );
    assert_eq!(letter.deaths, 1);
    // Listing takes nothing away.
    assert_eq!(dead_letters.list(10).await.unwrap(), listed);
    assert_eq!(dead_letters.count().await.unwrap(), 1);

    assert_eq!(dead_letters.replay("no-such-run").await.unwrap(), 0);
    assert_eq!(dead_letters.count().await.unwrap(), 1);
    assert_eq!(dead_letters.replay("poison").await.unwrap(), 1);
    assert_eq!(dead_letters.count().await.unwrap(), 0);

    let replayed = next_within(&mut consumer, Duration::from_secs(10))
        .await
        .expect("the replayed message is back on the run queue");
    assert_eq!(replayed.message(), &poison);
    assert_eq!(
        replayed.delivery_count(),
        0,
        "a replay starts a fresh count"
    );
    replayed.ack().await.unwrap();
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn replay_all_moves_every_dead_letter_back_and_only_once() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    let rejected = run_messages("rejected", 3);
    publisher.publish_batch(&rejected).await.unwrap();

    let mut consumer = test.broker.consumer().await.unwrap();
    for _ in 0..rejected.len() {
        let delivery = next_within(&mut consumer, Duration::from_secs(10))
            .await
            .unwrap();
        delivery.reject().await.unwrap();
    }
    let dead_letters = test.broker.dead_letters();
    let listed = eventually(Duration::from_secs(10), "three dead letters", || async {
        let listed = dead_letters.list(10).await.unwrap();
        (listed.len() == 3).then_some(listed)
    })
    .await;
    assert!(
        listed
            .iter()
            .all(|letter| letter.reason.as_deref() == Some("rejected"))
    );
    assert_eq!(
        dead_letters.list(2).await.unwrap().len(),
        2,
        "the limit holds"
    );

    assert_eq!(dead_letters.replay_all().await.unwrap(), 3);
    assert_eq!(dead_letters.replay_all().await.unwrap(), 0);
    let mut back = HashSet::new();
    for _ in 0..rejected.len() {
        let delivery = next_within(&mut consumer, Duration::from_secs(10))
            .await
            .unwrap();
        back.insert(delivery.run_id().to_owned());
        delivery.ack().await.unwrap();
    }
    assert_eq!(back, ids(&rejected));
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_message_that_is_not_a_run_message_is_dead_lettered_not_delivered() {
    let test = TestBroker::start().await;
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_publish(
            "".into(),
            test.config().queue.as_str().into(),
            BasicPublishOptions::default(),
            b"not json",
            BasicProperties::default().with_message_id("garbage".into()),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
    let publisher = test.broker.publisher().await.unwrap();
    publisher
        .publish_batch(&run_messages("good", 1))
        .await
        .unwrap();

    let mut consumer = test.broker.consumer().await.unwrap();
    let delivery = next_within(&mut consumer, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(delivery.run_id(), "good-0");
    delivery.ack().await.unwrap();

    let dead_letters = test.broker.dead_letters();
    let listed = eventually(Duration::from_secs(10), "the malformed message", || async {
        let listed = dead_letters.list(10).await.unwrap();
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(listed[0].message, None);
    assert_eq!(listed[0].run_id(), Some("garbage"));
    assert_eq!(listed[0].body, b"not json");
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}
