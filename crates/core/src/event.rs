//! Payment events (DESIGN §5): untrusted JSON in, a [`PaymentEvent`] or every
//! problem out.
//!
//! Like the rule validator, this reads the raw JSON instead of deserialising,
//! so that a 422 lists every field at fault at once, each with its path
//! (`total`, `product`) and what is allowed. Fields the format does not name
//! are *not* problems: they are kept as given (the stored event is the body
//! as received) for rules to read through `$context.event.…`.
//!
//! Amounts are read with [`decimal_from_json`] from JSON numbers or numeric
//! strings, never through `f64`, so `"120.10"` stays exactly 120.10.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::money::decimal_from_json;
use crate::suggest::Suggester;
use crate::validation::{Problem, ProblemCode};

/// Limits on an event, beyond the body size the server enforces.
pub mod limits {
    /// Deepest nesting of objects and lists; the event itself is level 1.
    pub const MAX_DEPTH: usize = 32;
    /// Longest `company_id` and `event_id`.
    pub const MAX_ID_LEN: usize = 128;
}

/// What was paid for: the event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Product,
    DigitalProduct,
    Subscription,
    Service,
}

impl EventType {
    /// Every accepted `type`, in the order the original format lists them.
    pub const ALLOWED: &'static [&'static str] =
        &["product", "digital_product", "subscription", "service"];

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "product" => Some(Self::Product),
            "digital_product" => Some(Self::DigitalProduct),
            "subscription" => Some(Self::Subscription),
            "service" => Some(Self::Service),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::DigitalProduct => "digital_product",
            Self::Subscription => "subscription",
            Self::Service => "service",
        }
    }
}

/// The fields of a valid payment event the router needs. The event itself
/// (with every further field) is stored as received.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentEvent {
    pub company_id: String,
    pub event_type: EventType,
    pub total: Decimal,
    pub discount: Option<Decimal>,
    pub tax: Option<Decimal>,
    pub fees: Option<Decimal>,
    /// ISO 4217 code, three upper-case letters.
    pub currency: Option<String>,
    /// The sender's own id for the event, if it gave one.
    pub event_id: Option<String>,
}

/// The named fields, for typo hints on a missing required field.
const KNOWN_FIELDS: &[&str] = &[
    "company_id",
    "type",
    "total",
    "discount",
    "tax",
    "fees",
    "currency",
    "event_id",
    "product",
    "digital_product",
    "subscription",
    "service",
];

/// The optional detail objects, one per event type.
const DETAIL_OBJECTS: &[&str] = &["product", "digital_product", "subscription", "service"];

const COMPANY_ID_RULE: &str = "1 to 128 letters, digits, `-` or `_`";
const EVENT_ID_RULE: &str = "1 to 128 letters, digits, `_`, `.`, `:` or `-`";

/// Checks `input` against the payment event format; every problem is listed,
/// in field order.
pub fn validate_event(input: &Value) -> Result<PaymentEvent, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(object) = input.as_object() else {
        problems.push(problem(
            "",
            ProblemCode::WrongType,
            format!(
                "a payment event must be a JSON object with `company_id`, `type` and `total`, not {}",
                kind_name(input)
            ),
        ));
        return Err(problems);
    };

    let company_id = required_id(
        object,
        "company_id",
        is_company_id,
        COMPANY_ID_RULE,
        &mut problems,
    );
    let event_type = event_type(object, &mut problems);
    let total = match object.get("total") {
        None | Some(Value::Null) => {
            missing(
                object,
                "total",
                "the amount paid, e.g. \"120.00\"",
                &mut problems,
            );
            None
        }
        Some(value) => amount("total", value, &mut problems),
    };
    let discount = optional_amount(object, "discount", &mut problems);
    let tax = optional_amount(object, "tax", &mut problems);
    let fees = optional_amount(object, "fees", &mut problems);
    let currency = currency(object, &mut problems);
    let event_id = match object.get("event_id") {
        None | Some(Value::Null) => None,
        Some(value) => id_value("event_id", value, is_event_id, EVENT_ID_RULE, &mut problems),
    };
    for &field in DETAIL_OBJECTS {
        match object.get(field) {
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(other) => problems.push(problem(
                field,
                ProblemCode::WrongType,
                format!(
                    "`{field}` must be an object with the {} details, not {}",
                    field.replace('_', " "),
                    kind_name(other)
                ),
            )),
        }
    }
    if let Some(path) = first_too_deep(input) {
        problems.push(problem(
            path,
            ProblemCode::TooMany,
            format!(
                "the event nests objects and lists more than {} levels deep here",
                limits::MAX_DEPTH
            ),
        ));
    }

    match (company_id, event_type, total) {
        (Some(company_id), Some(event_type), Some(total)) if problems.is_empty() => {
            Ok(PaymentEvent {
                company_id,
                event_type,
                total,
                discount,
                tax,
                fees,
                currency,
                event_id,
            })
        }
        _ => Err(problems),
    }
}

fn problem(path: impl Into<String>, code: ProblemCode, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        code,
        message: message.into(),
        hint: None,
        allowed: Vec::new(),
    }
}

/// A missing required field; the hint names a present key that looks like a
/// typo of it (`totl` for `total`), since further fields are otherwise kept
/// silently.
fn missing(object: &Map<String, Value>, field: &str, what: &str, problems: &mut Vec<Problem>) {
    let mut report = problem(
        field,
        ProblemCode::Missing,
        format!("`{field}` is required: {what}"),
    );
    report.hint = Suggester::default()
        .nearest(
            field,
            object
                .keys()
                .map(String::as_str)
                .filter(|key| !KNOWN_FIELDS.contains(key)),
        )
        .map(|key| format!("the event has `{key}`: did you mean `{field}`?"));
    problems.push(report);
}

fn required_id(
    object: &Map<String, Value>,
    field: &str,
    rule: fn(&str) -> bool,
    rule_text: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match object.get(field) {
        None | Some(Value::Null) => {
            missing(
                object,
                field,
                "the id of the company the payment is for",
                problems,
            );
            None
        }
        Some(value) => id_value(field, value, rule, rule_text, problems),
    }
}

fn id_value(
    field: &str,
    value: &Value,
    rule: fn(&str) -> bool,
    rule_text: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    match value {
        Value::String(id) if rule(id) => Some(id.clone()),
        Value::String(id) => {
            problems.push(problem(
                field,
                ProblemCode::InvalidValue,
                format!("`{field}` must be {rule_text}; got {}", brief(id)),
            ));
            None
        }
        other => {
            problems.push(problem(
                field,
                ProblemCode::WrongType,
                format!(
                    "`{field}` must be a string ({rule_text}), not {}",
                    kind_name(other)
                ),
            ));
            None
        }
    }
}

fn event_type(object: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<EventType> {
    let allowed = || EventType::ALLOWED.iter().map(|s| (*s).to_owned()).collect();
    match object.get("type") {
        None | Some(Value::Null) => {
            missing(object, "type", "what was paid for", problems);
            if let Some(last) = problems.last_mut() {
                last.allowed = allowed();
            }
            None
        }
        Some(Value::String(text)) => match EventType::parse(text) {
            Some(event_type) => Some(event_type),
            None => {
                let mut report = problem(
                    "type",
                    ProblemCode::UnknownValue,
                    format!(
                        "unknown event type {}; allowed: {}",
                        brief(text),
                        EventType::ALLOWED.join(", ")
                    ),
                );
                report.hint = Suggester::default()
                    .nearest(text, EventType::ALLOWED.iter().copied())
                    .map(|candidate| format!("did you mean `{candidate}`?"));
                report.allowed = allowed();
                problems.push(report);
                None
            }
        },
        Some(other) => {
            let mut report = problem(
                "type",
                ProblemCode::WrongType,
                format!("`type` must be a string, not {}", kind_name(other)),
            );
            report.allowed = allowed();
            problems.push(report);
            None
        }
    }
}

/// A decimal ≥ 0 given as a JSON number or a numeric string.
fn amount(field: &str, value: &Value, problems: &mut Vec<Problem>) -> Option<Decimal> {
    let hint = || {
        Some(format!(
            "send a decimal of at least 0, as a number or a string, e.g. \"{field}\": \"120.00\""
        ))
    };
    match value {
        // `-0` is not negative, but a sign says it was meant to be.
        Value::Number(_) | Value::String(_) => match decimal_from_json(value) {
            Some(amount)
                if amount >= Decimal::ZERO
                    && !value.as_str().is_some_and(|t| t.starts_with('-')) =>
            {
                Some(amount)
            }
            Some(_) => {
                problems.push(problem(
                    field,
                    ProblemCode::InvalidValue,
                    format!("`{field}` must not be negative; got {}", brief_value(value)),
                ));
                None
            }
            None => {
                let mut report = problem(
                    field,
                    ProblemCode::InvalidValue,
                    format!(
                        "`{field}` must be a decimal amount (or is out of range); got {}",
                        brief_value(value)
                    ),
                );
                report.hint = hint();
                problems.push(report);
                None
            }
        },
        other => {
            let mut report = problem(
                field,
                ProblemCode::WrongType,
                format!(
                    "`{field}` must be a decimal amount (a number or a numeric string), not {}",
                    kind_name(other)
                ),
            );
            report.hint = hint();
            problems.push(report);
            None
        }
    }
}

fn optional_amount(
    object: &Map<String, Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Decimal> {
    match object.get(field) {
        None | Some(Value::Null) => None,
        Some(value) => amount(field, value, problems),
    }
}

fn currency(object: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<String> {
    match object.get("currency") {
        None | Some(Value::Null) => None,
        Some(Value::String(code)) if is_currency_code(code) => Some(code.clone()),
        Some(Value::String(code)) => {
            let mut report = problem(
                "currency",
                ProblemCode::InvalidValue,
                format!(
                    "`currency` must be an ISO 4217 code: three upper-case letters; got {}",
                    brief(code)
                ),
            );
            if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
                report.hint = Some(format!("did you mean `{}`?", code.to_ascii_uppercase()));
            }
            problems.push(report);
            None
        }
        Some(other) => {
            problems.push(problem(
                "currency",
                ProblemCode::WrongType,
                format!(
                    "`currency` must be a string (an ISO 4217 code such as \"BRL\"), not {}",
                    kind_name(other)
                ),
            ));
            None
        }
    }
}

fn is_company_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= limits::MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[A-Za-z0-9_.:-]{1,128}$`: wide enough for the ids payment providers
/// send (`evt_…`, `ch:123.4`), narrow enough to be safe in logs and URLs.
pub fn is_event_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= limits::MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn is_currency_code(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// The path of the first object or list nested deeper than
/// [`limits::MAX_DEPTH`], if any. The recursion stops at that depth, so it
/// is bounded whatever the input.
fn first_too_deep(value: &Value) -> Option<String> {
    enum Segment<'a> {
        Key(&'a str),
        Index(usize),
    }

    fn walk<'a>(value: &'a Value, level: usize, path: &mut Vec<Segment<'a>>) -> bool {
        let is_container = matches!(value, Value::Object(_) | Value::Array(_));
        if is_container && level > limits::MAX_DEPTH {
            return true;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    path.push(Segment::Key(key));
                    if walk(child, level + 1, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    path.push(Segment::Index(index));
                    if walk(child, level + 1, path) {
                        return true;
                    }
                    path.pop();
                }
            }
            _ => {}
        }
        false
    }

    let mut path = Vec::new();
    if !walk(value, 1, &mut path) {
        return None;
    }
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Index(index) => {
                text.push('[');
                text.push_str(&index.to_string());
                text.push(']');
            }
        }
    }
    Some(text)
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A string quoted for a message, cut at 60 characters.
fn brief(text: &str) -> String {
    if text.chars().count() > 60 {
        format!("{:?}…", text.chars().take(60).collect::<String>())
    } else {
        format!("{text:?}")
    }
}

fn brief_value(value: &Value) -> String {
    match value {
        Value::String(text) => brief(text),
        other => {
            let text = other.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(60).collect::<String>())
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn problems(input: Value) -> Vec<Problem> {
        validate_event(&input).expect_err("invalid")
    }

    fn paths(input: Value) -> Vec<String> {
        problems(input).into_iter().map(|p| p.path).collect()
    }

    fn book() -> Value {
        json!({
            "company_id": "demo", "type": "product", "total": "120.00", "currency": "BRL",
            "product": {"id": "book-1", "type": "book"}, "agent_id": "agent-7"
        })
    }

    #[test]
    fn a_complete_event_is_read_exactly() {
        let event = validate_event(&json!({
            "company_id": "acme", "type": "digital_product", "total": 19.99,
            "discount": "0.10", "tax": 0, "fees": "1e1", "currency": "USD",
            "event_id": "evt_1:a.b-c", "digital_product": {"id": "e-1"}, "customer": {"x": 1}
        }))
        .expect("valid");
        assert_eq!(
            event,
            PaymentEvent {
                company_id: "acme".into(),
                event_type: EventType::DigitalProduct,
                total: dec("19.99"),
                discount: Some(dec("0.10")),
                tax: Some(Decimal::ZERO),
                fees: Some(dec("10")),
                currency: Some("USD".into()),
                event_id: Some("evt_1:a.b-c".into()),
            }
        );
    }

    #[test]
    fn the_demo_book_and_each_type_are_valid() {
        assert_eq!(validate_event(&book()).unwrap().total, dec("120.00"));
        for kind in EventType::ALLOWED {
            let event = validate_event(&json!({"company_id": "c", "type": kind, "total": 1}))
                .expect("valid");
            assert_eq!(event.event_type.as_str(), *kind);
            assert_eq!(EventType::parse(kind), Some(event.event_type));
        }
    }

    #[test]
    fn optional_fields_may_be_null() {
        let event = validate_event(&json!({
            "company_id": "c", "type": "service", "total": "0", "discount": null,
            "currency": null, "event_id": null, "service": null
        }))
        .expect("valid");
        assert_eq!(event.discount, None);
        assert_eq!(event.event_id, None);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let found = paths(json!({
            "type": "gift", "total": "abc", "discount": {"a": 1}, "tax": -1, "fees": true,
            "currency": "brl", "event_id": "has spaces", "product": [1], "service": "x"
        }));
        assert_eq!(
            found,
            [
                "company_id",
                "type",
                "total",
                "discount",
                "tax",
                "fees",
                "currency",
                "event_id",
                "product",
                "service"
            ]
        );
    }

    #[test]
    fn missing_fields_are_named_and_typos_hinted() {
        let found = problems(json!({"company_id": "c", "typ": "product", "totl": 1}));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, "type");
        assert_eq!(found[0].code, ProblemCode::Missing);
        assert_eq!(found[0].allowed, EventType::ALLOWED);
        assert!(found[0].hint.as_deref().unwrap().contains("`typ`"));
        assert_eq!(found[1].path, "total");
        assert!(found[1].hint.as_deref().unwrap().contains("`totl`"));
    }

    #[test]
    fn unknown_type_lists_the_allowed_ones() {
        let found = problems(json!({"company_id": "c", "type": "produt", "total": 1}));
        assert_eq!(found[0].code, ProblemCode::UnknownValue);
        assert_eq!(found[0].allowed, EventType::ALLOWED);
        assert!(found[0].message.contains("digital_product"));
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `product`?"));
        let found = problems(json!({"company_id": "c", "type": 3, "total": 1}));
        assert_eq!(found[0].code, ProblemCode::WrongType);
    }

    #[test]
    fn amounts_are_non_negative_decimals() {
        for bad in [
            json!("abc"),
            json!("-1"),
            json!(-0.01),
            json!(" 1"),
            json!("1e400"),
        ] {
            let found = problems(json!({"company_id": "c", "type": "product", "total": bad}));
            assert_eq!(found.len(), 1, "{bad}");
            assert_eq!(found[0].path, "total");
            assert_eq!(found[0].code, ProblemCode::InvalidValue, "{bad}");
        }
        let huge: Value = serde_json::from_str("1e400").unwrap();
        assert_eq!(
            paths(json!({"company_id": "c", "type": "product", "total": huge})),
            ["total"]
        );
        for bad in [json!(true), json!([1]), json!({"amount": 1})] {
            let found = problems(json!({"company_id": "c", "type": "product", "total": bad}));
            assert_eq!(found[0].code, ProblemCode::WrongType);
        }
        let exact: Value = serde_json::from_str(
            r#"{"company_id": "c", "type": "product", "total": 0.1000000000000000055511151231257827}"#,
        )
        .unwrap();
        assert_eq!(
            validate_event(&exact).unwrap().total,
            dec("0.1000000000000000055511151231257827")
        );
    }

    #[test]
    fn ids_and_currency_follow_their_rules() {
        let base = |extra: Value| {
            let mut event = json!({"company_id": "c", "type": "product", "total": 1});
            for (key, value) in extra.as_object().unwrap() {
                event[key] = value.clone();
            }
            event
        };
        assert!(validate_event(&base(json!({"event_id": "a".repeat(128)}))).is_ok());
        assert_eq!(
            paths(base(json!({"event_id": "a".repeat(129)}))),
            ["event_id"]
        );
        assert_eq!(paths(base(json!({"event_id": ""}))), ["event_id"]);
        assert_eq!(paths(base(json!({"event_id": 12}))), ["event_id"]);
        assert_eq!(paths(base(json!({"company_id": "a/b"}))), ["company_id"]);
        assert_eq!(paths(base(json!({"company_id": "a.b"}))), ["company_id"]);
        for bad in ["brl", "BR", "BRLX", "B1L", "ÉUR"] {
            assert_eq!(paths(base(json!({"currency": bad}))), ["currency"], "{bad}");
        }
        let found = problems(base(json!({"currency": "brl"})));
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `BRL`?"));
    }

    fn nested(levels: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!({ "a": value });
        }
        value
    }

    #[test]
    fn nesting_is_limited() {
        let mut event = book();
        // The event is level 1, `product` level 2: 30 more objects reach 32.
        event["product"]["deep"] = nested(30);
        assert!(validate_event(&event).is_ok());
        event["product"]["deep"] = nested(31);
        let found = problems(event.clone());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, ProblemCode::TooMany);
        let expected = format!("product.deep{}", ".a".repeat(30));
        assert_eq!(found[0].path, expected);

        event["product"]["deep"] = json!([[[nested(40)]]]);
        let found = problems(event);
        assert!(
            found[0].path.starts_with("product.deep[0][0][0].a"),
            "{}",
            found[0].path
        );
    }

    #[test]
    fn a_non_object_is_one_problem_at_the_root() {
        for input in [json!(null), json!([]), json!("x"), json!(1)] {
            let found = problems(input);
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].path, "");
            assert_eq!(found[0].code, ProblemCode::WrongType);
        }
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "-?[0-9]{1,30}(\\.[0-9]{1,12})?([eE][-+]?[0-9]{1,4})?"
                .prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
            "[-a-zA-Z0-9_ .:é]{0,12}".prop_map(Value::String),
            prop::sample::select(EventType::ALLOWED).prop_map(|s| Value::String(s.to_owned())),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(40, 256, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            prop::sample::select(KNOWN_FIELDS).prop_map(str::to_owned),
                            "[a-z_]{1,8}"
                        ],
                        inner
                    ),
                    0..6
                )
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_json_never_panics(input in any_json()) {
            match validate_event(&input) {
                Ok(event) => {
                    prop_assert!(event.total >= Decimal::ZERO);
                    prop_assert_eq!(input["type"].as_str(), Some(event.event_type.as_str()));
                }
                Err(found) => prop_assert!(!found.is_empty()),
            }
        }

        #[test]
        fn any_object_with_the_required_fields_and_any_extras_is_valid(
            extras in prop::collection::vec(("[a-z]{1,8}_x", any_json()), 0..5),
            total in 0u64..1_000_000_000,
        ) {
            let mut event = json!({"company_id": "c", "type": "service", "total": total.to_string()});
            for (key, value) in extras {
                event[key] = value;
            }
            let deep = first_too_deep(&event).is_some();
            prop_assert_eq!(validate_event(&event).is_ok(), !deep);
        }
    }
}
