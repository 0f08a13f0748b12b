//! Distributed mode in one process (role `all`) on the real PostgreSQL and
//! RabbitMQ: runs travel event → outbox → relay → queue → consumer, and
//! readiness and the dead-letter API see the broker. Each test has its own
//! queue names, deleted at the end.

use moneyflow_server::secret::SecretString;
use reqwest::StatusCode;

use crate::helpers::*;

const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn spawn_distributed() -> (TestApp, moneyflow_broker::BrokerConfig) {
    let queue = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
    let mut broker_config = None;
    let app = spawn_app_with_config(Backend::Postgres, |config| {
        config.broker = Some(SecretString::new(BROKER_URL));
        config.broker_queue = queue.clone();
        config.broker_delivery_limit = 2;
        broker_config = config.broker_config();
    })
    .await;
    (app, broker_config.expect("a broker is configured"))
}

#[tokio::test]
async fn payments_run_through_the_outbox_and_the_broker() {
    let (app, broker_config) = spawn_distributed().await;
    let ready = app.get_as("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready = json_body(ready).await;
    assert_eq!(ready["checks"]["broker"]["status"], "up", "{ready}");

    let key = app.company_with_demo_rules("acme").await;
    let mut run_ids = Vec::new();
    for i in 0..20 {
        let mut event = book_payment("acme");
        event["event_id"] = serde_json::json!(format!("evt-{i}"));
        let response = app.post_payment(&event, Some(&key)).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        run_ids.push(body["run_id"].as_str().expect("run_id").to_owned());
    }
    for run_id in &run_ids {
        let run = app.wait_for_run(run_id, &key).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    // Every outbox row was published and marked sent.
    let moneyflow_store::Store::Postgres(pg) = app.store.store() else {
        panic!("PostgreSQL")
    };
    assert_eq!(pg.outbox_pending().await.unwrap(), 0);

    let letters = app
        .get_as("/admin/dead-letters", Some(&app.admin_token))
        .await;
    assert_eq!(letters.status(), StatusCode::OK);
    assert_eq!(json_body(letters).await["count"], 0);
    let replay = app
        .post_json_as(
            "/admin/dead-letters/no-such-run/replay",
            &serde_json::json!({}),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::NOT_FOUND);

    let broker = moneyflow_broker::Broker::connect(broker_config)
        .await
        .expect("broker");
    broker.delete_topology().await.expect("cleanup");
}
