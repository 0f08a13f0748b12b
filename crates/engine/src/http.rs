//! `payment.tasks.http_request`: calls a company's own endpoint.
//!
//! Every request carries `Idempotency-Key: {run_id}:{node_id}`, the same on
//! every attempt. 5xx, 429 and timeouts are retryable (honouring
//! `Retry-After`); other 4xx are permanent. Loopback, private and link-local
//! addresses are refused unless the operator allows them, checked on the
//! addresses the name actually resolves to (a resolver hook), so a public
//! name pointing inside the network is refused too. Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use moneyflow_core::catalogue::{Catalogue, TaskSpec};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{Value, json};

use crate::task::{Task, TaskError, TaskInput, TaskOutput};

/// What the operator allows `http_request` to do.
#[derive(Debug, Clone)]
pub struct HttpPolicy {
    /// Allow loopback, private and link-local addresses (tests, on-premises).
    pub allow_private_addresses: bool,
    /// The longest a request may take when the node sets no `timeout_ms`.
    pub default_timeout: Duration,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            default_timeout: Duration::from_secs(30),
        }
    }
}

/// Whether an address is outside the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                // Carrier-grade NAT 100.64.0.0/10 and "this network" 0.0.0.0/8.
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local fc00::/7 and link-local fe80::/10.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, a private or loopback address, which this server does not call")]
pub(crate) struct AddressRefused {
    host: String,
    ip: IpAddr,
}

/// Resolves names and drops the call when any address is private.
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(addr) = addrs.iter().find(|a| is_private(a.ip())) {
                return Err(Box::new(AddressRefused {
                    host,
                    ip: addr.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
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
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("MoneyFlow/", env!("CARGO_PKG_VERSION")))
            .timeout(policy.default_timeout);
        if !policy.allow_private_addresses {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Self {
            spec: Catalogue::builtin()
                .get("payment.tasks.http_request")
                .expect("http_request is in the built-in catalogue")
                .clone(),
            client: builder
                .build()
                .expect("the HTTP client's settings are valid"),
            policy,
        }
    }

    fn check_literal_address(&self, url: &reqwest::Url) -> Result<(), TaskError> {
        if self.policy.allow_private_addresses {
            return Ok(());
        }
        // IP literals skip the resolver, so they are checked here.
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        if is_private(ip) {
            return Err(TaskError::permanent(format!(
                "{ip} is a private or loopback address, which this server does not call (the operator can allow it)"
            )));
        }
        Ok(())
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
        self.check_literal_address(&url)?;
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
        let text = response
            .text()
            .await
            .map_err(|e| TaskError::retryable(format!("reading the response failed: {e}")))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        let code = status.as_u16();
        if status.is_success() {
            return Ok(TaskOutput::new(json!({"status": code, "body": body})));
        }
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
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<AddressRefused>() {
            return TaskError::permanent(refused.to_string());
        }
        source = current.source();
    }
    if error.is_timeout() {
        TaskError::retryable("the request timed out")
    } else {
        TaskError::retryable(format!("the request failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
