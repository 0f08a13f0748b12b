//! Condition evaluation: the operators of DESIGN §2, compiled once per rule
//! version so that evaluating a condition allocates nothing.
//!
//! Numbers and numeric strings compare as decimals (`"120.0"` equals `120`).
//! A comparison that makes no sense (`gt` between a string and a number) never
//! panics: the expectation is false and a [`Mismatch`] says why.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use crate::model::{Condition, Expectation, Trigger};
use crate::money::decimal_from_json;
use crate::path::{ContextPath, PathContext};
use crate::size::{PREVIEW_BYTES, preview};

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
    Contains,
    Ncontains,
    Startswith,
    Endswith,
    Isnull,
    Isnotnull,
}

/// How many entries an operator needs in `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one: compared with `value[0]`.
    One,
    /// One or more: membership in the whole list.
    AtLeastOne,
    /// `value` is ignored.
    None,
}

impl Operator {
    pub const ALL: [Operator; 14] = [
        Self::Eq,
        Self::Neq,
        Self::Gt,
        Self::Gte,
        Self::Lt,
        Self::Lte,
        Self::In,
        Self::Nin,
        Self::Contains,
        Self::Ncontains,
        Self::Startswith,
        Self::Endswith,
        Self::Isnull,
        Self::Isnotnull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Neq => "neq",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::In => "in",
            Self::Nin => "nin",
            Self::Contains => "contains",
            Self::Ncontains => "ncontains",
            Self::Startswith => "startswith",
            Self::Endswith => "endswith",
            Self::Isnull => "isnull",
            Self::Isnotnull => "isnotnull",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == text)
    }

    pub fn allowed() -> Vec<String> {
        Self::ALL.iter().map(|op| op.as_str().to_owned()).collect()
    }

    pub fn arity(self) -> Arity {
        match self {
            Self::In | Self::Nin => Arity::AtLeastOne,
            Self::Isnull | Self::Isnotnull => Arity::None,
            _ => Arity::One,
        }
    }
}

/// The JSON type of a value, for reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "a list",
            Self::Object => "an object",
        }
    }
}

/// Why an expectation could not be judged on its merits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// The field is missing or null and the operator needs a value.
    FieldMissing,
    /// The two sides cannot be ordered or matched.
    Incomparable { field: JsonKind, value: JsonKind },
}

impl Mismatch {
    /// A sentence for people, e.g. in a run's node result.
    pub fn describe(self, operator: Operator) -> String {
        match self {
            Self::FieldMissing => format!(
                "the field is missing or null, so `{}` cannot hold",
                operator.as_str()
            ),
            Self::Incomparable { field, value } => format!(
                "`{}` cannot compare {} with {}",
                operator.as_str(),
                field.name(),
                value.name()
            ),
        }
    }
}

/// The outcome of one expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub held: bool,
    pub mismatch: Option<Mismatch>,
}

impl Verdict {
    fn of(held: bool) -> Self {
        Self {
            held,
            mismatch: None,
        }
    }

    fn mismatch(mismatch: Mismatch) -> Self {
        Self {
            held: false,
            mismatch: Some(mismatch),
        }
    }
}

/// An operand from `value`, with its decimal reading prepared once.
#[derive(Debug, Clone, PartialEq)]
struct Operand {
    value: Value,
    decimal: Option<Decimal>,
}

impl Operand {
    fn new(value: &Value) -> Self {
        Self {
            decimal: decimal_from_json(value),
            value: value.clone(),
        }
    }
}

/// An expectation ready to evaluate: path parsed, operands pre-read.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledExpectation {
    field: ContextPath,
    field_text: String,
    operator: Operator,
    operands: Vec<Operand>,
}

impl CompiledExpectation {
    /// Compiles a validated expectation. `None` only when its path is invalid,
    /// which validation has already ruled out.
    pub fn compile(expectation: &Expectation) -> Option<Self> {
        Some(Self {
            field: ContextPath::parse(&expectation.field).ok()?,
            field_text: expectation.field.clone(),
            operator: expectation.operator,
            operands: expectation
                .value
                .iter()
                .flatten()
                .map(Operand::new)
                .collect(),
        })
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn field(&self) -> &str {
        &self.field_text
    }

    /// Judges the expectation against `context`.
    pub fn evaluate<C: PathContext + ?Sized>(&self, context: &C) -> Verdict {
        let field = self.field.resolve(context).unwrap_or(&Value::Null);
        self.evaluate_value(field)
    }

    fn evaluate_value(&self, field: &Value) -> Verdict {
        let first = self.operands.first();
        match self.operator {
            Operator::Isnull => Verdict::of(field.is_null()),
            Operator::Isnotnull => Verdict::of(!field.is_null()),
            Operator::Eq => Verdict::of(first.is_some_and(|o| equals(field, o))),
            Operator::Neq => Verdict::of(!first.is_some_and(|o| equals(field, o))),
            Operator::In => Verdict::of(self.operands.iter().any(|o| equals(field, o))),
            Operator::Nin => Verdict::of(!self.operands.iter().any(|o| equals(field, o))),
            Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
                let Some(operand) = first else {
                    return Verdict::of(false);
                };
                match order(field, operand) {
                    Ok(ordering) => Verdict::of(match self.operator {
                        Operator::Gt => ordering == Ordering::Greater,
                        Operator::Gte => ordering != Ordering::Less,
                        Operator::Lt => ordering == Ordering::Less,
                        _ => ordering != Ordering::Greater,
                    }),
                    Err(mismatch) => Verdict::mismatch(mismatch),
                }
            }
            Operator::Contains | Operator::Ncontains => {
                let negate = self.operator == Operator::Ncontains;
                let Some(operand) = first else {
                    return Verdict::of(false);
                };
                match contains(field, operand) {
                    Ok(found) => Verdict::of(found != negate),
                    // Nothing contains anything in a missing field.
                    Err(Mismatch::FieldMissing) => Verdict::of(negate),
                    Err(mismatch) => Verdict::mismatch(mismatch),
                }
            }
            Operator::Startswith | Operator::Endswith => {
                let Some(operand) = first else {
                    return Verdict::of(false);
                };
                match (field, &operand.value) {
                    (Value::String(text), Value::String(affix)) => {
                        Verdict::of(if self.operator == Operator::Startswith {
                            text.starts_with(affix.as_str())
                        } else {
                            text.ends_with(affix.as_str())
                        })
                    }
                    (Value::Null, _) => Verdict::mismatch(Mismatch::FieldMissing),
                    (field, value) => Verdict::mismatch(Mismatch::Incomparable {
                        field: JsonKind::of(field),
                        value: JsonKind::of(value),
                    }),
                }
            }
        }
    }
}

/// Equality: decimal when both sides are numeric, JSON equality otherwise.
fn equals(field: &Value, operand: &Operand) -> bool {
    if let (Some(right), Some(left)) = (operand.decimal, numeric(field)) {
        return left == right;
    }
    json_equals(field, &operand.value)
}

/// Decimal-aware JSON equality at any depth, so `[1, 2]` equals `["1.0", 2]`.
fn json_equals(left: &Value, right: &Value) -> bool {
    if let (Some(l), Some(r)) = (numeric(left), numeric(right)) {
        return l == r;
    }
    match (left, right) {
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(a, b)| json_equals(a, b))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len()
                && l.iter()
                    .all(|(k, a)| r.get(k).is_some_and(|b| json_equals(a, b)))
        }
        _ => left == right,
    }
}

fn numeric(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(_) | Value::String(_) => decimal_from_json(value),
        _ => None,
    }
}

/// Ordering: decimal when both sides are numeric, text order when both are
/// non-numeric strings (ISO dates order correctly), a mismatch otherwise.
fn order(field: &Value, operand: &Operand) -> Result<Ordering, Mismatch> {
    if field.is_null() {
        return Err(Mismatch::FieldMissing);
    }
    if let (Some(left), Some(right)) = (numeric(field), operand.decimal) {
        return Ok(left.cmp(&right));
    }
    match (field, &operand.value) {
        (Value::String(left), Value::String(right))
            if operand.decimal.is_none() && numeric(field).is_none() =>
        {
            Ok(left.as_str().cmp(right.as_str()))
        }
        (field, value) => Err(Mismatch::Incomparable {
            field: JsonKind::of(field),
            value: JsonKind::of(value),
        }),
    }
}

/// Substring for strings, membership for lists, key presence for objects.
fn contains(field: &Value, operand: &Operand) -> Result<bool, Mismatch> {
    match (field, &operand.value) {
        (Value::Null, _) => Err(Mismatch::FieldMissing),
        (Value::String(text), Value::String(needle)) => Ok(text.contains(needle.as_str())),
        (Value::Array(items), _) => Ok(items.iter().any(|item| equals(item, operand))),
        (Value::Object(map), Value::String(key)) => Ok(map.contains_key(key)),
        (field, value) => Err(Mismatch::Incomparable {
            field: JsonKind::of(field),
            value: JsonKind::of(value),
        }),
    }
}

/// A condition ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledCondition {
    expectations: Vec<CompiledExpectation>,
    match_mode: Trigger,
}

impl CompiledCondition {
    /// Compiles a validated condition; `None` only for an invalid path.
    pub fn compile(condition: &Condition) -> Option<Self> {
        Some(Self {
            expectations: condition
                .expect
                .iter()
                .map(CompiledExpectation::compile)
                .collect::<Option<Vec<_>>>()?,
            match_mode: condition.match_mode,
        })
    }

    /// Whether the condition holds, stopping at the first decisive expectation.
    pub fn holds<C: PathContext + ?Sized>(&self, context: &C) -> bool {
        match self.match_mode {
            Trigger::All => self.expectations.iter().all(|e| e.evaluate(context).held),
            Trigger::Any => self.expectations.iter().any(|e| e.evaluate(context).held),
        }
    }

    /// Every expectation's outcome with the value it saw and, when it could not
    /// be judged, the reason: what a run records and simulation shows.
    pub fn explain<C: PathContext + ?Sized>(&self, context: &C) -> ConditionOutcome {
        let expectations: Vec<ExpectationOutcome> = self
            .expectations
            .iter()
            .map(|expectation| {
                let found = expectation.field.resolve(context).unwrap_or(&Value::Null);
                let verdict = expectation.evaluate_value(found);
                // A preview, not a copy: a condition that reads another
                // condition's output must not record all of it again.
                let (actual, actual_truncated) = preview(found, PREVIEW_BYTES);
                ExpectationOutcome {
                    field: expectation.field_text.clone(),
                    operator: expectation.operator,
                    value: expectation
                        .operands
                        .iter()
                        .map(|o| o.value.clone())
                        .collect(),
                    actual,
                    actual_truncated,
                    held: verdict.held,
                    reason: verdict.mismatch.map(|m| m.describe(expectation.operator)),
                }
            })
            .collect();
        let matched = match self.match_mode {
            Trigger::All => expectations.iter().all(|e| e.held),
            Trigger::Any => expectations.iter().any(|e| e.held),
        };
        ConditionOutcome {
            matched,
            match_mode: self.match_mode,
            expectations,
        }
    }
}

/// What a condition found: recorded as the node's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionOutcome {
    pub matched: bool,
    #[serde(rename = "match")]
    pub match_mode: Trigger,
    pub expectations: Vec<ExpectationOutcome>,
}

/// One expectation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectationOutcome {
    pub field: String,
    pub operator: Operator,
    pub value: Vec<Value>,
    /// The value found at `field` (null when missing); when its JSON text is
    /// longer than [`PREVIEW_BYTES`], the beginning of that text as a string.
    pub actual: Value,
    /// Whether `actual` is such a cut preview.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub actual_truncated: bool,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::JsonContext;
    use proptest::prelude::*;
    use serde_json::json;

    fn context() -> JsonContext {
        JsonContext {
            event: json!({
                "type": "product",
                "total": "120.0",
                "discount": 5,
                "paid_at": "2026-11-28T10:00:00Z",
                "tags": ["book", "new", 3],
                "product": {"type": "book", "name": "Dune", "attrs": {"isbn": "x"}},
                "flag": true,
                "nothing": null
            }),
            ..JsonContext::default()
        }
    }

    fn check(field: &str, operator: &str, value: Value) -> Verdict {
        let expectation = Expectation {
            field: field.into(),
            operator: Operator::parse(operator).unwrap(),
            value: value.as_array().cloned(),
        };
        CompiledExpectation::compile(&expectation)
            .unwrap()
            .evaluate(&context())
    }

    fn holds(field: &str, operator: &str, value: Value) -> bool {
        check(field, operator, value).held
    }

    #[test]
    fn eq_compares_numbers_as_decimals() {
        assert!(holds("$context.event.total", "eq", json!([120])));
        assert!(holds("$context.event.total", "eq", json!(["120.00"])));
        assert!(holds("$context.event.discount", "eq", json!(["5.0"])));
        assert!(!holds("$context.event.total", "eq", json!([121])));
        assert!(holds("$context.event.type", "eq", json!(["product"])));
        assert!(!holds("$context.event.type", "eq", json!(["Product"])));
        assert!(holds("$context.event.flag", "eq", json!([true])));
        assert!(holds("$context.event.missing", "eq", json!([null])));
        assert!(holds(
            "$context.event.tags",
            "eq",
            json!([["book", "new", "3.0"]])
        ));
    }

    #[test]
    fn neq_is_the_negation_of_eq() {
        assert!(holds("$context.event.type", "neq", json!(["service"])));
        assert!(!holds("$context.event.total", "neq", json!(["120"])));
        assert!(holds("$context.event.missing", "neq", json!(["x"])));
    }

    #[test]
    fn ordering_operators() {
        assert!(holds("$context.event.total", "gt", json!([100])));
        assert!(!holds("$context.event.total", "gt", json!([120])));
        assert!(holds("$context.event.total", "gte", json!(["120"])));
        assert!(holds("$context.event.total", "lt", json!([120.5])));
        assert!(holds("$context.event.total", "lte", json!([120])));
        assert!(!holds("$context.event.total", "lte", json!([119.99])));
        assert!(holds("$context.event.paid_at", "gt", json!(["2026-01-01"])));
        assert!(holds("$context.event.paid_at", "lt", json!(["2027-01-01"])));
    }

    #[test]
    fn nonsense_comparisons_are_false_with_a_reason() {
        let verdict = check("$context.event.type", "gt", json!([5]));
        assert!(!verdict.held);
        assert_eq!(
            verdict.mismatch,
            Some(Mismatch::Incomparable {
                field: JsonKind::String,
                value: JsonKind::Number
            })
        );
        let verdict = check("$context.event.missing", "gt", json!([5]));
        assert_eq!(verdict.mismatch, Some(Mismatch::FieldMissing));
        let verdict = check("$context.event.product", "lt", json!([5]));
        assert!(!verdict.held && verdict.mismatch.is_some());
        let verdict = check("$context.event.flag", "startswith", json!(["t"]));
        assert!(!verdict.held && verdict.mismatch.is_some());
        assert_eq!(
            Mismatch::Incomparable {
                field: JsonKind::String,
                value: JsonKind::Number
            }
            .describe(Operator::Gt),
            "`gt` cannot compare a string with a number"
        );
    }

    #[test]
    fn membership() {
        assert!(holds(
            "$context.event.product.type",
            "in",
            json!(["book", "ebook"])
        ));
        assert!(!holds("$context.event.product.type", "in", json!(["dvd"])));
        assert!(holds("$context.event.total", "in", json!([1, "120"])));
        assert!(holds(
            "$context.event.product.type",
            "nin",
            json!(["dvd", "cd"])
        ));
        assert!(!holds(
            "$context.event.product.type",
            "nin",
            json!(["book"])
        ));
        assert!(holds("$context.event.missing", "nin", json!(["book"])));
        assert!(holds("$context.event.missing", "in", json!([null])));
    }

    #[test]
    fn contains_on_strings_lists_and_objects() {
        assert!(holds(
            "$context.event.product.name",
            "contains",
            json!(["un"])
        ));
        assert!(!holds(
            "$context.event.product.name",
            "contains",
            json!(["xyz"])
        ));
        assert!(holds("$context.event.tags", "contains", json!(["new"])));
        assert!(holds("$context.event.tags", "contains", json!(["3.00"])));
        assert!(holds(
            "$context.event.product.attrs",
            "contains",
            json!(["isbn"])
        ));
        assert!(holds("$context.event.tags", "ncontains", json!(["old"])));
        assert!(!holds("$context.event.tags", "ncontains", json!(["book"])));
        assert!(!holds("$context.event.missing", "contains", json!(["a"])));
        assert!(holds("$context.event.missing", "ncontains", json!(["a"])));
        let verdict = check("$context.event.discount", "contains", json!(["5"]));
        assert!(!verdict.held && verdict.mismatch.is_some());
        let verdict = check("$context.event.discount", "ncontains", json!(["5"]));
        assert!(!verdict.held && verdict.mismatch.is_some());
    }

    #[test]
    fn affixes() {
        assert!(holds(
            "$context.event.product.name",
            "startswith",
            json!(["Du"])
        ));
        assert!(!holds(
            "$context.event.product.name",
            "startswith",
            json!(["ne"])
        ));
        assert!(holds(
            "$context.event.product.name",
            "endswith",
            json!(["ne"])
        ));
        assert_eq!(
            check("$context.event.missing", "endswith", json!(["x"])).mismatch,
            Some(Mismatch::FieldMissing)
        );
    }

    #[test]
    fn null_checks_ignore_value() {
        assert!(holds("$context.event.missing", "isnull", json!(null)));
        assert!(holds("$context.event.nothing", "isnull", json!([])));
        assert!(!holds("$context.event.type", "isnull", json!(["ignored"])));
        assert!(holds("$context.event.type", "isnotnull", json!(null)));
        assert!(!holds("$context.event.nothing", "isnotnull", json!(null)));
    }

    #[test]
    fn match_all_and_any() {
        let condition = |mode| Condition {
            expect: vec![
                Expectation {
                    field: "$context.event.type".into(),
                    operator: Operator::Eq,
                    value: Some(vec![json!("product")]),
                },
                Expectation {
                    field: "$context.event.total".into(),
                    operator: Operator::Gt,
                    value: Some(vec![json!(1000)]),
                },
            ],
            match_mode: mode,
        };
        let all = CompiledCondition::compile(&condition(Trigger::All)).unwrap();
        let any = CompiledCondition::compile(&condition(Trigger::Any)).unwrap();
        assert!(!all.holds(&context()));
        assert!(any.holds(&context()));
        let explained = all.explain(&context());
        assert!(!explained.matched);
        assert_eq!(explained.expectations[0].actual, json!("product"));
        assert!(explained.expectations[0].held);
        assert!(!explained.expectations[1].held);
        assert!(any.explain(&context()).matched);
    }

    #[test]
    fn a_condition_records_a_cut_preview_of_a_large_value_and_judges_all_of_it() {
        let long = "x".repeat(10 * PREVIEW_BYTES);
        let context = JsonContext {
            event: json!({"note": format!("{long}end")}),
            ..JsonContext::default()
        };
        let condition = Condition {
            expect: vec![Expectation {
                field: "$context.event.note".into(),
                operator: Operator::Endswith,
                value: Some(vec![json!("end")]),
            }],
            match_mode: Trigger::All,
        };
        let explained = CompiledCondition::compile(&condition)
            .unwrap()
            .explain(&context);
        assert!(explained.matched, "judged on the whole value");
        let outcome = &explained.expectations[0];
        assert!(outcome.actual_truncated);
        let shown = outcome.actual.as_str().unwrap();
        assert!(shown.len() <= PREVIEW_BYTES, "{}", shown.len());
        assert!(shown.starts_with("\"xxx") && shown.ends_with('…'));
        let recorded = serde_json::to_value(&explained).unwrap();
        assert_eq!(recorded["expectations"][0]["actual_truncated"], true);
        let small = CompiledCondition::compile(&condition)
            .unwrap()
            .explain(&JsonContext {
                event: json!({"note": "the end"}),
                ..JsonContext::default()
            });
        let recorded = serde_json::to_value(&small).unwrap();
        assert_eq!(recorded["expectations"][0]["actual"], "the end");
        assert!(
            recorded["expectations"][0]
                .get("actual_truncated")
                .is_none()
        );
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[-+]?[0-9]{0,6}(\\.[0-9]{0,4})?".prop_map(Value::String),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::hash_map("[a-z]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_operator_panics_on_any_input(field in arbitrary_json(), values in prop::collection::vec(arbitrary_json(), 0..3)) {
            let context = JsonContext { event: json!({"f": field}), ..JsonContext::default() };
            for operator in Operator::ALL {
                let expectation = Expectation { field: "$context.event.f".into(), operator, value: Some(values.clone()) };
                let compiled = CompiledExpectation::compile(&expectation).unwrap();
                let verdict = compiled.evaluate(&context);
                if verdict.mismatch.is_some() {
                    prop_assert!(!verdict.held);
                }
            }
        }

        #[test]
        fn numbers_and_their_strings_are_equal(mantissa in any::<i32>(), scale in 0u32..6, zeros in 0usize..3) {
            let value = Decimal::new(mantissa.into(), scale);
            let mut text = value.to_string();
            if zeros > 0 {
                if !text.contains('.') { text.push('.'); }
                text.push_str(&"0".repeat(zeros));
            }
            let number: Value = serde_json::from_str(&value.to_string()).unwrap();
            let context = JsonContext { event: json!({"f": text}), ..JsonContext::default() };
            let expectation = Expectation { field: "$context.event.f".into(), operator: Operator::Eq, value: Some(vec![number]) };
            prop_assert!(CompiledExpectation::compile(&expectation).unwrap().evaluate(&context).held);
        }

        #[test]
        fn gt_and_lte_are_complements_for_numbers(a in any::<i64>(), b in any::<i64>()) {
            let context = JsonContext { event: json!({"f": a}), ..JsonContext::default() };
            let verdict = |operator| {
                let expectation = Expectation { field: "$context.event.f".into(), operator, value: Some(vec![json!(b)]) };
                CompiledExpectation::compile(&expectation).unwrap().evaluate(&context).held
            };
            prop_assert_eq!(verdict(Operator::Gt), !verdict(Operator::Lte));
            prop_assert_eq!(verdict(Operator::Lt), !verdict(Operator::Gte));
            prop_assert_eq!(verdict(Operator::Eq), a == b);
        }
    }
}
