//! How large JSON values are, and the size limits of nodes and runs.
//!
//! A value's size is the length in bytes of its compact serialisation (what
//! the store writes), measured by walking the value: nothing is serialised
//! or allocated, and a walk with a budget stops as soon as the budget is
//! passed, so measuring a huge value costs no more than the budget.
//!
//! The limits keep one company's rules from growing a run, and the memory of
//! the process executing it, without bound: a task's resolved parameters,
//! its output and each document it produces, and a condition's output, may
//! each be at most [`SizeLimits::node_bytes`]; everything a run stores (its
//! checkpoints and documents) at most [`SizeLimits::run_bytes`]. A node past
//! a limit fails with a permanent [`LimitExceeded`] error. What a condition
//! read is recorded as a [`preview`], so a chain of conditions that read
//! each other's outputs cannot grow.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::eval::CompiledCondition;
use crate::model::{NodeKind, RuleSet};
use crate::path::{JsonContext, resolved_size};
use crate::validation::{Problem, ProblemCode};

/// The default largest resolved parameters, output or document of one node.
pub const DEFAULT_NODE_LIMIT_BYTES: usize = 256 * 1024;
/// The default largest total a run stores (checkpoints and documents).
pub const DEFAULT_RUN_LIMIT_BYTES: usize = 4 * 1024 * 1024;
/// The largest value a condition's output copies as it read it; a larger
/// one is recorded as the beginning of its JSON text.
pub const PREVIEW_BYTES: usize = 1024;

/// How large a node's data and a run's may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// Most bytes of one node's resolved parameters, of its output, and of
    /// each document it produces.
    pub node_bytes: usize,
    /// Most bytes a run stores: every node's parameters and output and the
    /// documents its tasks produce.
    pub run_bytes: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            node_bytes: DEFAULT_NODE_LIMIT_BYTES,
            run_bytes: DEFAULT_RUN_LIMIT_BYTES,
        }
    }
}

/// Which limit a node passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Node,
    Run,
}

impl Limit {
    /// The machine-readable code on the node's error.
    pub fn code(self) -> &'static str {
        match self {
            Self::Node => "node_limit_exceeded",
            Self::Run => "run_limit_exceeded",
        }
    }
}

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// A task's parameters with every `$context.` path resolved.
    Parameters,
    /// A task's or a condition's output.
    Output,
    /// A document a task produced.
    Document,
}

impl Measured {
    /// What was measured, with its verb.
    fn subject(self) -> &'static str {
        match self {
            Self::Parameters => "this node's resolved parameters are",
            Self::Output => "this node's output is",
            Self::Document => "a document of this node is",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Parameters => "this node's resolved parameters",
            Self::Output => "this node's output",
            Self::Document => "this node's document",
        }
    }
}

/// A node's data past a limit: the node fails with this permanent error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    #[error(
        "{} {actual} bytes, more than the node limit of {limit} bytes (--node-limit-bytes)",
        what.subject()
    )]
    Node {
        what: Measured,
        limit: usize,
        actual: usize,
    },
    #[error(
        "with {} the run would store {actual} bytes, more than the run limit of {limit} bytes (--run-limit-bytes)",
        what.noun()
    )]
    Run {
        what: Measured,
        limit: usize,
        actual: usize,
    },
}

impl LimitExceeded {
    pub fn limit_kind(&self) -> Limit {
        match self {
            Self::Node { .. } => Limit::Node,
            Self::Run { .. } => Limit::Run,
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        match self {
            Self::Node { limit, .. } | Self::Run { limit, .. } => *limit,
        }
    }

    /// The size that passed it, in bytes (for a run, the run's total).
    pub fn actual(&self) -> usize {
        match self {
            Self::Node { actual, .. } | Self::Run { actual, .. } => *actual,
        }
    }

    /// The node's recorded error: `{"message", "retryable": false,
    /// "attempt", "code", "limit", "actual"}`.
    pub fn to_error_json(&self, attempt: u32) -> Value {
        json!({
            "message": self.to_string(),
            "retryable": false,
            "attempt": attempt,
            "code": self.limit_kind().code(),
            "limit": self.limit(),
            "actual": self.actual(),
        })
    }
}

impl SizeLimits {
    /// Checks `size` bytes of `what` against the node limit, then against
    /// the run limit with `run_bytes` already stored; the new run total.
    pub fn admit(
        &self,
        what: Measured,
        size: usize,
        run_bytes: usize,
    ) -> Result<usize, LimitExceeded> {
        if size > self.node_bytes {
            return Err(LimitExceeded::Node {
                what,
                limit: self.node_bytes,
                actual: size,
            });
        }
        let total = run_bytes.saturating_add(size);
        if total > self.run_bytes {
            return Err(LimitExceeded::Run {
                what,
                limit: self.run_bytes,
                actual: total,
            });
        }
        Ok(total)
    }
}

/// The problems of a valid rule set whose literal data alone passes a size
/// limit, so that every run of it would fail: a task's parameters with
/// every path read as null, a condition's output with every field missing,
/// and the sum of those over the rule set against the run limit.
pub fn oversized_literals(rule_set: &RuleSet, limits: &SizeLimits) -> Vec<Problem> {
    let nothing = JsonContext::default();
    let mut problems = Vec::new();
    let mut total = 0usize;
    for (i, node) in rule_set.rules.iter().enumerate() {
        let (field, what, size) = match &node.kind {
            NodeKind::Task(task) => {
                let Some(parameters) = &task.parameters else {
                    continue;
                };
                let template = Value::Object(parameters.clone());
                (
                    "parameters",
                    "its parameters are",
                    resolved_size(&template, &nothing),
                )
            }
            NodeKind::Condition(condition) => {
                let Some(compiled) = CompiledCondition::compile(condition) else {
                    continue;
                };
                let output = serde_json::to_value(compiled.explain(&nothing)).unwrap_or_default();
                ("expect", "its output is", json_size(&output))
            }
        };
        total = total.saturating_add(size);
        if size > limits.node_bytes {
            problems.push(Problem {
                path: format!("rules[{i}].{field}"),
                code: ProblemCode::TooLarge,
                message: format!(
                    "{what} at least {size} bytes, more than the node limit of {} bytes (--node-limit-bytes): every run would fail this node",
                    limits.node_bytes
                ),
                hint: Some(
                    "keep large data in the event and read it with a `$context.event.…` path"
                        .to_owned(),
                ),
                allowed: Vec::new(),
            });
        }
    }
    if problems.is_empty() && total > limits.run_bytes {
        problems.push(Problem {
            path: "rules".to_owned(),
            code: ProblemCode::TooLarge,
            message: format!(
                "the nodes' literal parameters and values add up to at least {total} bytes, more than the run limit of {} bytes (--run-limit-bytes): every run would fail",
                limits.run_bytes
            ),
            hint: None,
            allowed: Vec::new(),
        });
    }
    problems
}

/// The size of `value`'s compact JSON text, or `None` as soon as it is
/// known to be more than `budget` bytes.
pub fn json_size_within(value: &Value, budget: usize) -> Option<usize> {
    let mut meter = Meter { total: 0, budget };
    meter.value(value).then_some(meter.total)
}

/// The size of `value`'s compact JSON text.
pub fn json_size(value: &Value) -> usize {
    json_size_within(value, usize::MAX).unwrap_or(usize::MAX)
}

/// The size of `text` as a JSON string (quotes and escapes included).
pub fn json_string_size(text: &str) -> usize {
    let mut meter = Meter {
        total: 0,
        budget: usize::MAX,
    };
    meter.string(text);
    meter.total
}

/// `value` itself when its JSON text fits in `max` bytes, else the
/// beginning of that text, ending with `…`, as a string whose own JSON
/// text fits in `max` bytes (quotes and escapes counted, so a preview of a
/// preview is no larger); the flag says whether it was cut.
pub fn preview(value: &Value, max: usize) -> (Value, bool) {
    if json_size_within(value, max).is_some() {
        return (value.clone(), false);
    }
    let mut head = Head {
        bytes: Vec::with_capacity(max),
        max,
    };
    // Stops with an error once `max` bytes are written: that is the point.
    let _ = serde_json::to_writer(&mut head, value);
    let text = match std::str::from_utf8(&head.bytes) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&head.bytes[..error.valid_up_to()]).unwrap_or_default(),
    };
    // Room for the quotes and the ellipsis (three bytes).
    let room = max.saturating_sub(5);
    let mut used = 0;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        let mut buffer = [0; 4];
        used += json_string_size(c.encode_utf8(&mut buffer)) - 2;
        if used > room {
            break;
        }
        end = at + c.len_utf8();
    }
    (Value::String(format!("{}…", &text[..end])), true)
}

/// Adds up a value's JSON text size, stopping past the budget.
struct Meter {
    total: usize,
    budget: usize,
}

impl Meter {
    /// False once the total is past the budget.
    fn add(&mut self, bytes: usize) -> bool {
        self.total = self.total.saturating_add(bytes);
        self.total <= self.budget
    }

    fn value(&mut self, value: &Value) -> bool {
        match value {
            Value::Null | Value::Bool(true) => self.add(4),
            Value::Bool(false) => self.add(5),
            Value::Number(number) => {
                let mut digits = Count(0);
                let _ = write!(digits, "{number}");
                self.add(digits.0)
            }
            Value::String(text) => self.string(text),
            Value::Array(items) => {
                self.add(2 + items.len().saturating_sub(1)) && items.iter().all(|v| self.value(v))
            }
            Value::Object(map) => {
                // Braces, a colon per entry and the commas between them.
                self.add(2 + map.len() + map.len().saturating_sub(1))
                    && map.iter().all(|(k, v)| self.string(k) && self.value(v))
            }
        }
    }

    /// A string with its quotes and escapes, as serde_json writes it.
    fn string(&mut self, text: &str) -> bool {
        // Escapes only lengthen: a string already past the budget is not
        // scanned.
        if !self.add(text.len() + 2) {
            return false;
        }
        let escapes: usize = text
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\x08' | b'\x0c' | b'\n' | b'\r' | b'\t' => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum();
        self.add(escapes)
    }
}

/// Counts what is written.
struct Count(usize);

impl std::fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Keeps the first `max` bytes written, then refuses more.
struct Head {
    bytes: Vec<u8>,
    max: usize,
}

impl std::io::Write for Head {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.max - self.bytes.len();
        if room == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let taken = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "[-+]?[0-9]{1,30}(\\.[0-9]{0,20})?(e[0-9]{1,3})?"
                .prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
            any::<String>().prop_map(Value::String),
            prop::collection::vec(
                prop::sample::select(vec![
                    '"', '\\', '\u{0}', '\n', '\u{1f}', '\u{7f}', 'é', '€', '😀', 'a'
                ]),
                0..12
            )
            .prop_map(|chars| Value::String(chars.into_iter().collect())),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_measured_size_is_the_length_of_the_serialised_text(value in arbitrary_json()) {
            let text = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(json_size(&value), text.len());
            prop_assert_eq!(json_size_within(&value, text.len()), Some(text.len()));
            if !text.is_empty() {
                prop_assert_eq!(json_size_within(&value, text.len() - 1), None);
            }
        }

        #[test]
        fn a_preview_is_the_value_or_a_cut_of_its_text(value in arbitrary_json(), max in 1usize..200) {
            let text = serde_json::to_string(&value).unwrap();
            let (preview, cut) = preview(&value, max);
            if text.len() <= max {
                prop_assert!(!cut);
                prop_assert_eq!(preview, value);
            } else {
                prop_assert!(cut);
                let shown = preview.as_str().unwrap().strip_suffix('…').unwrap();
                prop_assert!(text.starts_with(shown));
                prop_assert!(max < 5 || json_size(&preview) <= max, "{} > {}", json_size(&preview), max);
                let (again, _) = super::preview(&Value::Array(vec![preview.clone(); 3]), max);
                prop_assert!(max < 5 || json_size(&again) <= max);
            }
        }
    }

    #[test]
    fn measuring_stops_at_the_budget() {
        // A value of about a gigabyte, by reference: measuring it within a
        // small budget must not walk all of it.
        let big = Value::String("x".repeat(1 << 20));
        let wide = Value::Array(vec![big; 1024]);
        assert_eq!(json_size_within(&wide, 4096), None);
        assert_eq!(json_size_within(&json!({"a": [1, "b"]}), 100), Some(13));
    }

    #[test]
    fn literal_data_past_a_limit_is_a_problem_of_the_rule_set() {
        let catalogue = crate::catalogue::Catalogue::builtin();
        let rules = |note: &str, values: Vec<Value>| {
            crate::validation::validate_rule_set(
                &json!({"company_id": "acme", "rules": [
                    {"node_type": "condition", "node_id": "c",
                     "expect": [{"field": "$context.event.type", "operator": "in", "value": values}]},
                    {"node_type": "task", "node_id": "t", "task_name": "payment.tasks.notify",
                     "depends_on": [{"node_id": "c", "state": "success"}],
                     "parameters": {"channel": "email", "message": note, "to": "$context.event.customer.email"}}
                ]}),
                catalogue,
            )
            .unwrap()
        };
        let limits = SizeLimits {
            node_bytes: 1000,
            run_bytes: 1500,
        };
        let fine = rules("hello", vec![json!("product")]);
        assert!(oversized_literals(&fine, &limits).is_empty());

        let problems = oversized_literals(&rules(&"x".repeat(1000), vec![json!("a")]), &limits);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].path, "rules[1].parameters");
        assert_eq!(problems[0].code, ProblemCode::TooLarge);
        assert!(problems[0].message.contains("--node-limit-bytes"));

        let many = vec![json!("y".repeat(90)); 11];
        let problems = oversized_literals(&rules("hello", many), &limits);
        assert_eq!(problems[0].path, "rules[0].expect", "{problems:#?}");

        let both = oversized_literals(
            &rules(&"x".repeat(700), vec![json!("y".repeat(850))]),
            &limits,
        );
        assert_eq!(both.len(), 1, "{both:#?}");
        assert_eq!(both[0].path, "rules");
        assert!(both[0].message.contains("--run-limit-bytes"));
    }

    #[test]
    fn the_node_limit_is_checked_before_the_run_limit() {
        let limits = SizeLimits {
            node_bytes: 10,
            run_bytes: 25,
        };
        assert_eq!(limits.admit(Measured::Output, 10, 0), Ok(10));
        assert_eq!(limits.admit(Measured::Output, 10, 15), Ok(25));
        let node = limits.admit(Measured::Parameters, 11, 0).unwrap_err();
        assert_eq!(node.limit_kind(), Limit::Node);
        assert_eq!((node.limit(), node.actual()), (10, 11));
        let run = limits.admit(Measured::Document, 10, 16).unwrap_err();
        assert_eq!(run.limit_kind(), Limit::Run);
        assert_eq!((run.limit(), run.actual()), (25, 26));
        let error = run.to_error_json(2);
        assert_eq!(error["code"], "run_limit_exceeded");
        assert_eq!(error["retryable"], false);
        assert_eq!(error["limit"], 25);
        assert_eq!(error["actual"], 26);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("--run-limit-bytes")
        );
    }
}
