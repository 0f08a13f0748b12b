//! Validation: untrusted JSON in, a [`RuleSet`] or every problem out.
//!
//! The validator reads the raw JSON rather than deserialising into the model,
//! so that it can report every problem at once, each with the JSON path at
//! fault (`rules[3].depends_on[0].node_id`), what is allowed, and a hint (the
//! nearest existing node id, task name or parameter for a typo).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalogue::{Catalogue, TaskSpec};
use crate::eval::{Arity, Operator};
use crate::model::{
    Condition, Dependency, DependencyState, Expectation, Node, NodeKind, NodeType, RetryPolicy,
    RuleSet, Task, Trigger, UiPosition, limits,
};
use crate::path::{ContextPath, PREFIX, context_strings};
use crate::suggest::Suggester;

/// One thing wrong with a rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// JSON path at fault, e.g. `rules[1].depends_on[0].node_id`; empty for
    /// the document itself.
    pub path: String,
    pub code: ProblemCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
}

/// Machine-readable kind of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// A required field is absent.
    Missing,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field's value is out of range or badly formed.
    InvalidValue,
    /// A value is not one of the allowed ones (`node_type`, `operator`, `state`…).
    UnknownValue,
    /// A field the format does not have (often a typo).
    UnknownField,
    /// Two nodes share a `node_id`, or a node lists a dependency twice.
    Duplicate,
    /// A reference to a node that does not exist.
    DanglingReference,
    /// The dependencies form a cycle.
    Cycle,
    /// An operator got the wrong number of values.
    Arity,
    /// A `task_name` not in the catalogue.
    UnknownTask,
    /// A parameter the task does not know.
    UnknownParameter,
    /// A parameter whose literal value does not fit the task's schema.
    InvalidParameter,
    /// A malformed `$context.` path.
    InvalidPath,
    /// A `$context.nodes.X` reference to a node that is not upstream.
    NotAncestor,
    /// Beyond a limit (nodes, dependencies, expectations, values).
    TooMany,
    /// A JSON number no part of MoneyFlow can hold (`1e999999`), see
    /// [`numbers_out_of_range`].
    NumberOutOfRange,
    /// Literal data larger than the node or run size limit allows.
    TooLarge,
}

/// Every problem found, in document order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationReport {
    pub problems: Vec<Problem>,
}

impl ValidationReport {
    /// The problems at one path.
    pub fn at(&self, path: &str) -> Vec<&Problem> {
        self.problems.iter().filter(|p| p.path == path).collect()
    }
}

/// Fields the API echoes back in a saved rule set; accepted (and ignored) so a
/// client can post back what it read.
const ECHOED_FIELDS: &[&str] = &["id", "version", "created_at", "updated_at"];
const TOP_FIELDS: &[&str] = &["company_id", "rules"];
const NODE_FIELDS: &[&str] = &["node_id", "node_type", "depends_on", "trigger", "ui"];
const CONDITION_FIELDS: &[&str] = &["expect", "match"];
const TASK_FIELDS: &[&str] = &["task_name", "parameters", "retry", "timeout_ms"];
const DEPENDENCY_FIELDS: &[&str] = &["node_id", "state"];
const EXPECTATION_FIELDS: &[&str] = &["field", "operator", "value"];
const RETRY_FIELDS: &[&str] = &["max_attempts", "initial_backoff_ms", "max_backoff_ms"];
const UI_FIELDS: &[&str] = &["x", "y"];

/// Longest number literal accepted, in characters: more than any
/// double-precision or 28-digit decimal value needs.
pub const MAX_NUMBER_LEN: usize = 64;

/// Whether a JSON number can be held without turning into something else:
/// finite as a double (so every JSON reader gets the same value back), not
/// a non-zero value that rounds to zero, and at most [`MAX_NUMBER_LEN`]
/// characters.
pub fn number_in_range(number: &serde_json::Number) -> bool {
    let text = number.as_str();
    if text.len() > MAX_NUMBER_LEN {
        return false;
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value != 0.0 => true,
        // Zero only when written as zero, not as `1e-999999`.
        Ok(0.0) => !text
            .split(['e', 'E'])
            .next()
            .unwrap_or_default()
            .bytes()
            .any(|b| matches!(b, b'1'..=b'9')),
        _ => false,
    }
}

/// Every number in `value` that is not [`number_in_range`], each as a
/// problem at its JSON path (`rules[0].ui.x`): the first `keep`, and how
/// many there are in all.
pub fn numbers_out_of_range(value: &Value, keep: usize) -> (Vec<Problem>, usize) {
    fn walk(value: &Value, at: &mut String, keep: usize, found: &mut (Vec<Problem>, usize)) {
        match value {
            Value::Number(number) if !number_in_range(number) => {
                found.1 += 1;
                if found.0.len() < keep {
                    let path = if at.is_empty() {
                        "(the body)"
                    } else {
                        at.as_str()
                    };
                    found.0.push(Problem {
                        path: at.to_string(),
                        code: ProblemCode::NumberOutOfRange,
                        message: format!(
                            "the number at `{path}` (`{}`) is out of range: numbers must be finite \
                             double-precision values (about ±1.8e308), not round to zero, and be \
                             written in at most {MAX_NUMBER_LEN} characters",
                            brief_text(number.as_str())
                        ),
                        hint: Some(
                            "send an amount as a decimal string, e.g. \"120.00\"".to_owned(),
                        ),
                        allowed: Vec::new(),
                    });
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let length = at.len();
                    // Writing to a String cannot fail.
                    let _ = write!(at, "[{i}]");
                    walk(item, at, keep, found);
                    at.truncate(length);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let length = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(key);
                    walk(item, at, keep, found);
                    at.truncate(length);
                }
            }
            _ => {}
        }
    }
    let mut found = (Vec::new(), 0);
    walk(value, &mut String::new(), keep, &mut found);
    found
}

/// Checks `input` against the rule model and the catalogue.
pub fn validate_rule_set(
    input: &Value,
    catalogue: &Catalogue,
) -> Result<RuleSet, ValidationReport> {
    validate_with_hints(input, catalogue, &mut Suggester::default())
}

/// [`validate_rule_set`] with the hints' work charged to `hints`.
pub(crate) fn validate_with_hints(
    input: &Value,
    catalogue: &Catalogue,
    hints: &mut Suggester,
) -> Result<RuleSet, ValidationReport> {
    let mut validator = Validator {
        catalogue,
        problems: Vec::new(),
        hints,
    };
    let rule_set = validator.rule_set(input);
    match rule_set {
        Some(rule_set) if validator.problems.is_empty() => Ok(rule_set),
        _ => Err(ValidationReport {
            problems: validator.problems,
        }),
    }
}

/// What graph checks need from a node, even when the node itself is invalid.
#[derive(Default)]
struct NodeDraft {
    node_id: Option<String>,
    /// (index in `depends_on`, referenced id).
    dependencies: Vec<(usize, String)>,
    /// (JSON path of the string, referenced node id).
    node_references: Vec<(String, String)>,
    node: Option<Node>,
}

struct Validator<'c> {
    catalogue: &'c Catalogue,
    problems: Vec<Problem>,
    /// Bounds the "did you mean" work of the whole rule set.
    hints: &'c mut Suggester,
}

impl Validator<'_> {
    /// `did you mean `…`?` for the candidate nearest `input`, if any.
    fn did_you_mean<'a>(
        &mut self,
        input: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        self.hints
            .nearest(input, candidates)
            .map(|n| format!("did you mean `{n}`?"))
    }

    fn report(
        &mut self,
        path: impl Into<String>,
        code: ProblemCode,
        message: impl Into<String>,
    ) -> &mut Problem {
        self.problems.push(Problem {
            path: path.into(),
            code,
            message: message.into(),
            hint: None,
            allowed: Vec::new(),
        });
        self.problems.last_mut().expect("just pushed")
    }

    fn rule_set(&mut self, input: &Value) -> Option<RuleSet> {
        let Some(object) = input.as_object() else {
            self.report(
                "",
                ProblemCode::WrongType,
                format!(
                    "the rule set must be a JSON object with `company_id` and `rules`, not {}",
                    kind_name(input)
                ),
            );
            return None;
        };
        let allowed: Vec<&str> = TOP_FIELDS.iter().chain(ECHOED_FIELDS).copied().collect();
        self.unknown_fields(object, "", &allowed, TOP_FIELDS);
        let company_id = self.identifier(object, "company_id", "company_id");
        let items = match object.get("rules") {
            None => {
                self.report(
                    "rules",
                    ProblemCode::Missing,
                    "`rules` is required: a list of nodes (it may be empty)",
                );
                return None;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.report(
                    "rules",
                    ProblemCode::WrongType,
                    format!("`rules` must be a list of nodes, not {}", kind_name(other)),
                );
                return None;
            }
        };
        if items.len() > limits::MAX_NODES {
            self.report(
                "rules",
                ProblemCode::TooMany,
                format!(
                    "a rule set has at most {} nodes; this one has {}",
                    limits::MAX_NODES,
                    items.len()
                ),
            );
            return None;
        }
        let drafts: Vec<NodeDraft> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.node(i, item))
            .collect();
        self.graph(&drafts);
        let company_id = company_id?;
        let rules = drafts
            .into_iter()
            .map(|d| d.node)
            .collect::<Option<Vec<_>>>()?;
        Some(RuleSet { company_id, rules })
    }

    /// Reports fields not in `allowed`; `suggest_from` are the names offered
    /// as the nearest match for a typo.
    fn unknown_fields(
        &mut self,
        object: &Map<String, Value>,
        at: &str,
        allowed: &[&str],
        suggest_from: &[&str],
    ) {
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = self.did_you_mean(key, suggest_from.iter().copied());
                let problem = self.report(
                    join(at, key),
                    ProblemCode::UnknownField,
                    format!("unknown field `{}`", brief_text(key)),
                );
                problem.hint = hint;
                problem.allowed = suggest_from.iter().map(|s| (*s).to_owned()).collect();
            }
        }
    }

    /// A required identifier: 1–128 letters, digits, `-` or `_`.
    fn identifier(&mut self, object: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match object.get(key) {
            None => {
                self.report(path, ProblemCode::Missing, format!("`{key}` is required"));
                None
            }
            Some(Value::String(id)) if is_identifier(id) => Some(id.clone()),
            Some(Value::String(id)) => {
                self.report(
                    path,
                    ProblemCode::InvalidValue,
                    format!(
                        "`{key}` must be 1 to {} letters, digits, `-` or `_`; got `{}`",
                        limits::MAX_ID_LEN,
                        brief_text(id)
                    ),
                );
                None
            }
            Some(other) => {
                self.report(
                    path,
                    ProblemCode::WrongType,
                    format!("`{key}` must be a string, not {}", kind_name(other)),
                );
                None
            }
        }
    }

    fn node(&mut self, index: usize, item: &Value) -> NodeDraft {
        let at = format!("rules[{index}]");
        let mut draft = NodeDraft::default();
        let Some(object) = item.as_object() else {
            self.report(
                &at,
                ProblemCode::WrongType,
                format!("a node must be a JSON object, not {}", kind_name(item)),
            );
            return draft;
        };
        draft.node_id = self.identifier(object, "node_id", &format!("{at}.node_id"));
        let node_type = match object.get("node_type") {
            None => {
                let problem = self.report(
                    format!("{at}.node_type"),
                    ProblemCode::Missing,
                    "`node_type` is required",
                );
                problem.allowed = strings(NodeType::ALLOWED);
                None
            }
            Some(Value::String(text)) => {
                let parsed = NodeType::parse(text);
                if parsed.is_none() {
                    self.unknown_value(
                        &format!("{at}.node_type"),
                        "node_type",
                        text,
                        NodeType::ALLOWED,
                    );
                }
                parsed
            }
            Some(other) => {
                let problem = self.report(
                    format!("{at}.node_type"),
                    ProblemCode::WrongType,
                    format!("`node_type` must be a string, not {}", kind_name(other)),
                );
                problem.allowed = strings(NodeType::ALLOWED);
                None
            }
        };
        if let Some(node_type) = node_type {
            let specific = match node_type {
                NodeType::Condition => CONDITION_FIELDS,
                NodeType::Task => TASK_FIELDS,
            };
            let allowed: Vec<&str> = NODE_FIELDS.iter().chain(specific).copied().collect();
            self.unknown_fields(object, &at, &allowed, &allowed);
        }
        let depends_on = self.dependencies(object.get("depends_on"), &at, &mut draft);
        let trigger = self.enumerated(
            object.get("trigger"),
            &format!("{at}.trigger"),
            "trigger",
            Trigger::ALLOWED,
            Trigger::parse,
        );
        let ui = self.ui(object.get("ui"), &format!("{at}.ui"));
        let kind = match node_type {
            Some(NodeType::Condition) => self
                .condition(object, &at, &mut draft)
                .map(NodeKind::Condition),
            Some(NodeType::Task) => self.task(object, &at, &mut draft).map(NodeKind::Task),
            None => None,
        };
        if let (Some(node_id), Some(depends_on), Some(trigger), Some(ui), Some(kind)) =
            (draft.node_id.clone(), depends_on, trigger, ui, kind)
        {
            draft.node = Some(Node {
                node_id,
                depends_on,
                trigger: trigger.unwrap_or_default(),
                ui,
                kind,
            });
        }
        draft
    }

    fn unknown_value(&mut self, path: &str, key: &str, got: &str, allowed: &[&str]) {
        let hint = self.did_you_mean(got, allowed.iter().copied());
        let problem = self.report(
            path,
            ProblemCode::UnknownValue,
            format!(
                "unknown {key} `{}`; allowed: {}",
                brief_text(got),
                allowed.join(", ")
            ),
        );
        problem.allowed = strings(allowed);
        problem.hint = hint;
    }

    /// An optional string enum: `Some(None)` when absent, `None` when invalid.
    fn enumerated<T>(
        &mut self,
        value: Option<&Value>,
        path: &str,
        key: &str,
        allowed: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<Option<T>> {
        match value {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(text)) => match parse(text) {
                Some(parsed) => Some(Some(parsed)),
                None => {
                    self.unknown_value(path, key, text, allowed);
                    None
                }
            },
            Some(other) => {
                let problem = self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`{key}` must be one of {}, not {}",
                        allowed.join(", "),
                        kind_name(other)
                    ),
                );
                problem.allowed = strings(allowed);
                None
            }
        }
    }

    fn dependencies(
        &mut self,
        value: Option<&Value>,
        at: &str,
        draft: &mut NodeDraft,
    ) -> Option<Vec<Dependency>> {
        let path = format!("{at}.depends_on");
        let items = match value {
            None | Some(Value::Null) => return Some(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`depends_on` must be a list of {{\"node_id\", \"state\"}} objects, not {}",
                        kind_name(other)
                    ),
                );
                return None;
            }
        };
        if items.len() > limits::MAX_DEPENDENCIES {
            self.report(
                &path,
                ProblemCode::TooMany,
                format!(
                    "a node has at most {} dependencies; this one has {}",
                    limits::MAX_DEPENDENCIES,
                    items.len()
                ),
            );
            return None;
        }
        let mut dependencies = Vec::with_capacity(items.len());
        let mut valid = true;
        for (j, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{j}]");
            let Some(object) = item.as_object() else {
                self.report(
                    &item_path,
                    ProblemCode::WrongType,
                    format!(
                        "a dependency must be an object {{\"node_id\", \"state\"}}, not {}",
                        kind_name(item)
                    ),
                );
                valid = false;
                continue;
            };
            self.unknown_fields(object, &item_path, DEPENDENCY_FIELDS, DEPENDENCY_FIELDS);
            let node_id = self.identifier(object, "node_id", &format!("{item_path}.node_id"));
            let state = match object.get("state") {
                // `enumerated` reads null as "not set", which a required field cannot be.
                None | Some(Value::Null) => {
                    let problem = self.report(
                        format!("{item_path}.state"),
                        ProblemCode::Missing,
                        "`state` is required: the state the dependency must end in",
                    );
                    problem.allowed = strings(DependencyState::ALLOWED);
                    None
                }
                value => self
                    .enumerated(
                        value,
                        &format!("{item_path}.state"),
                        "state",
                        DependencyState::ALLOWED,
                        DependencyState::parse,
                    )
                    .flatten(),
            };
            if let Some(node_id) = &node_id {
                if draft.dependencies.iter().any(|(_, seen)| seen == node_id) {
                    self.report(
                        format!("{item_path}.node_id"),
                        ProblemCode::Duplicate,
                        format!("`{node_id}` is listed twice in `depends_on`"),
                    );
                    valid = false;
                }
                draft.dependencies.push((j, node_id.clone()));
            }
            match (node_id, state) {
                (Some(node_id), Some(state)) => dependencies.push(Dependency { node_id, state }),
                _ => valid = false,
            }
        }
        valid.then_some(dependencies)
    }

    /// `Some(None)` when absent.
    fn ui(&mut self, value: Option<&Value>, path: &str) -> Option<Option<UiPosition>> {
        let object = match value {
            None | Some(Value::Null) => return Some(None),
            Some(Value::Object(object)) => object,
            Some(other) => {
                self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`ui` must be an object {{\"x\": number, \"y\": number}}, not {}",
                        kind_name(other)
                    ),
                );
                return None;
            }
        };
        self.unknown_fields(object, path, UI_FIELDS, UI_FIELDS);
        let mut coordinate = |name: &str| match object.get(name) {
            Some(Value::Number(n)) => Some(n.clone()),
            Some(other) => {
                self.report(
                    join(path, name),
                    ProblemCode::WrongType,
                    format!("`{name}` must be a number, not {}", kind_name(other)),
                );
                None
            }
            None => {
                self.report(
                    join(path, name),
                    ProblemCode::Missing,
                    format!("`{name}` is required"),
                );
                None
            }
        };
        let x = coordinate("x");
        let y = coordinate("y");
        Some(Some(UiPosition { x: x?, y: y? }))
    }

    fn condition(
        &mut self,
        object: &Map<String, Value>,
        at: &str,
        draft: &mut NodeDraft,
    ) -> Option<Condition> {
        let path = format!("{at}.expect");
        let match_mode = self.enumerated(
            object.get("match"),
            &format!("{at}.match"),
            "match",
            Trigger::ALLOWED,
            Trigger::parse,
        );
        let items = match object.get("expect") {
            None => {
                self.report(
                    &path,
                    ProblemCode::Missing,
                    "a condition needs `expect`: a list of {\"field\", \"operator\", \"value\"}",
                );
                return None;
            }
            Some(Value::Array(items)) if items.is_empty() => {
                self.report(
                    &path,
                    ProblemCode::InvalidValue,
                    "`expect` needs at least one expectation",
                );
                return None;
            }
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.report(
                    &path,
                    ProblemCode::WrongType,
                    format!(
                        "`expect` must be a list of expectations, not {}",
                        kind_name(other)
                    ),
                );
                return None;
            }
        };
        if items.len() > limits::MAX_EXPECTATIONS {
            self.report(
                &path,
                ProblemCode::TooMany,
                format!(
                    "a condition has at most {} expectations",
                    limits::MAX_EXPECTATIONS
                ),
            );
            return None;
        }
        let expect: Vec<Option<Expectation>> = items
            .iter()
            .enumerate()
            .map(|(k, item)| self.expectation(item, &format!("{path}[{k}]"), draft))
            .collect();
        Some(Condition {
            expect: expect.into_iter().collect::<Option<Vec<_>>>()?,
            match_mode: match_mode?.unwrap_or_default(),
        })
    }

    fn expectation(
        &mut self,
        item: &Value,
        at: &str,
        draft: &mut NodeDraft,
    ) -> Option<Expectation> {
        let Some(object) = item.as_object() else {
            self.report(
                at,
                ProblemCode::WrongType,
                format!("an expectation must be an object {{\"field\", \"operator\", \"value\"}}, not {}", kind_name(item)),
            );
            return None;
        };
        self.unknown_fields(object, at, EXPECTATION_FIELDS, EXPECTATION_FIELDS);
        let field_path = format!("{at}.field");
        let field = match object.get("field") {
            None => {
                self.report(
                    &field_path,
                    ProblemCode::Missing,
                    "`field` is required: a path such as `$context.event.type`",
                );
                None
            }
            Some(Value::String(text)) => self.path(text, &field_path, draft).then(|| text.clone()),
            Some(other) => {
                self.report(
                    &field_path,
                    ProblemCode::WrongType,
                    format!(
                        "`field` must be a `$context.` path string, not {}",
                        kind_name(other)
                    ),
                );
                None
            }
        };
        let operator_path = format!("{at}.operator");
        let allowed_operators = Operator::allowed();
        let operator = match object.get("operator") {
            None => {
                let problem = self.report(
                    &operator_path,
                    ProblemCode::Missing,
                    "`operator` is required",
                );
                problem.allowed = allowed_operators;
                None
            }
            Some(Value::String(text)) => {
                let parsed = Operator::parse(text);
                if parsed.is_none() {
                    let names: Vec<&str> = Operator::ALL.iter().map(|op| op.as_str()).collect();
                    self.unknown_value(&operator_path, "operator", text, &names);
                }
                parsed
            }
            Some(other) => {
                let problem = self.report(
                    &operator_path,
                    ProblemCode::WrongType,
                    format!("`operator` must be a string, not {}", kind_name(other)),
                );
                problem.allowed = allowed_operators;
                None
            }
        };
        let value = match operator {
            Some(operator) => {
                self.operands(object.get("value"), operator, &format!("{at}.value"))?
            }
            None => None,
        };
        Some(Expectation {
            field: field?,
            operator: operator?,
            value,
        })
    }

    /// The `value` list for `operator`; `Some(None)` when absent and allowed.
    fn operands(
        &mut self,
        value: Option<&Value>,
        operator: Operator,
        path: &str,
    ) -> Option<Option<Vec<Value>>> {
        let name = operator.as_str();
        let arity = operator.arity();
        match (value, arity) {
            (None | Some(Value::Null), Arity::None) => Some(None),
            (Some(Value::Array(items)), Arity::None) => Some(Some(items.clone())),
            (Some(other), Arity::None) => {
                self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`{name}` ignores `value`, but when given it must be a list, not {}",
                        kind_name(other)
                    ),
                );
                None
            }
            (None, _) => {
                let problem = self.report(
                    path,
                    ProblemCode::Missing,
                    format!("`{name}` needs `value`: {}", arity_text(arity)),
                );
                problem.hint = Some(example(arity));
                None
            }
            (Some(Value::Array(items)), Arity::One) if items.len() == 1 => {
                Some(Some(items.clone()))
            }
            (Some(Value::Array(items)), Arity::AtLeastOne)
                if !items.is_empty() && items.len() <= limits::MAX_VALUES =>
            {
                Some(Some(items.clone()))
            }
            (Some(Value::Array(items)), Arity::AtLeastOne) if items.len() > limits::MAX_VALUES => {
                self.report(
                    path,
                    ProblemCode::TooMany,
                    format!("`{name}` takes at most {} values", limits::MAX_VALUES),
                );
                None
            }
            (Some(Value::Array(items)), _) => {
                let problem = self.report(
                    path,
                    ProblemCode::Arity,
                    format!(
                        "`{name}` needs {}; got {} value(s)",
                        arity_text(arity),
                        items.len()
                    ),
                );
                problem.hint = Some(example(arity));
                None
            }
            (Some(other), _) => {
                let problem = self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`value` must be a list ({}), not {}",
                        arity_text(arity),
                        kind_name(other)
                    ),
                );
                problem.hint = Some(example(arity));
                None
            }
        }
    }

    /// Checks a `$context.` path string; records node references for the
    /// ancestor check. Returns whether it is valid.
    fn path(&mut self, text: &str, at: &str, draft: &mut NodeDraft) -> bool {
        match ContextPath::parse(text) {
            Ok(path) => {
                if let Some(node_id) = path.referenced_node() {
                    if !is_identifier(node_id) {
                        // Refused before any graph check: a reference that
                        // long is never compared with the node ids.
                        self.report(
                            at,
                            ProblemCode::InvalidPath,
                            format!(
                                "invalid path: the node id after `{PREFIX}nodes.` must be 1 to {} letters, digits, `-` or `_`; got `{}`",
                                limits::MAX_ID_LEN,
                                brief_text(node_id)
                            ),
                        );
                        return false;
                    }
                    draft
                        .node_references
                        .push((at.to_owned(), node_id.to_owned()));
                }
                true
            }
            Err(error) => {
                let problem = self.report(
                    at,
                    ProblemCode::InvalidPath,
                    format!("invalid path `{}`: {error}", brief_text(text)),
                );
                if !text.starts_with(PREFIX) {
                    let trimmed = text.trim_start_matches('$').trim_start_matches("context.");
                    problem.hint = Some(format!("did you mean `{PREFIX}{trimmed}`?"));
                }
                false
            }
        }
    }

    fn task(
        &mut self,
        object: &Map<String, Value>,
        at: &str,
        draft: &mut NodeDraft,
    ) -> Option<Task> {
        let name_path = format!("{at}.task_name");
        let spec: Option<&TaskSpec> = match object.get("task_name") {
            None => {
                let names = self.catalogue.names();
                let problem =
                    self.report(&name_path, ProblemCode::Missing, "a task needs `task_name`");
                problem.allowed = names;
                None
            }
            Some(Value::String(name)) => {
                let spec = self.catalogue.get(name);
                if spec.is_none() {
                    let names = self.catalogue.names();
                    let hint = self.did_you_mean(name, names.iter().map(String::as_str));
                    let problem = self.report(
                        &name_path,
                        ProblemCode::UnknownTask,
                        format!(
                            "unknown task `{}`: it is not in the catalogue (GET /tasks)",
                            brief_text(name)
                        ),
                    );
                    problem.hint = hint;
                    problem.allowed = names;
                }
                spec
            }
            Some(other) => {
                self.report(
                    &name_path,
                    ProblemCode::WrongType,
                    format!("`task_name` must be a string, not {}", kind_name(other)),
                );
                None
            }
        };
        let parameters = self.parameters(object.get("parameters"), spec, at, draft);
        let retry = self.retry(object.get("retry"), &format!("{at}.retry"));
        let timeout_ms = match object.get("timeout_ms") {
            None | Some(Value::Null) => Some(None),
            Some(value) => match value.as_u64() {
                Some(ms) if (1..=limits::MAX_TIMEOUT_MS).contains(&ms) => Some(Some(ms)),
                _ => {
                    self.report(
                        format!("{at}.timeout_ms"),
                        ProblemCode::InvalidValue,
                        format!(
                            "`timeout_ms` must be an integer from 1 to {}",
                            limits::MAX_TIMEOUT_MS
                        ),
                    );
                    None
                }
            },
        };
        Some(Task {
            task_name: spec?.name.to_owned(),
            parameters: parameters?,
            retry: retry?,
            timeout_ms: timeout_ms?,
        })
    }

    #[allow(clippy::option_option)]
    fn parameters(
        &mut self,
        value: Option<&Value>,
        spec: Option<&TaskSpec>,
        at: &str,
        draft: &mut NodeDraft,
    ) -> Option<Option<Map<String, Value>>> {
        let path = format!("{at}.parameters");
        let empty = Map::new();
        let (parameters, result) = match value {
            None | Some(Value::Null) => (&empty, None),
            Some(Value::Object(map)) => (map, Some(map.clone())),
            Some(other) => {
                self.report(
                    &path,
                    ProblemCode::WrongType,
                    format!(
                        "`parameters` must be an object or null, not {}",
                        kind_name(other)
                    ),
                );
                return None;
            }
        };
        let before = self.problems.len();
        for (key, value) in parameters {
            let param_path = format!("{path}.{key}");
            for (suffix, text) in context_strings(value) {
                self.path(text, &format!("{param_path}{suffix}"), draft);
            }
            let Some(spec) = spec else { continue };
            match spec.param(key) {
                None if spec.open_params => {}
                None => {
                    let names = spec.param_names();
                    let hint = self.did_you_mean(key, names.iter().map(String::as_str));
                    let problem = self.report(
                        &param_path,
                        ProblemCode::UnknownParameter,
                        format!(
                            "`{}` has no parameter `{}`; it knows: {}",
                            spec.name,
                            brief_text(key),
                            names.join(", ")
                        ),
                    );
                    problem.hint = hint;
                    problem.allowed = names;
                }
                Some(param) => {
                    let is_path = value.as_str().is_some_and(|s| s.starts_with(PREFIX));
                    if !is_path
                        && !value.is_null()
                        && let Some(expected) = param.kind.check(value)
                    {
                        let problem = self.report(
                            &param_path,
                            ProblemCode::InvalidParameter,
                            format!(
                                "`{key}` must be {expected} or a `$context.` path; got {}",
                                brief(value)
                            ),
                        );
                        problem.hint = Some(param.description.to_owned());
                    }
                }
            }
        }
        if let Some(spec) = spec {
            for param in spec.params.iter().filter(|p| p.required) {
                if parameters.get(param.name).is_none_or(Value::is_null) {
                    let problem = self.report(
                        format!("{path}.{}", param.name),
                        ProblemCode::Missing,
                        format!(
                            "`{}` requires the parameter `{}`: {}",
                            spec.name, param.name, param.description
                        ),
                    );
                    problem.hint = Some(format!(
                        "a literal value, or a path such as `{PREFIX}event.…`"
                    ));
                }
            }
        }
        (self.problems.len() == before).then_some(result)
    }

    #[allow(clippy::option_option)]
    fn retry(&mut self, value: Option<&Value>, path: &str) -> Option<Option<RetryPolicy>> {
        let object = match value {
            None | Some(Value::Null) => return Some(None),
            Some(Value::Object(object)) => object,
            Some(other) => {
                self.report(
                    path,
                    ProblemCode::WrongType,
                    format!(
                        "`retry` must be an object {{\"max_attempts\", \"initial_backoff_ms\", \"max_backoff_ms\"}}, not {}",
                        kind_name(other)
                    ),
                );
                return None;
            }
        };
        let before = self.problems.len();
        self.unknown_fields(object, path, RETRY_FIELDS, RETRY_FIELDS);
        let defaults = RetryPolicy::default();
        let mut integer = |name: &str, min: u64, max: u64, default: u64| match object.get(name) {
            None | Some(Value::Null) => default,
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => n,
                _ => {
                    self.report(
                        join(path, name),
                        ProblemCode::InvalidValue,
                        format!("`{name}` must be an integer from {min} to {max}"),
                    );
                    default
                }
            },
        };
        let max_attempts = integer(
            "max_attempts",
            1,
            u64::from(limits::MAX_ATTEMPTS),
            u64::from(defaults.max_attempts),
        );
        let initial_backoff_ms = integer(
            "initial_backoff_ms",
            0,
            limits::MAX_BACKOFF_MS,
            defaults.initial_backoff_ms,
        );
        let max_backoff_ms = integer(
            "max_backoff_ms",
            0,
            limits::MAX_BACKOFF_MS,
            defaults.max_backoff_ms.max(initial_backoff_ms),
        );
        if max_backoff_ms < initial_backoff_ms {
            self.report(
                join(path, "max_backoff_ms"),
                ProblemCode::InvalidValue,
                format!("`max_backoff_ms` ({max_backoff_ms}) must not be below `initial_backoff_ms` ({initial_backoff_ms})"),
            );
        }
        (self.problems.len() == before).then_some(Some(RetryPolicy {
            max_attempts: u32::try_from(max_attempts).unwrap_or(limits::MAX_ATTEMPTS),
            initial_backoff_ms,
            max_backoff_ms,
        }))
    }

    /// Duplicate ids, dangling references, cycles and `$context.nodes` ancestry.
    fn graph(&mut self, drafts: &[NodeDraft]) {
        let mut index_of: HashMap<&str, usize> = HashMap::with_capacity(drafts.len());
        for (i, draft) in drafts.iter().enumerate() {
            let Some(id) = draft.node_id.as_deref() else {
                continue;
            };
            if let Some(first) = index_of.get(id) {
                self.report(
                    format!("rules[{i}].node_id"),
                    ProblemCode::Duplicate,
                    format!(
                        "`{id}` is already the node_id of rules[{first}]; node ids must be unique"
                    ),
                );
            } else {
                index_of.insert(id, i);
            }
        }
        let existing: Vec<&str> = drafts.iter().filter_map(|d| d.node_id.as_deref()).collect();
        // Edges by index: dependencies[i] = indexes node i waits for.
        let mut dependencies: Vec<Vec<(usize, usize)>> = vec![Vec::new(); drafts.len()];
        for (i, draft) in drafts.iter().enumerate() {
            for (j, target) in &draft.dependencies {
                match index_of.get(target.as_str()) {
                    Some(&t) => dependencies[i].push((*j, t)),
                    None => self.dangling(
                        &format!("rules[{i}].depends_on[{j}].node_id"),
                        target,
                        &existing,
                    ),
                }
            }
        }
        let acyclic = self.cycles(drafts, &dependencies);
        let ancestors = acyclic.then(|| ancestor_sets(&dependencies));
        for (i, draft) in drafts.iter().enumerate() {
            for (path, target) in &draft.node_references {
                let Some(&t) = index_of.get(target.as_str()) else {
                    self.dangling(path, target, &existing);
                    continue;
                };
                let me = draft.node_id.as_deref().unwrap_or("this node");
                if t == i {
                    self.report(
                        path,
                        ProblemCode::NotAncestor,
                        format!("`{me}` cannot read its own output: it does not exist until the node ends"),
                    );
                } else if let Some(ancestors) = &ancestors
                    && !ancestors[i].contains(t)
                {
                    let problem = self.report(
                            path,
                            ProblemCode::NotAncestor,
                            format!("`{target}` is not upstream of `{me}`, so its output may not exist when `{me}` runs"),
                        );
                    problem.hint = Some(format!(
                        "add `{target}` (or a node after it) to `{me}`'s depends_on"
                    ));
                }
            }
        }
    }

    fn dangling(&mut self, path: &str, target: &str, existing: &[&str]) {
        let hint = match self.did_you_mean(target, existing.iter().copied()) {
            Some(hint) => Some(hint),
            None if existing.is_empty() => None,
            None => Some(format!("existing node ids: {}", preview(existing))),
        };
        let problem = self.report(
            path,
            ProblemCode::DanglingReference,
            format!("there is no node `{target}` in this rule set"),
        );
        problem.hint = hint;
    }

    /// Reports each cycle, node by node; returns whether the graph is acyclic.
    fn cycles(&mut self, drafts: &[NodeDraft], dependencies: &[Vec<(usize, usize)>]) -> bool {
        let n = drafts.len();
        let mut removed = vec![false; n];
        let mut acyclic = true;
        for _ in 0..20 {
            let left = unsorted_nodes(dependencies, &removed);
            let Some(&start) = left.first() else { break };
            acyclic = false;
            let in_left = {
                let mut flags = vec![false; n];
                for &i in &left {
                    flags[i] = true;
                }
                flags
            };
            // Every node left over waits on another node left over; following
            // those waits from any of them must come back round to a cycle.
            let mut position = vec![usize::MAX; n];
            let mut walk: Vec<(usize, usize)> = Vec::new();
            let mut current = start;
            let cycle = loop {
                if position[current] != usize::MAX {
                    break walk[position[current]..].to_vec();
                }
                let Some(&(j, next)) = dependencies[current].iter().find(|(_, t)| in_left[*t])
                else {
                    break Vec::new();
                };
                position[current] = walk.len();
                walk.push((current, j));
                current = next;
            };
            if cycle.is_empty() {
                break;
            }
            // `walk` follows "waits for"; people read flows the other way.
            let mut names: Vec<&str> = cycle
                .iter()
                .rev()
                .map(|(i, _)| drafts[*i].node_id.as_deref().unwrap_or("?"))
                .collect();
            // Start the loop at the node written first, so the name is stable.
            let first_written = cycle.iter().map(|(i, _)| *i).min().unwrap_or(cycle[0].0);
            let offset = names
                .iter()
                .position(|name| Some(*name) == drafts[first_written].node_id.as_deref())
                .unwrap_or(0);
            names.rotate_left(offset);
            names.push(names[0]);
            let (first, j) = cycle[0];
            let problem = self.report(
                format!("rules[{first}].depends_on[{j}]"),
                ProblemCode::Cycle,
                format!("the dependencies form a cycle: {}", names.join(" → ")),
            );
            problem.hint =
                Some("remove one of these dependencies: a rule graph must be acyclic".into());
            for (i, _) in cycle {
                removed[i] = true;
            }
        }
        acyclic
    }
}

/// Nodes that a topological sort cannot place (cycles and what waits on
/// them), ignoring `removed` ones.
fn unsorted_nodes(dependencies: &[Vec<(usize, usize)>], removed: &[bool]) -> Vec<usize> {
    let n = dependencies.len();
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, deps) in dependencies.iter().enumerate() {
        if removed[i] {
            continue;
        }
        for &(_, t) in deps {
            if !removed[t] {
                waiting[i] += 1;
                dependents[t].push(i);
            }
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| !removed[i] && waiting[i] == 0).collect();
    let mut placed = vec![false; n];
    while let Some(i) = ready.pop() {
        placed[i] = true;
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(d);
            }
        }
    }
    (0..n).filter(|&i| !removed[i] && !placed[i]).collect()
}

/// A set of node indexes.
#[derive(Clone)]
struct IndexSet(Vec<u64>);

impl IndexSet {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union(&mut self, other: &IndexSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// Each node's transitive dependencies (acyclic graphs only).
fn ancestor_sets(dependencies: &[Vec<(usize, usize)>]) -> Vec<IndexSet> {
    let n = dependencies.len();
    let mut sets: Vec<Option<IndexSet>> = vec![None; n];
    // Iterative post-order so deep chains cannot overflow the stack.
    for root in 0..n {
        let mut stack = vec![(root, false)];
        while let Some((i, expanded)) = stack.pop() {
            if sets[i].is_some() {
                continue;
            }
            if expanded {
                let mut set = IndexSet::new(n);
                for &(_, t) in &dependencies[i] {
                    set.insert(t);
                    if let Some(parent) = &sets[t] {
                        set.union(parent);
                    }
                }
                sets[i] = Some(set);
            } else {
                stack.push((i, true));
                for &(_, t) in &dependencies[i] {
                    if sets[t].is_none() {
                        stack.push((t, false));
                    }
                }
            }
        }
    }
    sets.into_iter()
        .map(|s| s.unwrap_or_else(|| IndexSet::new(n)))
        .collect()
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= limits::MAX_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn preview(items: &[&str]) -> String {
    let mut text: Vec<String> = items.iter().take(10).map(|s| format!("`{s}`")).collect();
    if items.len() > 10 {
        text.push(format!("and {} more", items.len() - 10));
    }
    text.join(", ")
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

/// At most 60 characters of untrusted text, for messages.
fn brief_text(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// A short rendering of a value for messages.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

fn arity_text(arity: Arity) -> &'static str {
    match arity {
        Arity::One => "a list of exactly one value",
        Arity::AtLeastOne => "a list of one or more values",
        Arity::None => "no value",
    }
}

fn example(arity: Arity) -> String {
    match arity {
        Arity::One => "e.g. \"value\": [\"product\"]".into(),
        Arity::AtLeastOne => "e.g. \"value\": [\"book\", \"ebook\"]".into(),
        Arity::None => "omit `value`".into(),
    }
}

#[cfg(test)]
mod tests;
