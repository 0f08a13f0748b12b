//! A RabbitMQ topology of its own per test, and the tools tests share.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use moneyflow_broker::{Broker, BrokerConfig, Consumer, Delivery, RunMessage};
use tokio::time::{Instant, sleep, timeout};

/// Where the tests find RabbitMQ (`MONEYFLOW_TEST_AMQP_URL`, else the local guest account).
pub fn amqp_url() -> String {
    std::env::var("MONEYFLOW_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A config whose queue, exchange and connection names are unique to one test.
pub fn unique_config() -> BrokerConfig {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("moneyflow-test.{}", &id[..12]);
    BrokerConfig {
        url: amqp_url(),
        queue: format!("{prefix}.runs"),
        dead_letter_exchange: format!("{prefix}.dlx"),
        dead_letter_queue: format!("{prefix}.dead"),
        connection_name: prefix,
        reconnect_initial: Duration::from_millis(50),
        reconnect_max: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(5),
        confirm_timeout: Duration::from_secs(10),
        ..BrokerConfig::default()
    }
}

/// A connected broker whose topology is deleted at the end of the test
/// ([`TestBroker::cleanup`], or on drop if the test failed first).
pub struct TestBroker {
    pub broker: Broker,
    cleaned: bool,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(adjust: impl FnOnce(&mut BrokerConfig)) -> Self {
        let mut config = unique_config();
        adjust(&mut config);
        let broker = Broker::connect(config).await.unwrap_or_else(|error| {
            panic!(
                "RabbitMQ is not reachable at {} ({error}); start it with `rabbitmq-server -detached`",
                amqp_url()
            )
        });
        Self {
            broker,
            cleaned: false,
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        self.broker.config()
    }

    /// Deletes the queues and the exchange. Close consumers first: a live
    /// consumer that reconnects declares them again.
    pub async fn cleanup(mut self) {
        self.broker
            .delete_topology()
            .await
            .expect("deleting the test topology");
        self.broker.close().await;
        self.cleaned = true;
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // The test failed before cleaning up: delete its topology on a
        // runtime of our own (Drop cannot await).
        let config = self.broker.config().clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async {
                if let Ok(broker) = Broker::connect(config).await {
                    let _ = broker.delete_topology().await;
                    broker.close().await;
                }
            });
        })
        .join();
    }
}

/// `count` run messages with ids `{prefix}-{i}`.
pub fn run_messages(prefix: &str, count: usize) -> Vec<RunMessage> {
    (0..count)
        .map(|i| RunMessage::new(format!("{prefix}-{i}"), "acme"))
        .collect()
}

pub fn ids(messages: &[RunMessage]) -> HashSet<String> {
    messages.iter().map(|m| m.run_id.clone()).collect()
}

/// The next delivery, or `None` if none comes within `wait`.
pub async fn next_within(consumer: &mut Consumer, wait: Duration) -> Option<Delivery> {
    match timeout(wait, consumer.next()).await {
        Ok(Ok(delivery)) => Some(delivery),
        Ok(Err(error)) => panic!("the consumer failed: {error}"),
        Err(_) => None,
    }
}

/// Polls `check` until it returns `Some`, or panics after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Closes, from the server side, every connection whose client-provided
/// name contains `name`; returns how many. `Err` when `rabbitmqctl` cannot
/// be run (not installed, not allowed).
pub fn close_connections(name: &str) -> Result<usize, String> {
    let listed = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "--quiet",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .map_err(|error| format!("cannot run rabbitmqctl: {error}"))?;
    if !listed.status.success() {
        return Err(format!(
            "rabbitmqctl list_connections failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        ));
    }
    let mut closed = 0;
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        if !line.contains(name) {
            continue;
        }
        let Some(pid) = line.split_whitespace().next() else {
            continue;
        };
        let status = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "moneyflow test: forced close"])
            .output()
            .map_err(|error| format!("cannot run rabbitmqctl: {error}"))?;
        if status.status.success() {
            closed += 1;
        }
    }
    Ok(closed)
}

/// Runs `rabbitmqctl` with `args`, panicking on failure.
pub fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("running rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
