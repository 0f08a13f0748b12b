//! [`BrokerError`]: what went wrong talking to RabbitMQ, and what the caller
//! should do about it. lapin's errors are classified here and nowhere else.

use std::time::Duration;

use lapin::ErrorKind;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

type Source = Box<dyn std::error::Error + Send + Sync>;

/// Every failure of this crate. [`is_retryable`](Self::is_retryable) says
/// whether trying the same call again later can succeed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// RabbitMQ could not be reached, or the connection or channel closed
    /// under the call (network, broker restart, `rabbitmqctl
    /// close_connection`, a missed heartbeat). Retryable: the next call
    /// reconnects, after a backoff if reconnecting keeps failing.
    ///
    /// For a publish: some messages of the batch may have been enqueued;
    /// keep them all unsent and publish them again (a duplicate is harmless,
    /// consumers dedup by run state). For an ack: it may not have reached
    /// RabbitMQ, which will redeliver the message.
    #[error("connection to RabbitMQ lost during {during}")]
    ConnectionLost {
        during: &'static str,
        #[source]
        source: Source,
    },
    /// RabbitMQ nacked a published message: it could not take
    /// responsibility for it (e.g. an internal error in the queue).
    /// Retryable: keep the batch unsent and publish it again.
    #[error("RabbitMQ refused (nacked) the message for run {run_id}")]
    Nacked { run_id: String },
    /// A published message reached no queue: the run queue is missing
    /// (deleted, or the broker lost its definitions). Retryable: the
    /// publisher declares the topology again before its next batch.
    #[error("the message for run {run_id} was unroutable: queue {queue} is missing")]
    Unroutable { run_id: String, queue: String },
    /// RabbitMQ did not confirm a batch in time, typically because a memory
    /// or disk alarm blocks publishers. Retryable: keep the batch unsent;
    /// the publisher opens a fresh channel for the next batch.
    #[error("RabbitMQ did not confirm the batch within {0:?}")]
    ConfirmTimeout(Duration),
    /// An operation did not answer in time (a hung or overloaded broker).
    /// Retryable.
    #[error("RabbitMQ did not answer {during} within {timeout:?}")]
    Timeout {
        during: &'static str,
        timeout: Duration,
    },
    /// A queue or exchange exists with other arguments than this
    /// configuration declares (e.g. a classic queue named like the run
    /// queue, or another delivery limit). Permanent: an operator must
    /// delete or migrate it, or the configuration must change.
    #[error("topology mismatch declaring {name}: {reason}")]
    TopologyMismatch { name: String, reason: String },
    /// RabbitMQ refused the credentials, the vhost or a permission.
    /// Permanent until the configuration or the broker's users change.
    #[error("RabbitMQ refused access: {0}")]
    Refused(String),
    /// The configuration is invalid. Permanent.
    #[error("invalid broker configuration: {0}")]
    Config(String),
    /// A message cannot be sent as it is (a run id longer than AMQP's 255
    /// bytes). Permanent for that message: retrying it will not help.
    #[error("invalid message for run {run_id}: {reason}")]
    InvalidMessage { run_id: String, reason: String },
}

impl BrokerError {
    /// Whether the same call can succeed later (after a reconnect). The
    /// permanent ones need a person: fix the configuration or the broker.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConnectionLost { .. }
            | Self::Nacked { .. }
            | Self::Unroutable { .. }
            | Self::ConfirmTimeout(_)
            | Self::Timeout { .. } => true,
            Self::TopologyMismatch { .. }
            | Self::Refused(_)
            | Self::Config(_)
            | Self::InvalidMessage { .. } => false,
        }
    }

    /// Classifies a lapin error from an ordinary operation: everything but
    /// an access refusal is a lost connection or channel, which reconnecting
    /// repairs.
    pub(crate) fn lapin(during: &'static str, error: lapin::Error) -> Self {
        if let Some(refused) = refused(&error) {
            return refused;
        }
        Self::ConnectionLost {
            during,
            source: Box::new(error),
        }
    }

    /// Classifies a lapin error from declaring `name`: a precondition
    /// failure means it exists with other arguments.
    pub(crate) fn declare(name: &str, error: lapin::Error) -> Self {
        if let ErrorKind::ProtocolError(amqp) = error.kind()
            && matches!(
                amqp.kind(),
                AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
            )
        {
            return Self::TopologyMismatch {
                name: name.to_owned(),
                reason: amqp.get_message().to_string(),
            };
        }
        Self::lapin("declaring the topology", error)
    }
}

fn refused(error: &lapin::Error) -> Option<BrokerError> {
    let ErrorKind::ProtocolError(amqp) = error.kind() else {
        return None;
    };
    match amqp.kind() {
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
        | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED | AMQPHardError::INVALIDPATH) => {
            Some(BrokerError::Refused(amqp.get_message().to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::protocol::AMQPError;

    fn protocol(kind: AMQPErrorKind) -> lapin::Error {
        ErrorKind::ProtocolError(AMQPError::new(kind, "because".into())).into()
    }

    #[test]
    fn a_precondition_failure_while_declaring_is_a_permanent_mismatch() {
        let error = BrokerError::declare(
            "moneyflow.runs",
            protocol(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)),
        );
        assert!(
            matches!(error, BrokerError::TopologyMismatch { .. }),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_forced_close_is_a_retryable_lost_connection() {
        let error = BrokerError::lapin(
            "publishing",
            protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED)),
        );
        assert!(
            matches!(error, BrokerError::ConnectionLost { .. }),
            "{error}"
        );
        assert!(error.is_retryable());
    }

    #[test]
    fn access_refused_is_permanent() {
        let error = BrokerError::lapin(
            "connecting",
            protocol(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)),
        );
        assert!(matches!(error, BrokerError::Refused(_)), "{error}");
        assert!(!error.is_retryable());
    }
}
