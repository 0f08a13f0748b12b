//! What one company may take of a shared server: its payment rate (token
//! bucket, 429 with `Retry-After` and `RateLimit` headers, set per company
//! by the admin), its open event streams and its notification endpoints.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    Backend, TestApp, assert_problem, book_payment, json_body, spawn_app, spawn_app_with_config,
};
use crate::sse::SseReader;

async fn put_limits(
    app: &TestApp,
    company_id: &str,
    body: &serde_json::Value,
    token: &str,
) -> reqwest::Response {
    app.request(
        reqwest::Method::PUT,
        &format!("/companies/{company_id}/limits"),
        Some(token),
    )
    .json(body)
    .send()
    .await
    .expect("request")
}

/// A payment event for `company_id` with its own `event_id`.
fn payment(company_id: &str, n: usize) -> serde_json::Value {
    let mut body = book_payment(company_id);
    body["event_id"] = json!(format!("evt-limit-{n}"));
    body
}

backend_test! {
    async fn a_company_over_its_payment_rate_gets_429_with_rate_limit_headers(app) {
    let key = app.company_with_demo_rules("acme").await;
    let admin = app.admin_token.clone();
    let response = put_limits(&app, "acme", &json!({"payments_per_second": 1, "payments_burst": 3}), &admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["effective"], json!({"payments_per_second": 1, "payments_burst": 3}));

    // A full bucket of 3 lets 3 through at once, each saying what is left.
    for n in 0..3 {
        let response = app.post_payment(&payment("acme", n), Some(&key)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "payment {n}");
        assert_eq!(response.headers()["ratelimit-policy"], "\"payments\";q=1;w=1");
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.starts_with("\"payments\";r="), "{state}");
    }
    // Then one a second: sent at once, some of the next three are refused.
    let mut refused = None;
    for n in 3..6 {
        let response = app.post_payment(&payment("acme", n), Some(&key)).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
    }
    let response = refused.expect("a payment past the rate is refused");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(response.headers()["ratelimit"].to_str().unwrap().contains("r=0"));
    let problem = assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(problem["type"], "urn:moneyflow:problem:too-many-requests");
    assert_eq!(problem["retryable"], true);
    assert!(problem["detail"].as_str().unwrap().contains("1 payment events per second"), "{problem}");

    // The admin is not limited, and another company has its own bucket.
    let response = app.post_payment(&payment("acme", 99), Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let other = app.company_with_demo_rules("globex").await;
    let response = app.post_payment(&payment("globex", 1), Some(&other)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["ratelimit-policy"], "\"payments\";q=1000;w=1");

    // Back to the deployment's default: at once in this process.
    let response = put_limits(&app, "acme", &json!({"payments_per_second": null}), &admin).await;
    assert_eq!(json_body(response).await["effective"]["payments_per_second"], 1000);
    let response = app.post_payment(&payment("acme", 100), Some(&key)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
}

backend_test! {
    async fn company_limits_are_the_admins_to_set_and_the_companys_to_read(app) {
    let key = app.company_with_demo_rules("acme").await;
    let response = app.get_as("/companies/acme/limits", Some(&key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["payments_per_second"], json!(null));
    assert_eq!(body["effective"], json!({"payments_per_second": 1000, "payments_burst": 2000}));

    let response = put_limits(&app, "acme", &json!({"payments_per_second": 5}), &key).await;
    assert_problem(response, StatusCode::FORBIDDEN).await;
    app.company_with_key("globex").await;
    let response = app.get_as("/companies/globex/limits", Some(&key)).await;
    assert_problem(response, StatusCode::NOT_FOUND).await;
    let admin = app.admin_token.clone();
    let response = put_limits(&app, "nobody", &json!({}), &admin).await;
    assert_problem(response, StatusCode::NOT_FOUND).await;

    let response = put_limits(
        &app,
        "acme",
        &json!({"payments_per_second": 0, "payments_burst": "many", "rate": 1}),
        &admin,
    )
    .await;
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["rate", "payments_per_second", "payments_burst"]);
    // Nothing was changed by the refused body.
    let body = json_body(app.get_as("/companies/acme/limits", Some(&key)).await).await;
    assert_eq!(body["payments_per_second"], json!(null));
    }
}

mod a_company_has_at_most_its_streams_open {
    use super::*;

    async fn run(backend: Backend) {
        let app = spawn_app_with_config(backend, |config| config.max_streams_per_company = 2).await;
        let key = app.company_with_demo_rules("acme").await;
        let first = SseReader::open(&app, "/companies/acme/events", &key, None).await;
        let _second = SseReader::open(&app, "/companies/acme/events", &key, None).await;
        let response = app.get_as("/companies/acme/events", Some(&key)).await;
        let retry_after = response.headers()["retry-after"].clone();
        let problem = assert_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("--max-streams-per-company 2"),
            "{problem}"
        );
        assert_eq!(retry_after, "5");
        // Another company is not affected; a closed stream frees its slot.
        let other = app.company_with_demo_rules("globex").await;
        let _other = SseReader::open(&app, "/companies/globex/events", &other, None).await;
        drop(first);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let response = app.get_as("/companies/acme/events", Some(&key)).await;
            if response.status() == StatusCode::OK {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the closed stream's slot was not freed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await
    }
}

mod a_company_has_at_most_its_notification_endpoints {
    use super::*;

    async fn run(backend: Backend) {
        let app = spawn_app_with_config(backend, |config| {
            config.max_notification_endpoints = 2;
            config.allow_private_addresses = true;
        })
        .await;
        let key = app.company_with_demo_rules("acme").await;
        let register = |n: usize| {
            let app = &app;
            let key = key.clone();
            async move {
                app.post_json_as(
                    "/companies/acme/notification-endpoints",
                    &json!({"url": format!("http://127.0.0.1:9/hook-{n}")}),
                    Some(&key),
                )
                .await
            }
        };
        // Concurrent creates cannot pass the limit together.
        let answers = futures::future::join_all((0..6).map(register)).await;
        let created = answers
            .iter()
            .filter(|r| r.status() == StatusCode::CREATED)
            .count();
        assert_eq!(created, 2);
        let refused = answers
            .into_iter()
            .find(|r| r.status() == StatusCode::UNPROCESSABLE_ENTITY)
            .expect("a refusal");
        let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["code"], "limit_reached");
        assert_eq!(app.count_rows("notification_endpoints", "acme").await, 2);
    }

    #[tokio::test]
    async fn sqlite() {
        run(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn postgres() {
        run(Backend::Postgres).await
    }
}

#[tokio::test]
async fn a_request_past_the_concurrency_limit_or_timeout_gets_503_problem() {
    // One request at a time and a body that never ends: the first holds
    // the slot until the body-read timeout, a second is refused at once.
    let app = spawn_app_with_config(Backend::Sqlite, |config| {
        config.max_concurrent_requests = 1;
        config.body_read_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    // Headers that promise 100 bytes, then one: the body never completes.
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /payment-rules/validate HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        app.admin_token
    );
    tokio::io::AsyncWriteExt::write_all(&mut socket, head.as_bytes())
        .await
        .unwrap();
    let slow = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        // Until the problem's last field, or the server closes.
        while !String::from_utf8_lossy(&answer).contains("\"retryable\"") {
            match tokio::io::AsyncReadExt::read(&mut socket, &mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    });
    // Until the slow request holds the only slot, health may still pass.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let response = app.health().await;
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break response;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no 503 while the only slot was held"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let problem = assert_problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["type"], "urn:moneyflow:problem:overloaded");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("--max-concurrent-requests")
    );

    let answer = slow.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-read-timeout"), "{answer}");
    // The slot is free again.
    assert_eq!(app.health().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn limits_default_for_a_server_started_without_settings() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.company_with_demo_rules("acme").await;
    let response = app.post_payment(&payment("acme", 1), Some(&key)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()["ratelimit-policy"],
        "\"payments\";q=1000;w=1"
    );
}
