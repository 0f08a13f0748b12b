use std::time::Duration;

use crate::helpers::{TestBroker, next_within, run_messages};

#[tokio::test]
async fn a_consumer_holds_at_most_prefetch_unacked_deliveries() {
    let test = TestBroker::with(|config| config.prefetch = 5).await;
    let publisher = test.broker.publisher().await.unwrap();
    publisher
        .publish_batch(&run_messages("pf", 12))
        .await
        .unwrap();

    let mut consumer = test.broker.consumer().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(
            next_within(&mut consumer, Duration::from_secs(10))
                .await
                .expect("up to prefetch deliveries arrive"),
        );
    }
    assert!(
        next_within(&mut consumer, Duration::from_millis(500))
            .await
            .is_none(),
        "a sixth delivery arrived with five unacked and prefetch 5"
    );
    // Acking one makes room for exactly one more.
    held.remove(0).ack().await.unwrap();
    held.push(
        next_within(&mut consumer, Duration::from_secs(10))
            .await
            .expect("an ack frees one unit of prefetch"),
    );
    assert!(
        next_within(&mut consumer, Duration::from_millis(500))
            .await
            .is_none()
    );
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    consumer.close().await;
    publisher.close().await;
    test.cleanup().await;
}
