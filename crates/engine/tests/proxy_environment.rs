//! The clients that tenants aim (`payment.tasks.http_request` and the
//! notification deliveries, both built by `egress::client_builder`) ignore
//! `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY`: a proxy would resolve and
//! connect on the engine's behalf, out of reach of the address guard. The
//! environment is the process's, so the test runs itself again as a child
//! with every proxy variable pointing at a listener that counts connections;
//! the child's calls must reach their target directly.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use moneyflow_engine::egress::client_builder;
use moneyflow_engine::http::{HttpPolicy, HttpRequest};
use moneyflow_engine::task::{Task, TaskInput};
use serde_json::{Map, Value, json};

/// Set in the child: the target's URL.
const TARGET_VARIABLE: &str = "MONEYFLOW_PROXY_TEST_TARGET";
const TEST_NAME: &str = "proxies_in_the_environment_are_ignored";

#[test]
fn proxies_in_the_environment_are_ignored() {
    if let Ok(target) = std::env::var(TARGET_VARIABLE) {
        call_target(&target);
        return;
    }
    let (target, target_requests) = listen(true);
    let (proxy, proxy_connections) = listen(false);
    let proxy_url = format!("http://{proxy}");
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(TARGET_VARIABLE, format!("http://{target}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .envs(
            [
                "HTTP_PROXY",
                "http_proxy",
                "HTTPS_PROXY",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            ]
            .map(|name| (name, proxy_url.as_str())),
        )
        .output()
        .expect("the child test runs");
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        proxy_connections.load(Ordering::SeqCst),
        0,
        "the proxy was used"
    );
    assert_eq!(
        target_requests.load(Ordering::SeqCst),
        2,
        "both calls reach the target"
    );
}

/// In the child: the task's call and a plain call on the shared builder.
fn call_target(target: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let task = HttpRequest::new(HttpPolicy {
            allow_private_addresses: true,
            default_timeout: Duration::from_secs(5),
            ..HttpPolicy::default()
        });
        let mut parameters = Map::new();
        parameters.insert("url".into(), Value::String(format!("{target}/hook")));
        let event = json!({"type": "product"});
        let output = task
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
            .expect("the task reaches the target");
        assert_eq!(output.output["status"], 200, "{:?}", output.output);

        let client = client_builder(true).build().expect("a client");
        let response = client
            .post(format!("{target}/delivery"))
            .send()
            .await
            .expect("the client reaches the target");
        assert_eq!(response.status(), 200);
    });
}

/// A listener on loopback counting what reaches it: as the target, each
/// request gets `200 {}`; as the proxy, each connection is closed at once.
fn listen(answer: bool) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if !answer {
                counted.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut content_length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                if line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    content_length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; content_length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
            );
        }
    });
    (address, count)
}
