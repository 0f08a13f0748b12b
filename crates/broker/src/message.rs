//! [`RunMessage`], the body of every message on the run queue, and the AMQP
//! properties and headers around it.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use serde::{Deserialize, Serialize};

use crate::error::BrokerError;

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// Set by quorum queues on a redelivery: how many earlier deliveries failed.
pub(crate) const DELIVERY_COUNT: &str = "x-delivery-count";
/// Set by RabbitMQ when it dead-letters a message: one entry per queue and reason.
const X_DEATH: &str = "x-death";
/// The reason of the first dead-lettering (`delivery_limit`, `rejected`…).
const FIRST_DEATH_REASON: &str = "x-first-death-reason";
/// The queue the message was first dead-lettered from.
const FIRST_DEATH_QUEUE: &str = "x-first-death-queue";
/// The `type` property of run messages.
const MESSAGE_TYPE: &str = "moneyflow.run";

/// "Run `run_id` of company `company_id` is due": all a message carries.
/// The run itself, its event and its state stay in the store; a message is
/// only a wake-up, so a duplicate costs one load and no second execution.
///
/// On the wire: `{"run_id":"…","company_id":"…"}` (JSON; unknown fields are
/// ignored, so fields can be added), with `message_id` = the run id,
/// `content_type` = `application/json`, `type` = `moneyflow.run`, and
/// persistent delivery.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunMessage {
    pub run_id: String,
    pub company_id: String,
}

impl RunMessage {
    pub fn new(run_id: impl Into<String>, company_id: impl Into<String>) -> Self {
        Self {
            run_id: run_id.into(),
            company_id: company_id.into(),
        }
    }

    /// The body, as published.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("two strings always serialize")
    }

    /// Parses a body; `None` when it is not a run message.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The properties it is published with.
    pub(crate) fn properties(&self) -> Result<BasicProperties, BrokerError> {
        let message_id = ShortString::try_new(self.run_id.clone()).map_err(|error| {
            BrokerError::InvalidMessage {
                run_id: self.run_id.clone(),
                reason: error.to_string(),
            }
        })?;
        Ok(BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_type(MESSAGE_TYPE.into())
            .with_message_id(message_id))
    }
}

/// How many earlier deliveries of a message failed, from the quorum queue's
/// `x-delivery-count` header; 0 on a first delivery (the header is absent).
pub(crate) fn delivery_count(properties: &BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(DELIVERY_COUNT))
        .and_then(as_u64)
        .map_or(0, |count| u32::try_from(count).unwrap_or(u32::MAX))
}

/// What RabbitMQ recorded when it dead-lettered a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Death {
    /// `delivery_limit`, `rejected`, `expired` or `maxlen`.
    pub(crate) reason: Option<String>,
    /// The queue it was dead-lettered from.
    pub(crate) queue: Option<String>,
    /// How many times it was dead-lettered, over every queue and reason.
    pub(crate) count: u64,
}

pub(crate) fn death(properties: &BasicProperties) -> Death {
    let Some(headers) = properties.headers().as_ref() else {
        return Death::default();
    };
    let headers = headers.inner();
    let text = |key: &str| headers.get(key).and_then(as_text);
    let count = match headers.get(X_DEATH) {
        Some(AMQPValue::FieldArray(deaths)) => deaths
            .as_slice()
            .iter()
            .filter_map(|death| match death {
                AMQPValue::FieldTable(death) => death.inner().get("count").and_then(as_u64),
                _ => None,
            })
            .sum(),
        _ => 0,
    };
    Death {
        reason: text(FIRST_DEATH_REASON),
        queue: text(FIRST_DEATH_QUEUE),
        count,
    }
}

/// The properties to publish a dead letter with again: the same, less the
/// quorum queue's delivery count, which would otherwise show the old
/// failures on the first delivery of the replay. `x-death` stays: it is the
/// message's history.
pub(crate) fn for_replay(properties: &BasicProperties) -> BasicProperties {
    let mut replayed = properties.clone();
    if let Some(headers) = properties.headers() {
        let kept: FieldTable = headers
            .inner()
            .iter()
            .filter(|(key, _)| key.as_str() != DELIVERY_COUNT)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        replayed = replayed.with_headers(kept);
    }
    replayed.with_delivery_mode(PERSISTENT)
}

fn as_u64(value: &AMQPValue) -> Option<u64> {
    match *value {
        AMQPValue::ShortShortInt(v) => u64::try_from(v).ok(),
        AMQPValue::ShortShortUInt(v) => Some(v.into()),
        AMQPValue::ShortInt(v) => u64::try_from(v).ok(),
        AMQPValue::ShortUInt(v) => Some(v.into()),
        AMQPValue::LongInt(v) => u64::try_from(v).ok(),
        AMQPValue::LongUInt(v) => Some(v.into()),
        AMQPValue::LongLongInt(v) => u64::try_from(v).ok(),
        AMQPValue::Timestamp(v) => Some(v),
        _ => None,
    }
}

fn as_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_headers(pairs: Vec<(&str, AMQPValue)>) -> BasicProperties {
        let mut table = FieldTable::default();
        for (key, value) in pairs {
            table.insert(key.into(), value);
        }
        BasicProperties::default().with_headers(table)
    }

    #[test]
    fn a_run_message_round_trips_and_ignores_unknown_fields() {
        let message = RunMessage::new("run-1", "acme");
        assert_eq!(
            message.to_json(),
            br#"{"run_id":"run-1","company_id":"acme"}"#
        );
        assert_eq!(RunMessage::from_json(&message.to_json()), Some(message));
        assert_eq!(
            RunMessage::from_json(br#"{"run_id":"r","company_id":"c","v":2}"#),
            Some(RunMessage::new("r", "c"))
        );
        assert_eq!(RunMessage::from_json(b"run-1"), None);
    }

    #[test]
    fn run_messages_are_persistent_and_carry_the_run_id() {
        let properties = RunMessage::new("run-1", "acme").properties().unwrap();
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(
            properties.message_id().as_ref().map(ShortString::as_str),
            Some("run-1")
        );
        let too_long = RunMessage::new("r".repeat(300), "acme").properties();
        assert!(matches!(too_long, Err(BrokerError::InvalidMessage { .. })));
    }

    #[test]
    fn the_delivery_count_is_read_from_any_integer_type() {
        assert_eq!(delivery_count(&BasicProperties::default()), 0);
        for value in [
            AMQPValue::LongLongInt(3),
            AMQPValue::LongInt(3),
            AMQPValue::ShortUInt(3),
        ] {
            assert_eq!(
                delivery_count(&with_headers(vec![(DELIVERY_COUNT, value)])),
                3
            );
        }
    }

    #[test]
    fn replay_drops_the_delivery_count_and_keeps_the_history() {
        let death: FieldTable = [("count".into(), AMQPValue::LongLongInt(2))]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        let properties = with_headers(vec![
            (DELIVERY_COUNT, AMQPValue::LongLongInt(6)),
            (
                X_DEATH,
                AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
            ),
            (
                FIRST_DEATH_REASON,
                AMQPValue::LongString("delivery_limit".into()),
            ),
        ]);
        let replayed = for_replay(&properties);
        assert_eq!(delivery_count(&replayed), 0);
        let history = super::death(&replayed);
        assert_eq!(history.count, 2);
        assert_eq!(history.reason.as_deref(), Some("delivery_limit"));
    }
}
