//! `payment.tasks.http_request` against a real HTTP server on loopback: the
//! idempotency key on every attempt, `Retry-After`, the retryable/permanent
//! split, and the address policy.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use moneyflow_engine::http::{HttpPolicy, HttpRequest};
use moneyflow_engine::task::{Task, TaskError, TaskInput};
use serde_json::{Map, Value, json};

/// A receiver that answers 503 with `Retry-After: 2` once, then 200, and
/// records the idempotency keys it saw.
async fn receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap| {
                    let seen = seen.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let mut seen = seen.lock().unwrap();
                        seen.push(key);
                        if seen.len() == 1 {
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                [("retry-after", "2")],
                                "busy".to_owned(),
                            )
                        } else {
                            (
                                StatusCode::OK,
                                [("content-type", "application/json")],
                                r#"{"ok":true}"#.to_owned(),
                            )
                        }
                    }
                }
            }),
        )
        .route("/gone", post(|| async { StatusCode::NOT_FOUND }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn call(
    task: &HttpRequest,
    url: &str,
) -> Result<moneyflow_engine::task::TaskOutput, TaskError> {
    let mut parameters = Map::new();
    parameters.insert("url".into(), Value::String(url.to_owned()));
    let event = json!({"type": "product", "total": "10.00"});
    task.execute(TaskInput {
        run_id: "run_1",
        node_id: "hook",
        company_id: "acme",
        idempotency_key: "run_1:hook",
        attempt: 1,
        parameters: &parameters,
        event: &event,
        earlier_outputs: &[],
    })
    .await
}

fn allowing_loopback() -> HttpRequest {
    HttpRequest::new(HttpPolicy {
        allow_private_addresses: true,
        default_timeout: Duration::from_secs(5),
        ..HttpPolicy::default()
    })
}

#[tokio::test]
async fn a_503_is_retryable_with_its_retry_after_and_the_key_is_stable() {
    let (url, seen) = receiver().await;
    let task = allowing_loopback();
    match call(&task, &format!("{url}/hook")).await {
        Err(TaskError::Retryable { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(2)))
        }
        other => panic!("expected a retryable error, got {other:?}"),
    }
    let output = call(&task, &format!("{url}/hook"))
        .await
        .expect("second attempt succeeds");
    assert_eq!(output.output, json!({"status": 200, "body": {"ok": true}}));
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["run_1:hook".to_owned(), "run_1:hook".to_owned()]
    );
}

#[tokio::test]
async fn other_4xx_are_permanent() {
    let (url, _) = receiver().await;
    let error = call(&allowing_loopback(), &format!("{url}/gone"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("404"), "{error}");
}

#[tokio::test]
async fn loopback_is_refused_unless_the_operator_allows_it() {
    let (url, seen) = receiver().await;
    let task = HttpRequest::new(HttpPolicy::default());
    let error = call(&task, &format!("{url}/hook")).await.unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("does not call"), "{error}");
    // A name that resolves to loopback is refused too, by the resolver.
    let port = url.rsplit(':').next().unwrap();
    let error = call(&task, &format!("http://localhost:{port}/hook"))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("does not call"), "{error}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_connection_refused_is_retryable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = call(
        &allowing_loopback(),
        &format!("http://127.0.0.1:{port}/hook"),
    )
    .await
    .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
}

/// A receiver that streams `total` bytes of JSON-ish text without a
/// `Content-Length`, and counts what it managed to send.
async fn flood(total: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let app = Router::new().route(
        "/big",
        post(move || {
            let counter = counter.clone();
            async move {
                let chunk = axum::body::Bytes::from(vec![b'a'; 64 * 1024]);
                let chunks = total / chunk.len();
                let stream = futures::stream::iter((0..chunks).map(move |_| {
                    counter.fetch_add(chunk.len(), Ordering::Relaxed);
                    Ok::<_, std::convert::Infallible>(chunk.clone())
                }));
                axum::body::Body::from_stream(stream)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, sent)
}

#[tokio::test]
async fn a_response_past_the_limit_fails_the_node_and_is_not_read_further() {
    const LIMIT: usize = 1024 * 1024;
    let (url, sent) = flood(64 * 1024 * 1024).await;
    let task = HttpRequest::new(HttpPolicy {
        allow_private_addresses: true,
        default_timeout: Duration::from_secs(30),
        response_limit_bytes: LIMIT,
    });
    let error = call(&task, &format!("{url}/big")).await.unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("1048576 bytes"), "{message}");
    assert!(message.contains("--http-response-limit-bytes"), "{message}");
    // The body was cut near the limit, not drained: the server could not
    // have sent much more than what fits in the socket buffers.
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 32 * 1024 * 1024,
        "{sent} bytes were pulled from the endpoint"
    );

    // Within the limit, the body is the output.
    let task = HttpRequest::new(HttpPolicy {
        allow_private_addresses: true,
        default_timeout: Duration::from_secs(30),
        response_limit_bytes: 8 * 1024 * 1024,
    });
    let (url, _) = flood(2 * 1024 * 1024).await;
    let output = call(&task, &format!("{url}/big")).await.expect("fits");
    assert_eq!(
        output.output["body"].as_str().map(str::len),
        Some(2 * 1024 * 1024)
    );
}

#[tokio::test]
async fn a_hop_or_forwarding_header_brought_in_at_run_time_is_refused() {
    let (url, seen) = receiver().await;
    let mut parameters = Map::new();
    parameters.insert("url".into(), Value::String(format!("{url}/hook")));
    parameters.insert("headers".into(), json!({"X-Forwarded-For": "10.0.0.1"}));
    let event = json!({"type": "product"});
    let error = allowing_loopback()
        .execute(TaskInput {
            run_id: "run_1",
            node_id: "hook",
            company_id: "acme",
            idempotency_key: "run_1:hook",
            attempt: 1,
            parameters: &parameters,
            event: &event,
            earlier_outputs: &[],
        })
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("X-Forwarded-For"), "{error}");
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ipv6_forms_of_loopback_are_refused_before_any_connection() {
    let (url, seen) = receiver().await;
    let port = url.rsplit(':').next().unwrap();
    let task = HttpRequest::new(HttpPolicy::default());
    for host in [
        "[::127.0.0.1]",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "198.18.0.1",
        "240.0.0.1",
    ] {
        let error = call(&task, &format!("http://{host}:{port}/hook"))
            .await
            .unwrap_err();
        assert!(!error.is_retryable(), "{host}: {error:?}");
        assert!(
            error.to_string().contains("does not call"),
            "{host}: {error}"
        );
    }
    assert!(seen.lock().unwrap().is_empty());
}
