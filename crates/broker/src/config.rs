//! [`BrokerConfig`]: where RabbitMQ is, what the topology is called, and how
//! hard to retry.

use std::fmt;
use std::time::Duration;

use crate::error::BrokerError;

/// The longest name AMQP allows for a queue or an exchange (a short string).
const MAX_NAME_LEN: usize = 255;

/// How to reach RabbitMQ and what to declare there.
///
/// `Default` runs against a local RabbitMQ with the guest account, so tests
/// and `moneyflow serve` work with nothing configured. `Debug` hides the
/// password in [`url`](Self::url).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `amqp://user:password@host:5672/%2f` (`%2f` is the default vhost `/`;
    /// a bare trailing `/` means the vhost named ""). `amqps://` uses TLS
    /// (rustls, webpki roots). Query parameters such as `?heartbeat=10`
    /// are passed to the client.
    pub url: String,
    /// The run queue: a quorum queue.
    pub queue: String,
    /// Where the run queue dead-letters to: a fanout exchange.
    pub dead_letter_exchange: String,
    /// The queue bound to [`dead_letter_exchange`](Self::dead_letter_exchange).
    pub dead_letter_queue: String,
    /// Deliveries of one message that may fail (nack with requeue, or a
    /// consumer that died holding it) before RabbitMQ dead-letters it: a
    /// message is delivered at most `delivery_limit + 1` times.
    pub delivery_limit: u32,
    /// Unacknowledged deliveries a consumer may hold at once (`basic.qos`).
    pub prefetch: u16,
    /// First wait before reconnecting after a failed attempt; doubled per
    /// failure (with jitter) up to [`reconnect_max`](Self::reconnect_max).
    pub reconnect_initial: Duration,
    /// Longest wait between reconnection attempts.
    pub reconnect_max: Duration,
    /// How long to wait for a TCP + AMQP handshake, and for the answer to a
    /// declaration or a health check.
    pub connect_timeout: Duration,
    /// How long [`Publisher::publish_batch`](crate::Publisher::publish_batch)
    /// waits for RabbitMQ's confirms (a broker under a memory or disk alarm
    /// blocks publishers and confirms nothing).
    pub confirm_timeout: Duration,
    /// Prefix of the connection names shown in the management UI and by
    /// `rabbitmqctl list_connections`; each connection adds its role
    /// (`.publisher`, `.consumer`, `.admin`).
    pub connection_name: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            queue: "moneyflow.runs".to_owned(),
            dead_letter_exchange: "moneyflow.runs.dlx".to_owned(),
            dead_letter_queue: "moneyflow.runs.dead".to_owned(),
            delivery_limit: 5,
            prefetch: 256,
            reconnect_initial: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            connection_name: "moneyflow".to_owned(),
        }
    }
}

impl BrokerConfig {
    /// The defaults with another URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Checks what would otherwise fail later, or panic inside the client:
    /// names longer than AMQP allows, names that collide, a zero prefetch.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let names = [
            ("queue", &self.queue),
            ("dead_letter_exchange", &self.dead_letter_exchange),
            ("dead_letter_queue", &self.dead_letter_queue),
            ("connection_name", &self.connection_name),
        ];
        for (field, name) in names {
            if name.is_empty() && field != "connection_name" {
                return Err(BrokerError::Config(format!("{field} is empty")));
            }
            if name.len() + ".publisher".len() > MAX_NAME_LEN {
                return Err(BrokerError::Config(format!(
                    "{field} is longer than {} bytes",
                    MAX_NAME_LEN - ".publisher".len()
                )));
            }
        }
        if self.queue == self.dead_letter_queue {
            return Err(BrokerError::Config(
                "queue and dead_letter_queue must differ".to_owned(),
            ));
        }
        if self.prefetch == 0 {
            // 0 means "unlimited" to RabbitMQ: exactly what prefetch is for avoiding.
            return Err(BrokerError::Config(
                "prefetch must be at least 1".to_owned(),
            ));
        }
        if i32::try_from(self.delivery_limit).is_err() {
            return Err(BrokerError::Config(
                "delivery_limit is too large".to_owned(),
            ));
        }
        if self.reconnect_initial.is_zero() || self.reconnect_max < self.reconnect_initial {
            return Err(BrokerError::Config(
                "reconnect_initial must be > 0 and <= reconnect_max".to_owned(),
            ));
        }
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return Err(BrokerError::Config(format!(
                "url must start with amqp:// or amqps://, got {}",
                redact_url(&self.url)
            )));
        }
        if let Err(reason) = self.url.parse::<lapin::uri::AMQPUri>() {
            return Err(BrokerError::Config(format!(
                "url {} is invalid: {reason}",
                redact_url(&self.url)
            )));
        }
        Ok(())
    }

    /// The URL with its password replaced by `[redacted]`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &redact_url(&self.url))
            .field("queue", &self.queue)
            .field("dead_letter_exchange", &self.dead_letter_exchange)
            .field("dead_letter_queue", &self.dead_letter_queue)
            .field("delivery_limit", &self.delivery_limit)
            .field("prefetch", &self.prefetch)
            .field("reconnect_initial", &self.reconnect_initial)
            .field("reconnect_max", &self.reconnect_max)
            .field("connect_timeout", &self.connect_timeout)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}

/// `amqp://user:secret@host/` → `amqp://user:[redacted]@host/`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return "[redacted]".to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or_default();
    if userinfo.contains(':') {
        format!("{}{user}:[redacted]{}", &url[..scheme_end], &rest[at..])
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let config = BrokerConfig::new("amqp://mf:hunter2@rabbit:5672/%2f");
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(
            debug.contains("amqp://mf:[redacted]@rabbit:5672/%2f"),
            "{debug}"
        );
    }

    #[test]
    fn urls_without_a_password_are_kept() {
        assert_eq!(redact_url("amqp://rabbit/%2f"), "amqp://rabbit/%2f");
        assert_eq!(redact_url("amqp://mf@rabbit/%2f"), "amqp://mf@rabbit/%2f");
        assert_eq!(redact_url("not a url"), "[redacted]");
        assert_eq!(
            redact_url("amqps://a:b:c@h?x=@"),
            "amqps://a:[redacted]@h?x=@"
        );
    }

    #[test]
    fn defaults_are_valid_and_bad_values_are_refused() {
        BrokerConfig::default().validate().unwrap();
        let bad = [
            BrokerConfig {
                prefetch: 0,
                ..BrokerConfig::default()
            },
            BrokerConfig {
                dead_letter_queue: "moneyflow.runs".to_owned(),
                ..BrokerConfig::default()
            },
            BrokerConfig {
                queue: "q".repeat(300),
                ..BrokerConfig::default()
            },
            BrokerConfig::new("http://rabbit"),
            BrokerConfig {
                reconnect_max: std::time::Duration::ZERO,
                ..BrokerConfig::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(BrokerError::Config(_))),
                "{config:?}"
            );
        }
    }
}
