//! Notification endpoints: registration, and deliveries to a local receiver
//! (the server started allowing private addresses, with a short retry
//! schedule so retries take milliseconds, not minutes).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use moneyflow_server::webhook::{SignatureError, parse_headers, verify};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_problem, book_payment, error_paths, json_body, spawn_app_with_config,
};

/// Runs the body on both backends with a server that may call 127.0.0.1
/// and retries deliveries after 20 ms.
macro_rules! notification_test {
    (async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                run(spawn(Backend::Sqlite).await).await
            }

            #[tokio::test]
            async fn postgres() {
                run(spawn(Backend::Postgres).await).await
            }
        }
    };
}

async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with_config(backend, |config| {
        config.allow_private_addresses = true;
        config.notification_retry_delays.0 = vec![Duration::from_millis(20)];
        config.notification_retry_window = Duration::from_secs(60);
    })
    .await
}

/// What the receiver saw of one request, and whether it verified.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: Bytes,
    /// With the endpoint's secret, by the server's own verification code.
    verified: bool,
    /// With another secret.
    verified_with_wrong_secret: Result<(), SignatureError>,
}

/// A local endpoint that answers the scripted statuses in turn (then 200)
/// and verifies every request's signature.
#[derive(Clone)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    then: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(script: &[u16], then: u16) -> (Self, String) {
        let receiver = Self {
            secret: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            then,
            received: Arc::default(),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { state.answer(&headers, body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn answer(&self, headers: &HeaderMap, body: Bytes) -> axum::http::StatusCode {
        let secret = self.secret.lock().unwrap().clone();
        let signed = parse_headers(headers).expect("Standard Webhooks headers");
        let received = Received {
            id: signed.id.clone(),
            verified: verify(&signed, &body, [secret.as_str()]).is_ok(),
            verified_with_wrong_secret: verify(
                &signed,
                &body,
                ["whsec_c29tZSBvdGhlciBrZXkgZW50aXJlbHk="],
            ),
            body,
        };
        self.received.lock().unwrap().push(received);
        let code = self.script.lock().unwrap().pop_front().unwrap_or(self.then);
        axum::http::StatusCode::from_u16(code).unwrap()
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn register(app: &TestApp, company_id: &str, body: &Value, token: &str) -> reqwest::Response {
    app.post_json_as(
        &format!("/companies/{company_id}/notification-endpoints"),
        body,
        Some(token),
    )
    .await
}

/// Registers `url`; returns `(endpoint id, secret)`.
async fn registered(app: &TestApp, company_id: &str, url: &str, token: &str) -> (String, String) {
    let response = register(
        app,
        company_id,
        &json!({"url": url, "description": "test"}),
        token,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    let secret = body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{body}");
    assert_eq!(
        body["event_types"],
        json!(["run.succeeded", "run.failed", "run.aborted"])
    );
    assert_eq!(body["enabled"], true);
    (body["id"].as_str().unwrap().to_owned(), secret)
}

async fn deliveries(app: &TestApp, company_id: &str, endpoint_id: &str, token: &str) -> Vec<Value> {
    let response = app
        .get_as(
            &format!("/companies/{company_id}/notification-endpoints/{endpoint_id}/deliveries"),
            Some(token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json_body(response).await["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls the endpoint's deliveries until the first one is no longer
/// pending; panics after 30 s.
async fn settled(app: &TestApp, company_id: &str, endpoint_id: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = deliveries(app, company_id, endpoint_id, token).await;
        if let Some(first) = items.first().filter(|d| d["status"] != "pending") {
            return first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "not delivered in 30 s: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

notification_test!(
    async fn a_notification_is_retried_until_delivered_with_a_valid_signature(app) {
        let key = app.company_with_demo_rules("acme").await;
        let (receiver, url) = Receiver::start(&[503, 503, 503], 200).await;
        let (endpoint_id, secret) = registered(&app, "acme", &url, &key).await;
        *receiver.secret.lock().unwrap() = secret.clone();

        let listed = json_body(
            app.get_as("/companies/acme/notification-endpoints", Some(&key))
                .await,
        )
        .await;
        assert_eq!(listed["items"][0]["id"], endpoint_id.as_str());
        assert!(!listed.to_string().contains(&secret), "listings carry no secret");

        let run = app.pay_and_wait(&book_payment("acme"), &key).await;
        let delivery = settled(&app, "acme", &endpoint_id, &key).await;
        assert_eq!(delivery["status"], "delivered", "{delivery:#}");
        assert_eq!(delivery["attempts"], 4);
        assert_eq!(delivery["run_id"], run["run_id"]);
        assert_eq!(delivery["event_type"], format!("run.{}", run["status"].as_str().unwrap()));

        let id = delivery["id"].as_str().unwrap();
        let text = app
            .get_as(
                &format!("/companies/acme/notification-endpoints/{endpoint_id}/deliveries/{id}"),
                Some(&key),
            )
            .await
            .text()
            .await
            .unwrap();
        // Each key once: the attempts listed, not also their count.
        assert_eq!(text.matches("\"attempts\":").count(), 1, "{text}");
        let detail: Value = serde_json::from_str(&text).unwrap();
        let codes: Vec<&Value> = detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["status_code"])
            .collect();
        assert_eq!(codes, [&json!(503), &json!(503), &json!(503), &json!(200)], "{detail:#}");
        assert!(detail["attempts"][0]["error"].as_str().unwrap().contains("503"));
        assert!(detail["attempts"][0]["duration_ms"].is_u64());
        assert!(detail["attempts"][0]["at"].is_string());
        let payload = &detail["payload"];
        assert_eq!(payload["type"], delivery["event_type"]);
        assert!(payload["timestamp"].is_string());
        assert_eq!(payload["data"]["run_id"], run["run_id"]);
        assert_eq!(payload["data"]["company_id"], "acme");
        assert_eq!(payload["data"]["event_id"], run["event_id"]);
        assert_eq!(payload["data"]["status"], run["status"]);
        assert_eq!(payload["data"]["rule_version"], run["rule_version"]);
        assert!(payload["data"]["finished_at"].is_string());

        let received = receiver.received();
        assert_eq!(received.len(), 4);
        for request in &received {
            assert_eq!(request.id, id, "webhook-id is stable across retries");
            assert!(request.verified, "the signature verifies with the endpoint's secret");
            assert_eq!(
                request.verified_with_wrong_secret,
                Err(SignatureError::NoMatch),
                "and not with another"
            );
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            assert_eq!(&body, payload);
        }
    }
);

notification_test!(
    async fn an_endpoint_answering_410_is_disabled_after_one_delivery(app) {
        let key = app.company_with_demo_rules("acme").await;
        let (receiver, url) = Receiver::start(&[], 410).await;
        let (endpoint_id, secret) = registered(&app, "acme", &url, &key).await;
        *receiver.secret.lock().unwrap() = secret;

        app.pay_and_wait(&book_payment("acme"), &key).await;
        let delivery = settled(&app, "acme", &endpoint_id, &key).await;
        assert_eq!(delivery["status"], "failed", "{delivery:#}");
        assert_eq!(delivery["attempts"], 1);
        let listed = json_body(
            app.get_as("/companies/acme/notification-endpoints", Some(&key))
                .await,
        )
        .await;
        let endpoint = &listed["items"][0];
        assert_eq!(endpoint["enabled"], false, "{listed:#}");
        assert!(endpoint["disabled_reason"].as_str().unwrap().contains("410"));

        // The next finished run queues nothing for it.
        let mut second = book_payment("acme");
        second["event_id"] = json!("second");
        app.pay_and_wait(&second, &key).await;
        assert_eq!(deliveries(&app, "acme", &endpoint_id, &key).await.len(), 1);
        assert_eq!(receiver.received().len(), 1);
    }
);

backend_test!(
    async fn notification_endpoints_are_validated_and_scoped(app) {
        let (_, key) = app.company_with_key("acme").await;
        // The operator does not allow private addresses here.
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://[::1]/x",
            "http://10.1.2.3/",
            // IPv6 forms of loopback, NAT64 and 6to4 of private addresses,
            // and special-purpose IPv4 ranges.
            "http://[::127.0.0.1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:c0a8:101::]/",
            "http://192.0.0.8/",
            "http://198.18.0.1/",
            "http://240.0.0.1/",
        ] {
            let problem = assert_problem(
                register(&app, "acme", &json!({"url": url}), &key).await,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
            assert_eq!(error_paths(&problem), ["url"], "{url}: {problem:#}");
        }
        let problem = assert_problem(
            register(
                &app,
                "acme",
                &json!({"url": "ftp://example.com", "event_types": ["run.started"], "extra": 1}),
                &key,
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let mut paths = error_paths(&problem);
        paths.sort();
        assert_eq!(paths, ["event_types[0]", "extra", "url"]);

        let response = register(
            &app,
            "acme",
            &json!({"url": "https://93.184.215.14/hook", "event_types": ["run.failed"]}),
            &key,
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created = json_body(response).await;
        let id = created["id"].as_str().unwrap();
        assert_eq!(created["event_types"], json!(["run.failed"]));

        // Another company's key sees nothing of it.
        let (_, other) = app.company_with_key("globex").await;
        for path in [
            "/companies/acme/notification-endpoints".to_owned(),
            format!("/companies/acme/notification-endpoints/{id}/deliveries"),
        ] {
            assert_problem(app.get_as(&path, Some(&other)).await, StatusCode::NOT_FOUND).await;
        }
        let delete = |token: String| {
            app.request(
                reqwest::Method::DELETE,
                &format!("/companies/acme/notification-endpoints/{id}"),
                Some(&token),
            )
            .send()
        };
        assert_eq!(delete(other.clone()).await.unwrap().status(), StatusCode::NOT_FOUND);
        assert_eq!(delete(key.clone()).await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(delete(app.admin_token.clone()).await.unwrap().status(), StatusCode::NOT_FOUND);
        let listed = json_body(
            app.get_as("/companies/acme/notification-endpoints", Some(&key))
                .await,
        )
        .await;
        assert_eq!(listed["items"], json!([]));
    }
);
