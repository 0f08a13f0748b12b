//! `spawn_app`, the [`TestApp`] with a method per endpoint, and the macro that
//! runs a test on every backend.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use moneyflow_engine::Registry;
use moneyflow_server::config::Config;
use moneyflow_server::secret::SecretString;
use moneyflow_server::startup::{Application, builtin_registry};
use moneyflow_store::testing::{TestStore, fresh_postgres, fresh_sqlite};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

/// The admin token every test server is started with.
pub const ADMIN_TOKEN: &str = "mfa_test_admin_token";

/// Runs the test body on SQLite and on PostgreSQL: expands to
/// `mod name { #[tokio::test] async fn sqlite() … #[tokio::test] async fn postgres() … }`.
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: crate::helpers::TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                run(crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await).await
            }

            #[tokio::test]
            async fn postgres() {
                run(crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await).await
            }
        }
    };
}

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin_token: String,
    /// The test's database (kept alive for the test, removed after it), for
    /// checks the API cannot make, such as counting stored rows.
    pub store: TestStore,
}

/// The configuration every test server starts with.
pub fn test_config() -> Config {
    Config {
        port: 0,
        admin_token: Some(SecretString::new(ADMIN_TOKEN)),
        demo: false,
        ..Config::default()
    }
}

/// Starts the real server on 127.0.0.1, port 0, with a fresh store and
/// [`ADMIN_TOKEN`], without the demo data, running the built-in tasks.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_registry(backend, builtin_registry(&test_config())).await
}

/// [`spawn_app`] with the tasks of `registry` (e.g. the built-in ones plus
/// test-only tasks).
pub async fn spawn_app_with_registry(backend: Backend, registry: Registry) -> TestApp {
    spawn(backend, test_config(), registry).await
}

/// [`spawn_app`] with `configure` applied to the test configuration (e.g.
/// allowing private addresses, a short notification retry schedule).
pub async fn spawn_app_with_config(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = test_config();
    configure(&mut config);
    let registry = builtin_registry(&config);
    spawn(backend, config, registry).await
}

/// [`spawn_app_with_config`] with the tasks of `registry` (`registry` gets
/// the configuration, to start from [`builtin_registry`]).
pub async fn spawn_app_with_config_and_registry(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    registry: impl FnOnce(&Config) -> Registry,
) -> TestApp {
    let mut config = test_config();
    configure(&mut config);
    let registry = registry(&config);
    spawn(backend, config, registry).await
}

async fn spawn(backend: Backend, config: Config, registry: Registry) -> TestApp {
    let store = match backend {
        Backend::Sqlite => fresh_sqlite().await,
        Backend::Postgres => fresh_postgres().await,
    };
    let served = (*store).clone();
    spawn_on(store, served, config, registry).await
}

/// Starts the server on `served` (e.g. the test database reached another
/// way, through a proxy); `store` is the test's own handle on the database.
pub async fn spawn_on(
    store: TestStore,
    served: moneyflow_store::Store,
    config: Config,
    registry: Registry,
) -> TestApp {
    let application = Application::build_with_store_and_registry(config, served, registry)
        .await
        .expect("the server starts");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        admin_token: ADMIN_TOKEN.to_owned(),
        store,
    }
}

/// The demo rule set (the original README's flowchart) for `company_id`.
pub fn demo_rules(company_id: &str) -> Value {
    let mut rules: Value =
        serde_json::from_str(moneyflow_server::demo::DEMO_RULES).expect("demo rules parse");
    rules["company_id"] = json!(company_id);
    rules
}

/// The demo's book payment for `company_id`.
pub fn book_payment(company_id: &str) -> Value {
    json!({
        "company_id": company_id, "type": "product", "total": "120.00", "currency": "BRL",
        "product": {"id": "book-1", "type": "book"}, "agent_id": "agent-7"
    })
}

/// A Standard Webhooks signature, computed here independently of the
/// server's code: `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// under the base64-decoded part of `whsec_…`.
pub fn sign_webhook(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("base64 key");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// Now, in seconds since the epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .try_into()
        .expect("fits")
}

/// The statuses a run ends in.
pub fn is_finished(run: &Value) -> bool {
    matches!(
        run["status"].as_str(),
        Some("succeeded" | "failed" | "aborted")
    )
}

/// The original README's rule set, as published (with its `conditional-1` mistake).
pub fn original_readme_rules() -> Value {
    json!({
      "company_id": "b5aa9687-d61f-467c-973e-f55d446981dc",
      "rules": [
        {
          "node_type": "condition",
          "node_id": "condition-1",
          "expect": [
            { "field": "$context.event.payment_type", "operator": "eq", "value": ["product"] }
          ]
        },
        {
          "node_type": "task",
          "node_id": "abort-flow-1",
          "depends_on": [{ "node_id": "conditional-1", "state": "failure" }],
          "task_name": "payment.tasks.abort_flow",
          "parameters": null
        },
        {
          "node_type": "task",
          "node_id": "generate-invoice-1",
          "depends_on": [{ "node_id": "conditional-1", "state": "success" }],
          "task_name": "payment.tasks.generate_invoice",
          "parameters": {
            "company_id": "$context.event.company_id",
            "product_id": "$context.event.product.id"
          }
        },
        {
          "node_type": "condition",
          "node_id": "condition-2",
          "depends_on": [{ "node_id": "condition-1", "state": "success" }],
          "expect": [
            { "field": "$context.event.product.type", "operator": "in", "value": ["book", "ebook"] }
          ]
        },
        {
          "node_type": "task",
          "node_id": "generate_royalty-1",
          "task_name": "payment.tasks.generate_royalty",
          "parameters": {
            "company_id": "$context.event.company_id",
            "product_id": "$context.event.product.id"
          }
        }
      ]
    })
}

/// The original README's rule set with its references mended to `condition-1`.
pub fn mended_readme_rules() -> Value {
    let mut rules = original_readme_rules();
    for node in [1, 2] {
        rules["rules"][node]["depends_on"][0]["node_id"] = json!("condition-1");
    }
    rules
}

/// A small valid rule set for `company_id`.
pub fn simple_rules(company_id: &str) -> Value {
    json!({
        "company_id": company_id,
        "rules": [
            {
                "node_type": "condition",
                "node_id": "is-product",
                "expect": [{ "field": "$context.event.type", "operator": "eq", "value": ["product"] }]
            },
            {
                "node_type": "task",
                "node_id": "invoice",
                "depends_on": [{ "node_id": "is-product", "state": "success" }],
                "task_name": "payment.tasks.generate_invoice",
                "parameters": null
            }
        ]
    })
}

/// Reads a JSON body, failing with the text when it is not JSON.
pub async fn json_body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts the status and that the body is a problem+json document; returns it.
pub async fn assert_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .expect("content-type")
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body = json_body(response).await;
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"].is_string() && body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(body["retryable"].is_boolean(), "{body}");
    body
}

/// The paths of a problem's `errors`.
pub fn error_paths(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The error at `path`, panicking with the whole problem when absent.
pub fn error_at<'a>(problem: &'a Value, path: &str) -> &'a Value {
    problem["errors"]
        .as_array()
        .and_then(|errors| errors.iter().find(|e| e["path"] == path))
        .unwrap_or_else(|| panic!("no error at {path}: {problem:#}"))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with `token` as Bearer credentials (none when `None`).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Response {
        self.request(reqwest::Method::GET, path, token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json_as(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.request(reqwest::Method::POST, path, token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn health(&self) -> Response {
        self.get_as("/", None).await
    }

    pub async fn save_rules(&self, body: &Value) -> Response {
        self.save_rules_as(body, Some(&self.admin_token)).await
    }

    pub async fn save_rules_as(&self, body: &Value, token: Option<&str>) -> Response {
        self.post_json_as("/payment-rules", body, token).await
    }

    pub async fn get_rules(&self, company_id: &str) -> Response {
        self.get_rules_as(company_id, Some(&self.admin_token)).await
    }

    pub async fn get_rules_as(&self, company_id: &str, token: Option<&str>) -> Response {
        self.get_as(&format!("/payment-rules/{company_id}"), token)
            .await
    }

    pub async fn list_versions(&self, company_id: &str) -> Response {
        self.get_as(
            &format!("/payment-rules/{company_id}/versions"),
            Some(&self.admin_token),
        )
        .await
    }

    pub async fn get_version(&self, company_id: &str, version: &str) -> Response {
        self.get_as(
            &format!("/payment-rules/{company_id}/versions/{version}"),
            Some(&self.admin_token),
        )
        .await
    }

    pub async fn validate_rules(&self, body: &Value) -> Response {
        self.post_json_as("/payment-rules/validate", body, Some(&self.admin_token))
            .await
    }

    pub async fn list_tasks(&self) -> Response {
        self.get_as("/tasks", Some(&self.admin_token)).await
    }

    pub async fn create_company(&self, body: &Value) -> Response {
        self.create_company_as(body, Some(&self.admin_token)).await
    }

    pub async fn create_company_as(&self, body: &Value, token: Option<&str>) -> Response {
        self.post_json_as("/companies", body, token).await
    }

    pub async fn create_api_key(&self, company_id: &str, body: Option<&Value>) -> Response {
        let builder = self.request(
            reqwest::Method::POST,
            &format!("/companies/{company_id}/api-keys"),
            Some(&self.admin_token),
        );
        let builder = match body {
            Some(body) => builder.json(body),
            None => builder,
        };
        builder.send().await.expect("request")
    }

    pub async fn list_api_keys(&self, company_id: &str) -> Response {
        self.get_as(
            &format!("/companies/{company_id}/api-keys"),
            Some(&self.admin_token),
        )
        .await
    }

    pub async fn revoke_api_key(&self, company_id: &str, key_id: &str) -> Response {
        self.request(
            reqwest::Method::DELETE,
            &format!("/companies/{company_id}/api-keys/{key_id}"),
            Some(&self.admin_token),
        )
        .send()
        .await
        .expect("request")
    }

    /// `POST /payment` with `body` as JSON and `token` as Bearer credentials.
    pub async fn post_payment(&self, body: &Value, token: Option<&str>) -> Response {
        self.post_json_as("/payment", body, token).await
    }

    /// `POST /payment` with `body` sent byte for byte and Standard Webhooks
    /// headers (`signatures` as the `webhook-signature` value).
    pub async fn post_signed_payment(
        &self,
        body: &str,
        id: &str,
        timestamp: i64,
        signatures: &str,
    ) -> Response {
        self.client
            .post(self.url("/payment"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_run(&self, run_id: &str, token: Option<&str>) -> Response {
        self.get_as(&format!("/runs/{run_id}"), token).await
    }

    /// Polls `GET /runs/{run_id}` until the run has finished; panics with the
    /// last answer after 30 s.
    pub async fn wait_for_run(&self, run_id: &str, token: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = self.get_run(run_id, Some(token)).await;
            assert_eq!(response.status(), StatusCode::OK, "GET /runs/{run_id}");
            let run = json_body(response).await;
            if is_finished(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} did not finish in 30 s: {run:#}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Posts `event` with `token`, asserts 202, waits for its run to finish.
    pub async fn pay_and_wait(&self, event: &Value, token: &str) -> Value {
        let response = self.post_payment(event, Some(token)).await;
        let status = response.status();
        let body = json_body(response).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        self.wait_for_run(body["run_id"].as_str().expect("run_id"), token)
            .await
    }

    /// `POST /companies/{id}/signing-secrets` as the admin.
    pub async fn create_signing_secret(&self, company_id: &str, body: Option<&Value>) -> Response {
        let builder = self.request(
            reqwest::Method::POST,
            &format!("/companies/{company_id}/signing-secrets"),
            Some(&self.admin_token),
        );
        let builder = match body {
            Some(body) => builder.json(body),
            None => builder,
        };
        builder.send().await.expect("request")
    }

    /// A new signing secret of `company_id` (`whsec_…`).
    pub async fn new_signing_secret(&self, company_id: &str) -> String {
        let response = self.create_signing_secret(company_id, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        json_body(response).await["secret"]
            .as_str()
            .expect("secret")
            .to_owned()
    }

    /// A company with a key and the demo rule set; returns the key.
    pub async fn company_with_demo_rules(&self, company_id: &str) -> String {
        let (_, key) = self.company_with_key(company_id).await;
        let response = self.save_rules(&demo_rules(company_id)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        key
    }

    /// Rows in `table` for `company_id`, read straight from the database.
    pub async fn count_rows(&self, table: &str, company_id: &str) -> i64 {
        // Test-controlled names: safe to splice; the same SQL on both backends.
        self.query_i64(&format!(
            "SELECT COUNT(*) FROM {table} WHERE company_id = '{company_id}'"
        ))
        .await
    }

    /// One integer read straight from the database with `sql`, the same
    /// text on both backends.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        if let Some(sqlite) = self.store.as_sqlite() {
            sqlx::query_scalar(sql)
                .fetch_one(sqlite.pool())
                .await
                .expect("an integer")
        } else {
            let postgres = self.store.as_postgres().expect("a backend");
            sqlx::query_scalar(sql)
                .fetch_one(postgres.pool())
                .await
                .expect("an integer")
        }
    }

    /// Creates a company and a key for it; returns `(key_id, key)`.
    pub async fn company_with_key(&self, company_id: &str) -> (String, String) {
        let response = self
            .create_company(&json!({"id": company_id, "name": company_id}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let response = self.create_api_key(company_id, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = json_body(response).await;
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }
}
