use std::collections::HashSet;
use std::time::Duration;

use crate::helpers::{TestBroker, eventually, ids, next_within, run_messages};

#[tokio::test]
async fn confirmed_messages_arrive_once_and_an_ack_removes_them() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    let messages = run_messages("run", 50);
    for batch in messages.chunks(10) {
        publisher.publish_batch(batch).await.unwrap();
    }
    publisher.publish_batch(&[]).await.unwrap();

    let mut consumer = test.broker.consumer().await.unwrap();
    let mut seen = HashSet::new();
    for _ in 0..messages.len() {
        let delivery = next_within(&mut consumer, Duration::from_secs(10))
            .await
            .expect("a delivery for every confirmed message");
        assert!(!delivery.redelivered());
        assert_eq!(delivery.delivery_count(), 0);
        assert_eq!(delivery.message().company_id, "acme");
        assert!(
            seen.insert(delivery.run_id().to_owned()),
            "{} arrived twice",
            delivery.run_id()
        );
        delivery.ack().await.unwrap();
    }
    assert_eq!(seen, ids(&messages));
    assert!(
        next_within(&mut consumer, Duration::from_millis(300))
            .await
            .is_none(),
        "nothing arrives twice"
    );
    // Acked messages are gone: nothing ready, nothing unacked to come back.
    consumer.close().await;
    let stats = eventually(Duration::from_secs(5), "an empty queue", || async {
        let stats = test.broker.stats().await.unwrap();
        (stats.ready == 0 && stats.consumers == 0).then_some(stats)
    })
    .await;
    assert_eq!(stats.dead_letters, 0);
    publisher.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn an_unacked_delivery_comes_back_redelivered_with_its_count() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    publisher
        .publish_batch(&run_messages("held", 2))
        .await
        .unwrap();

    let mut first = test.broker.consumer().await.unwrap();
    let acked = next_within(&mut first, Duration::from_secs(10))
        .await
        .unwrap();
    let held = next_within(&mut first, Duration::from_secs(10))
        .await
        .unwrap();
    let held_id = held.run_id().to_owned();
    acked.ack().await.unwrap();
    // The consumer goes away without acking `held`.
    drop(held);
    drop(first);

    let mut second = test.broker.consumer().await.unwrap();
    let again = next_within(&mut second, Duration::from_secs(10))
        .await
        .expect("the unacked message is delivered again");
    assert_eq!(again.run_id(), held_id);
    assert!(again.redelivered());
    assert_eq!(again.delivery_count(), 1);
    again.ack().await.unwrap();
    assert!(
        next_within(&mut second, Duration::from_millis(300))
            .await
            .is_none(),
        "the acked one does not come back"
    );
    second.close().await;
    publisher.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_nacked_message_is_delivered_again_with_a_higher_count() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    publisher
        .publish_batch(&run_messages("nack", 1))
        .await
        .unwrap();
    let mut consumer = test.broker.consumer().await.unwrap();
    for expected in 0..3 {
        let delivery = next_within(&mut consumer, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(delivery.delivery_count(), expected);
        assert_eq!(delivery.redelivered(), expected > 0);
        delivery.nack(true).await.unwrap();
    }
    next_within(&mut consumer, Duration::from_secs(10))
        .await
        .unwrap()
        .ack()
        .await
        .unwrap();
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn ping_and_stats_report_the_queues() {
    let test = TestBroker::start().await;
    assert!(test.broker.is_connected());
    test.broker.ping().await.unwrap();
    let publisher = test.broker.publisher().await.unwrap();
    assert!(publisher.is_connected());
    publisher
        .publish_batch(&run_messages("stat", 3))
        .await
        .unwrap();
    let stats = eventually(Duration::from_secs(5), "three ready messages", || async {
        let stats = test.broker.stats().await.unwrap();
        (stats.ready == 3).then_some(stats)
    })
    .await;
    assert_eq!((stats.consumers, stats.dead_letters), (0, 0));
    publisher.close().await;
    test.cleanup().await;
}
