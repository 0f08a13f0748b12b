//! `payment.tasks.http_request`: calls a company's own endpoint.
//!
//! Every request carries `Idempotency-Key: {run_id}:{node_id}`, the same on
//! every attempt. 5xx, 429 and timeouts are retryable (honouring
//! `Retry-After`); other 4xx are permanent. The addresses it may reach are
//! [`crate::egress`]'s policy. Redirects are not followed. The response body
//! is read as it streams in and cut at the operator's limit: a larger answer
//! fails the node (permanently) before it is held or stored.

use std::time::Duration;

use async_trait::async_trait;
use moneyflow_core::catalogue::{Catalogue, TaskSpec, refused_request_header};
use serde_json::{Value, json};

use crate::egress;
use crate::task::{Task, TaskError, TaskInput, TaskOutput};

/// The default of [`HttpPolicy::response_limit_bytes`]: 1 MiB.
pub const DEFAULT_RESPONSE_LIMIT_BYTES: usize = 1024 * 1024;

/// What the operator allows `http_request` to do.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Allow loopback, private and link-local addresses (tests, on-premises).
    pub allow_private_addresses: bool,
    /// The longest a request may take when the node sets no `timeout_ms`.
    pub default_timeout: Duration,
    /// The largest response body read (`--http-response-limit-bytes`).
    pub response_limit_bytes: usize,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            default_timeout: Duration::from_secs(30),
            response_limit_bytes: DEFAULT_RESPONSE_LIMIT_BYTES,
        }
    }
}

/// The `http_request` task.
pub struct HttpRequest {
    spec: TaskSpec,
    client: reqwest::Client,
    policy: HttpPolicy,
}

impl HttpRequest {
    pub fn new(policy: HttpPolicy) -> Self {
        let client = egress::client_builder(policy.allow_private_addresses)
            .user_agent(concat!("MoneyFlow/", env!("CARGO_PKG_VERSION")))
            .timeout(policy.default_timeout)
            .build()
            .expect("the HTTP client's settings are valid");
        Self {
            spec: Catalogue::builtin()
                .get("payment.tasks.http_request")
                .expect("http_request is in the built-in catalogue")
                .clone(),
            client,
            policy,
        }
    }

    /// Reads the body as it arrives, failing once it passes the limit.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, TaskError> {
        let limit = self.policy.response_limit_bytes;
        let too_large = || {
            TaskError::permanent(format!(
                "the response body is larger than the http_request response limit of {limit} bytes \
                 (--http-response-limit-bytes); it was not read further"
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| TaskError::retryable(format!("reading the response failed: {e}")))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait]
impl Task for HttpRequest {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    fn is_remote(&self) -> bool {
        true
    }

    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        let url_text = input
            .param("url")
            .and_then(Value::as_str)
            .ok_or_else(|| TaskError::permanent("`url` must be a string"))?;
        let url = reqwest::Url::parse(url_text).map_err(|e| {
            TaskError::permanent(format!("`url` is not a valid URL ({e}): {url_text}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TaskError::permanent(format!(
                "`url` must be http or https, not {}",
                url.scheme()
            )));
        }
        if !self.policy.allow_private_addresses {
            // IP literals skip the resolver, so they are checked here.
            egress::check_url(&url).map_err(|refused| TaskError::permanent(refused.to_string()))?;
        }
        let method_text = input
            .param("method")
            .and_then(Value::as_str)
            .unwrap_or("POST");
        let method = reqwest::Method::from_bytes(method_text.as_bytes())
            .map_err(|_| TaskError::permanent(format!("unknown HTTP method {method_text}")))?;
        let mut request = self
            .client
            .request(method, url)
            .header("Idempotency-Key", input.idempotency_key);
        if let Some(headers) = input.param("headers").and_then(Value::as_object) {
            for (name, value) in headers {
                let Some(value) = value.as_str() else {
                    return Err(TaskError::permanent(format!(
                        "header `{name}` must be a string"
                    )));
                };
                // Also refused when the rule is saved; a `$context.` path
                // can still bring one in at run time.
                if let Some(why) = refused_request_header(name) {
                    return Err(TaskError::permanent(format!(
                        "header `{name}` cannot be set on an http_request: {why}"
                    )));
                }
                request = request.header(name.as_str(), value);
            }
        }
        let body = input.param("body").unwrap_or(input.event);
        request = request.json(body);
        let response = request.send().await.map_err(classify_send_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = status.as_u16();
        if status.is_success() {
            let bytes = self.read_body(response).await?;
            let body: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            return Ok(TaskOutput::new(json!({"status": code, "body": body})));
        }
        // An error's body is not kept, so it is not read.
        drop(response);
        let message = format!("the endpoint answered {status}");
        if code == 429 || status.is_server_error() {
            Err(TaskError::Retryable {
                message,
                retry_after,
            })
        } else if status.is_redirection() {
            Err(TaskError::permanent(format!(
                "{message}; redirects are not followed"
            )))
        } else {
            Err(TaskError::permanent(message))
        }
    }
}

fn classify_send_error(error: reqwest::Error) -> TaskError {
    if let Some(refused) = egress::refused_in(&error) {
        return TaskError::permanent(refused.to_string());
    }
    if error.is_timeout() {
        TaskError::retryable("the request timed out")
    } else {
        TaskError::retryable(format!("the request failed: {error}"))
    }
}
