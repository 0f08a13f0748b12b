//! How values are kept in columns, the same way on both backends.
//!
//! - Timestamps: UTC, microsecond precision. `now` is truncated before it is
//!   stored *and* returned, so a record handed back by a write equals the same
//!   record read back later.
//! - Rule sets: the JSON text exactly as `serde_json` writes it, in a TEXT
//!   column (not `jsonb`), so key order and number spelling (`120.0`) survive.

use moneyflow_core::ports::StoreResult;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::corrupt;

/// The current time in UTC, truncated to whole microseconds.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let micros = now.unix_timestamp_nanos() / 1_000;
    // Provably in range: it is `now` with fewer digits.
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(now)
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
    serde_json::from_str(text).map_err(|e| corrupt(format!("stored rules are not JSON: {e}")))
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
}
