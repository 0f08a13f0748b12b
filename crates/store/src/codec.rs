//! How values are kept in columns, the same way on both backends.
//!
//! - Timestamps: UTC, microsecond precision. `now` is truncated before it is
//!   stored *and* returned, so a record handed back by a write equals the same
//!   record read back later.
//! - Rule sets: the JSON text exactly as `serde_json` writes it, in a TEXT
//!   column (not `jsonb`), so key order and number spelling (`120.0`) survive.
//!   Event bodies, run node maps and document bodies are kept the same way.
//! - Times a caller passes in (`received_at`, `now`, a lease's end) are
//!   truncated to microseconds too, so comparisons in SQL and in Rust agree.

use moneyflow_core::ports::{StoreError, StoreResult};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::corrupt;

/// The current time in UTC, truncated to whole microseconds.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.unix_timestamp_nanos() / 1_000;
    // Provably in range: it is `now` with fewer digits.
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(now)
}

/// `t` truncated to whole microseconds, the precision both backends keep.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.unix_timestamp_nanos() / 1_000;
    // In range: `t` with fewer digits.
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(t)
}

/// `t + d`, or the far future when that is past what timestamps hold (a
/// lease "forever").
pub(crate) fn add_duration(t: OffsetDateTime, d: std::time::Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d))
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59.999999 UTC))
}

/// A run status column holding something the store never writes.
pub(crate) fn corrupt_status(text: &str) -> StoreError {
    corrupt(format!("stored run status {text:?} is not a known status"))
}

/// Unix microseconds, SQLite's representation.
pub(crate) fn to_micros(t: OffsetDateTime) -> i64 {
    // i64 microseconds cover ±292,000 years; `time` supports ±9,999.
    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

pub(crate) fn from_micros(micros: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| corrupt(format!("timestamp out of range: {micros} µs")))
}

pub(crate) fn rules_to_text(rules: &Value) -> StoreResult<String> {
    serde_json::to_string(rules).map_err(|e| corrupt(format!("rules do not serialise: {e}")))
}

pub(crate) fn rules_from_text(text: &str) -> StoreResult<Value> {
    json_from_text("rules", text)
}

/// Parses JSON the store wrote itself (`what` names it in the error).
pub(crate) fn json_from_text(what: &str, text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored {what} is not JSON: {e}")))
}

/// A run's node checkpoints, kept as one JSON object.
pub(crate) fn nodes_from_text(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text)
        .map_err(|e| corrupt(format!("stored run nodes are not a JSON object: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_round_trips_through_micros() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000, 0);
        assert_eq!(from_micros(to_micros(t)).ok(), Some(t));
    }

    #[test]
    fn truncate_drops_sub_microsecond_digits() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(
            truncate(t).unix_timestamp_nanos(),
            1_700_000_000_123_456_000
        );
        assert_eq!(truncate(truncate(t)), truncate(t));
    }
}
