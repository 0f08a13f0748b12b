use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use moneyflow_broker::{Broker, BrokerConfig, BrokerError};

use crate::helpers::{TestBroker, amqp_url, run_messages, unique_config};

#[tokio::test]
async fn connecting_twice_declares_the_same_topology_without_error() {
    let test = TestBroker::start().await;
    let again = Broker::connect(test.config().clone()).await.unwrap();
    again.ping().await.unwrap();
    again.close().await;
    test.cleanup().await;
}

#[tokio::test]
async fn a_queue_with_other_arguments_is_a_permanent_topology_mismatch() {
    let config = unique_config();
    // A classic queue already holds the run queue's name.
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_declare(
            config.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    let error = Broker::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(&error, BrokerError::TopologyMismatch { name, .. } if *name == config.queue),
        "{error}"
    );
    assert!(!error.is_retryable());

    channel
        .queue_delete(config.queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let other = connection.create_channel().await.unwrap();
    for queue in [&config.dead_letter_queue] {
        other
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    other
        .exchange_delete(
            config.dead_letter_exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_broker_is_a_retryable_error() {
    let config = BrokerConfig {
        url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
        ..unique_config()
    };
    let error = Broker::connect(config).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn wrong_credentials_are_refused_permanently() {
    let config = BrokerConfig {
        url: "amqp://guest:wrong@127.0.0.1:5672/%2f".to_owned(),
        ..unique_config()
    };
    let error = Broker::connect(config).await.unwrap_err();
    assert!(matches!(error, BrokerError::Refused(_)), "{error:?}");
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains("wrong"), "{error}");
}

#[tokio::test]
async fn publishing_after_the_queue_vanished_is_unroutable_then_repaired() {
    let test = TestBroker::start().await;
    let publisher = test.broker.publisher().await.unwrap();
    publisher
        .publish_batch(&run_messages("before", 1))
        .await
        .unwrap();
    test.broker.delete_topology().await.unwrap();

    let error = publisher
        .publish_batch(&run_messages("lost", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, BrokerError::Unroutable { .. }),
        "a confirm for a message no queue took must not count: {error}"
    );
    assert!(error.is_retryable());
    // The next batch reconnects, which declares the topology again.
    publisher
        .publish_batch(&run_messages("after", 1))
        .await
        .unwrap();
    assert_eq!(test.broker.stats().await.unwrap().ready, 1);
    publisher.close().await;
    test.cleanup().await;
}

/// Guards the dead-letter strategy: RabbitMQ silently falls back to
/// at-most-once (a log line only) unless the overflow is `reject-publish`.
#[tokio::test]
async fn the_run_queue_dead_letters_at_least_once() {
    let test = TestBroker::start().await;
    let expression = format!(
        "{{ok, Q}} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"{}\">>)), \
         {{Name, _}} = amqqueue:get_pid(Q), \
         ra:local_query({{Name, node()}}, fun(State) -> element(2, State) end).",
        test.config().queue
    );
    let output = std::process::Command::new("rabbitmqctl")
        .args(["eval", &expression])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let state = String::from_utf8_lossy(&output.stdout);
            assert!(state.contains("at_least_once"), "{state}");
            assert!(state.contains("reject_publish"), "{state}");
        }
        Ok(output) => eprintln!(
            "SKIPPED: cannot inspect the queue's state with rabbitmqctl eval: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => eprintln!("SKIPPED: cannot run rabbitmqctl ({error})"),
    }
    test.cleanup().await;
}
