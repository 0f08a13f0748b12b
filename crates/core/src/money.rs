//! Money and numbers: decimals read from JSON numbers and numeric strings,
//! never through `f64`, and rounding to a currency's minor unit.
//!
//! serde_json is built with `arbitrary_precision`, so a JSON number keeps its
//! digits as written and converts to a [`Decimal`] exactly.

use std::fmt::Write as _;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Number, Value};

/// The decimal value of a JSON number or numeric string (`"120.0"`, `"-3"`,
/// `"1e3"`); `None` for anything else, including strings with spaces.
pub fn decimal_from_json(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => decimal_from_number(n),
        Value::String(s) => parse_decimal(s),
        _ => None,
    }
}

/// The exact decimal value of a JSON number; `None` when out of range.
pub fn decimal_from_number(number: &Number) -> Option<Decimal> {
    // The digits are formatted onto the stack: evaluating a condition must not allocate.
    let mut buffer = StackText::<64>::new();
    write!(buffer, "{number}").ok()?;
    parse_decimal(buffer.as_str())
}

/// Parses a strict decimal literal: optional sign, digits, optional fraction,
/// optional exponent. No spaces, underscores, `NaN` or `Infinity`.
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    if !is_decimal_literal(text) {
        return None;
    }
    if text.bytes().any(|b| b == b'e' || b == b'E') {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str(text).ok()
    }
}

fn is_decimal_literal(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let mut digit_count = i - digits_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let fraction_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        digit_count += i - fraction_start;
    }
    if digit_count == 0 {
        return false;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let exponent_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exponent_start {
            return false;
        }
    }
    i == bytes.len()
}

/// Digits after the decimal point in a currency's minor unit (ISO 4217).
/// Unknown or absent currencies use 2.
pub fn minor_unit_digits(currency: Option<&str>) -> u32 {
    match currency.map(|c| c.to_ascii_uppercase()) {
        Some(c) => match c.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        },
        None => 2,
    }
}

/// Rounds to the currency's minor unit, half to even (banker's rounding).
pub fn round_to_currency(amount: Decimal, currency: Option<&str>) -> Decimal {
    amount.round_dp_with_strategy(
        minor_unit_digits(currency),
        RoundingStrategy::MidpointNearestEven,
    )
}

/// A fixed-size text buffer, so number formatting does not allocate.
struct StackText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> std::fmt::Write for StackText<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_and_numeric_strings_are_decimals() {
        assert_eq!(decimal_from_json(&json!(120)), Some(dec("120")));
        assert_eq!(decimal_from_json(&json!("120.0")), Some(dec("120.0")));
        assert_eq!(decimal_from_json(&json!("-0.5")), Some(dec("-0.5")));
        assert_eq!(decimal_from_json(&json!("1e3")), Some(dec("1000")));
    }

    #[test]
    fn json_number_keeps_its_digits() {
        let value: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(decimal_from_json(&value), Some(dec("0.1")));
        let value: Value = serde_json::from_str("19.99").unwrap();
        assert_eq!(decimal_from_json(&value), Some(dec("19.99")));
    }

    #[test]
    fn non_numbers_are_not_decimals() {
        for text in [
            "", " 1", "1 ", "abc", "1_000", "NaN", "Infinity", ".", "-", "1e", "1.2.3", "0x10",
        ] {
            assert_eq!(parse_decimal(text), None, "{text:?}");
        }
        assert_eq!(decimal_from_json(&json!(true)), None);
        assert_eq!(decimal_from_json(&json!(null)), None);
        assert_eq!(decimal_from_json(&json!([1])), None);
    }

    #[test]
    fn rounds_half_even_to_the_minor_unit() {
        assert_eq!(round_to_currency(dec("2.345"), Some("BRL")), dec("2.34"));
        assert_eq!(round_to_currency(dec("2.355"), Some("USD")), dec("2.36"));
        assert_eq!(round_to_currency(dec("1234.5"), Some("JPY")), dec("1234"));
        assert_eq!(round_to_currency(dec("1.23456"), Some("KWD")), dec("1.235"));
        assert_eq!(round_to_currency(dec("1.005"), None), dec("1.00"));
    }

    proptest! {
        #[test]
        fn any_decimal_round_trips_through_json_text(mantissa in any::<i64>(), scale in 0u32..10) {
            let value = Decimal::new(mantissa, scale);
            let text = value.to_string();
            prop_assert_eq!(parse_decimal(&text), Some(value));
            let number: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decimal_from_json(&number), Some(value));
        }

        #[test]
        fn parsing_never_panics(text in ".{0,40}") {
            let _ = parse_decimal(&text);
        }
    }
}
