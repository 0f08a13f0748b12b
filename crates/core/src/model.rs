//! The rule model: a company's rule set as an acyclic graph of condition and
//! task nodes, in the original JSON format plus optional extensions
//! (`trigger`, `match`, `ui`, `retry`, `timeout_ms`).
//!
//! These types are built only by [`crate::validation::validate_rule_set`], so a
//! value of them is always valid. They serialise back to the original format:
//! extensions left at their defaults are omitted, `depends_on` is always written.

use serde::Serialize;
use serde_json::Value;

/// Limits enforced by validation (DESIGN §2).
pub mod limits {
    /// Most nodes in one rule set.
    pub const MAX_NODES: usize = 1_000;
    /// Most dependencies of one node.
    pub const MAX_DEPENDENCIES: usize = 64;
    /// Most expectations in one condition.
    pub const MAX_EXPECTATIONS: usize = 100;
    /// Most values in one expectation's `value` list.
    pub const MAX_VALUES: usize = 1_000;
    /// Longest `node_id` and `company_id`.
    pub const MAX_ID_LEN: usize = 128;
    /// Most attempts a retry policy may ask for.
    pub const MAX_ATTEMPTS: u32 = 100;
    /// Longest task timeout: one hour.
    pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
    /// Longest backoff between two attempts: one day.
    pub const MAX_BACKOFF_MS: u64 = 86_400_000;
}

/// A company's whole rule graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSet {
    pub company_id: String,
    pub rules: Vec<Node>,
}

impl RuleSet {
    /// The node with this id, if any.
    pub fn node(&self, node_id: &str) -> Option<&Node> {
        self.rules.iter().find(|n| n.node_id == node_id)
    }

    /// The rule set as JSON, in the original format.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("a rule set always serialises")
    }
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub node_id: String,
    pub depends_on: Vec<Dependency>,
    pub trigger: Trigger,
    pub ui: Option<UiPosition>,
    pub kind: NodeKind,
}

impl Node {
    /// `"condition"` or `"task"`.
    pub fn node_type(&self) -> NodeType {
        match self.kind {
            NodeKind::Condition(_) => NodeType::Condition,
            NodeKind::Task(_) => NodeType::Task,
        }
    }
}

/// What a node does.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Condition(Condition),
    Task(Task),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Condition,
    Task,
}

impl NodeType {
    pub const ALLOWED: &'static [&'static str] = &["condition", "task"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "condition" => Some(Self::Condition),
            "task" => Some(Self::Task),
            _ => None,
        }
    }
}

/// An edge: this node waits for `node_id` to end in `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    pub node_id: String,
    pub state: DependencyState,
}

/// The terminal state a dependency must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyState {
    Success,
    Failure,
}

impl DependencyState {
    pub const ALLOWED: &'static [&'static str] = &["success", "failure"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Self::Success),
            "failure" => Some(Self::Failure),
            _ => None,
        }
    }
}

/// When a node with several dependencies becomes ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Every dependency holds (the default).
    #[default]
    All,
    /// At least one dependency holds.
    Any,
}

impl Trigger {
    pub const ALLOWED: &'static [&'static str] = &["all", "any"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "any" => Some(Self::Any),
            _ => None,
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::All
    }
}

/// The canvas position of a node, stored as given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UiPosition {
    pub x: serde_json::Number,
    pub y: serde_json::Number,
}

/// A condition node: a list of expectations on the context.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub expect: Vec<Expectation>,
    /// Whether every expectation (`all`, default) or one (`any`) must hold.
    pub match_mode: Trigger,
}

/// `{ "field": "$context.…", "operator": OP, "value": [...] }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectation {
    pub field: String,
    pub operator: crate::eval::Operator,
    /// Kept exactly as given (absent for `isnull`/`isnotnull` stays absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Vec<Value>>,
}

/// A task node: a catalogue task with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub task_name: String,
    /// An object, or `None` for the original format's `null`.
    pub parameters: Option<serde_json::Map<String, Value>>,
    pub retry: Option<RetryPolicy>,
    pub timeout_ms: Option<u64>,
}

/// How a failing task is retried: exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 60_000,
        }
    }
}

impl Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("node_type", &self.node_type())?;
        map.serialize_entry("node_id", &self.node_id)?;
        map.serialize_entry("depends_on", &self.depends_on)?;
        if !self.trigger.is_default() {
            map.serialize_entry("trigger", &self.trigger)?;
        }
        match &self.kind {
            NodeKind::Condition(condition) => {
                map.serialize_entry("expect", &condition.expect)?;
                if !condition.match_mode.is_default() {
                    map.serialize_entry("match", &condition.match_mode)?;
                }
            }
            NodeKind::Task(task) => {
                map.serialize_entry("task_name", &task.task_name)?;
                map.serialize_entry("parameters", &task.parameters)?;
                if let Some(retry) = &task.retry {
                    map.serialize_entry("retry", retry)?;
                }
                if let Some(timeout_ms) = task.timeout_ms {
                    map.serialize_entry("timeout_ms", &timeout_ms)?;
                }
            }
        }
        if let Some(ui) = &self.ui {
            map.serialize_entry("ui", ui)?;
        }
        map.end()
    }
}
