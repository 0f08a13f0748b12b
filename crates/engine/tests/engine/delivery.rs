//! The notification delivery worker against a real store and a local
//! receiver, driven step by step with a manual clock: a run finished by the
//! executor queues its delivery (the outbox), and each `deliver_due` is one
//! round of attempts.

use std::collections::VecDeque;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use moneyflow_core::ports::{DeliveryStatus, NewNotificationEndpoint, NotificationStore};
use moneyflow_engine::delivery::{DeliveryConfig, DeliveryWorker, RetrySchedule};
use sha2::Sha256;

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver that answers the scripted statuses in turn (then 200) and
/// keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Self, String) {
        let receiver = Self::default();
        receiver.script.lock().unwrap().extend(script);
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.requests.lock().unwrap().push((headers, body));
                    let code = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.requests.lock().unwrap().clone()
    }
}

/// Checks a Standard Webhooks signature independently of the engine's code.
fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|signature| signature == expected)
}

/// A company with an endpoint at `url`, and a run of it finished by the
/// executor at the manual clock's time; returns the run id.
async fn finished_run(store: &Store, clock: &Clock, url: &str) -> String {
    let counting = Arc::new(Counting::default());
    let registry = registry(&counting);
    let version = save_rules(
        store,
        &registry,
        json!([{"node_type": "task", "node_id": "note", "task_name": "payment.tasks.notify",
                "parameters": {"channel": "email"}}]),
    )
    .await;
    let event_types = vec!["run.succeeded".to_owned()];
    store
        .create_notification_endpoint(NewNotificationEndpoint {
            id: "nep_test",
            company_id: "acme",
            url,
            description: None,
            event_types: &event_types,
            secret: SECRET,
            now: clock.now(),
            max_per_company: 20,
        })
        .await
        .unwrap();
    let run_id = enqueue(
        store,
        version,
        json!({"type": "product", "total": 1}),
        clock.now(),
    )
    .await;
    let claimed = store
        .claim_runs("w", 10, Duration::from_secs(60), clock.now())
        .await
        .unwrap();
    assert_eq!(claimed, vec![run_id.clone()]);
    let work = store.load_runs(&claimed).await.unwrap().remove(0);
    let rules = compiled(store, &registry, version).await;
    let executor = Executor::new(store.clone(), registry.clone(), clock.clone());
    let status = executor
        .step(&work, &rules, &json!({"id": "acme"}), "w")
        .await
        .unwrap();
    assert_eq!(status, RunStatus::Succeeded);
    run_id
}

fn worker(store: &Store, clock: &Clock, window: Duration) -> DeliveryWorker<Store> {
    DeliveryWorker::new(
        store.clone(),
        DeliveryConfig {
            retry: RetrySchedule {
                delays: vec![Duration::from_secs(5), Duration::from_secs(300)],
                window,
            },
            allow_private_addresses: true,
            ..DeliveryConfig::default()
        },
        clock.clone(),
    )
}

engine_test!(
    a_delivery_is_retried_on_its_schedule_until_delivered,
    |store| {
        let clock = Clock::manual();
        let (receiver, url) = Receiver::start(&[503, 503, 503]).await;
        let run_id = finished_run(&store, &clock, &url).await;
        let worker = worker(&store, &clock, Duration::from_secs(3600));

        assert_eq!(worker.deliver_due().await.unwrap(), 1, "sent at once");
        assert_eq!(worker.deliver_due().await.unwrap(), 0, "not due again yet");
        clock.advance(Duration::from_secs(6));
        assert_eq!(worker.deliver_due().await.unwrap(), 1);
        for _ in 0..2 {
            clock.advance(Duration::from_secs(4));
            assert_eq!(worker.deliver_due().await.unwrap(), 0, "5 min (±10%) apart");
            clock.advance(Duration::from_secs(6 * 60));
            assert_eq!(worker.deliver_due().await.unwrap(), 1);
        }

        let deliveries = store.list_deliveries("acme", "nep_test", 10).await.unwrap();
        assert_eq!(deliveries.len(), 1);
        let (delivery, attempts) = store
            .get_delivery("acme", &deliveries[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
        assert_eq!(delivery.run_id, run_id);
        assert_eq!(
            attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(),
            [Some(503), Some(503), Some(503), Some(200)]
        );

        let requests = receiver.requests();
        assert_eq!(requests.len(), 4);
        let mut timestamps = Vec::new();
        for (headers, body) in &requests {
            assert_eq!(
                headers["webhook-id"],
                delivery.id.as_str(),
                "stable across retries"
            );
            assert!(
                verifies(SECRET, headers, body),
                "signed with the endpoint's secret"
            );
            assert!(!verifies("whsec_c29tZSBvdGhlciBrZXk=", headers, body));
            assert_eq!(&body[..], delivery.payload.as_bytes());
            timestamps.push(headers["webhook-timestamp"].to_str().unwrap().to_owned());
        }
        assert_eq!(
            timestamps[0],
            attempts[0].at.unix_timestamp().to_string(),
            "signed at send time, by the worker's clock"
        );
        let payload: Value = serde_json::from_slice(&requests[0].1).unwrap();
        assert_eq!(payload["type"], "run.succeeded");
        assert_eq!(payload["data"]["run_id"], run_id.as_str());
        assert_eq!(payload["data"]["status"], "succeeded");
    }
);

engine_test!(a_delivery_fails_once_its_retry_window_is_over, |store| {
    let clock = Clock::manual();
    let (receiver, url) = Receiver::start(&[503; 10]).await;
    finished_run(&store, &clock, &url).await;
    let worker = worker(&store, &clock, Duration::from_secs(600));

    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    clock.advance(Duration::from_secs(6));
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    // The next wait would end past the 10 min window: failed, not retried.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(worker.deliver_due().await.unwrap(), 0);
    let deliveries = store.list_deliveries("acme", "nep_test", 10).await.unwrap();
    assert_eq!(deliveries[0].status, DeliveryStatus::Failed);
    assert_eq!(deliveries[0].attempts, 3);
    assert_eq!(receiver.requests().len(), 3);
});

engine_test!(a_private_address_is_refused_at_delivery, |store| {
    let clock = Clock::manual();
    let (receiver, url) = Receiver::start(&[]).await;
    finished_run(&store, &clock, &url).await;
    // The operator does not allow private addresses: 127.0.0.1 is refused.
    let worker = DeliveryWorker::new(store.clone(), DeliveryConfig::default(), clock.clone());
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    let deliveries = store.list_deliveries("acme", "nep_test", 10).await.unwrap();
    assert_eq!(deliveries[0].status, DeliveryStatus::Failed);
    assert!(
        deliveries[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("private"),
        "{deliveries:?}"
    );
    assert!(receiver.requests().is_empty());
});
