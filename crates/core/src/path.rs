//! `$context.…` paths: parsed once (segments pre-split, array indexes
//! pre-parsed) and resolved against a [`PathContext`] without allocating.
//!
//! Roots: `event` (the payment event), `company`, `run` (`$context.run.id`) and
//! `nodes.<node_id>` (an earlier node's record: `state`, `output`).
//! A path that does not exist resolves to `None`, which rules read as null.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::size::{json_size, json_string_size};

/// The prefix every path starts with.
pub const PREFIX: &str = "$context.";

/// Where a path starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    Event,
    Company,
    Run,
    /// `nodes.<node_id>`: the record of that node in the current run.
    Node(Box<str>),
}

impl Root {
    pub const ALLOWED: &'static [&'static str] = &["event", "company", "run", "nodes"];
}

/// One step below the root: an object key, which also indexes arrays when it
/// is a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    key: Box<str>,
    index: Option<usize>,
}

impl Segment {
    fn new(key: &str) -> Self {
        let index = if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
            key.parse().ok()
        } else {
            None
        };
        Self {
            key: key.into(),
            index,
        }
    }

    fn step<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        match value {
            Value::Object(map) => map.get(&*self.key),
            Value::Array(items) => self.index.and_then(|i| items.get(i)),
            _ => None,
        }
    }
}

/// Why a string is not a valid path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("a path must start with `$context.`")]
    MissingPrefix,
    #[error("the path has an empty segment (two dots in a row, or a trailing dot)")]
    EmptySegment,
    #[error(
        "unknown root `{0}`: a path starts with `$context.event`, `$context.company`, `$context.run` or `$context.nodes.<node_id>`"
    )]
    UnknownRoot(String),
    #[error(
        "`$context.nodes` must be followed by a node id, e.g. `$context.nodes.check-total.output`"
    )]
    MissingNodeId,
}

/// A parsed `$context.…` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPath {
    root: Root,
    segments: Vec<Segment>,
}

impl ContextPath {
    /// Parses `$context.root.a.b.0.c`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let rest = text.strip_prefix(PREFIX).ok_or(PathError::MissingPrefix)?;
        let mut parts = rest.split('.');
        let first = parts.next().unwrap_or_default();
        if first.is_empty() {
            return Err(PathError::EmptySegment);
        }
        let root = match first {
            "event" => Root::Event,
            "company" => Root::Company,
            "run" => Root::Run,
            "nodes" => match parts.next() {
                Some("") => return Err(PathError::EmptySegment),
                Some(node_id) => Root::Node(node_id.into()),
                None => return Err(PathError::MissingNodeId),
            },
            other => return Err(PathError::UnknownRoot(other.to_owned())),
        };
        let segments = parts
            .map(|part| {
                if part.is_empty() {
                    Err(PathError::EmptySegment)
                } else {
                    Ok(Segment::new(part))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { root, segments })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// The node this path reads from, for `$context.nodes.<id>…`.
    pub fn referenced_node(&self) -> Option<&str> {
        match &self.root {
            Root::Node(id) => Some(id),
            _ => None,
        }
    }

    /// The value at this path, or `None` when any step is missing.
    pub fn resolve<'c, C: PathContext + ?Sized>(&self, context: &'c C) -> Option<&'c Value> {
        let mut current = match &self.root {
            Root::Event => context.event(),
            Root::Company => context.company(),
            Root::Run => context.run(),
            Root::Node(id) => context.node(id)?,
        };
        for segment in &self.segments {
            current = segment.step(current)?;
        }
        Some(current)
    }
}

/// What paths resolve against.
pub trait PathContext {
    fn event(&self) -> &Value;
    fn company(&self) -> &Value;
    fn run(&self) -> &Value;
    /// The record (`{"state", "output", …}`) of a node of this run.
    fn node(&self, node_id: &str) -> Option<&Value>;
}

/// A context held as plain JSON values: used by simulation and tests.
#[derive(Debug, Clone, Default)]
pub struct JsonContext {
    pub event: Value,
    pub company: Value,
    pub run: Value,
    pub nodes: Map<String, Value>,
}

impl PathContext for JsonContext {
    fn event(&self) -> &Value {
        &self.event
    }
    fn company(&self) -> &Value {
        &self.company
    }
    fn run(&self) -> &Value {
        &self.run
    }
    fn node(&self, node_id: &str) -> Option<&Value> {
        self.nodes.get(node_id)
    }
}

/// Every `$context.` string inside `value`, at any depth, with its JSON path
/// suffix (`.a[2].b`) relative to `value`.
pub fn context_strings(value: &Value) -> Vec<(String, &str)> {
    let mut found = Vec::new();
    collect_context_strings(value, String::new(), &mut found);
    found
}

fn collect_context_strings<'v>(value: &'v Value, at: String, found: &mut Vec<(String, &'v str)>) {
    match value {
        Value::String(s) if s.starts_with(PREFIX) => found.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_context_strings(item, format!("{at}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                collect_context_strings(item, format!("{at}.{key}"), found);
            }
        }
        _ => {}
    }
}

/// A copy of `template` with every `$context.` string replaced by the value at
/// that path (null when missing), at any depth. Strings that are not valid
/// paths are kept as they are (validation has rejected them on save).
pub fn resolve_template<C: PathContext + ?Sized>(template: &Value, context: &C) -> Value {
    match template {
        Value::String(s) if s.starts_with(PREFIX) => match ContextPath::parse(s) {
            Ok(path) => path.resolve(context).cloned().unwrap_or(Value::Null),
            Err(_) => template.clone(),
        },
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve_template(v, context)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), resolve_template(v, context)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The size of [`resolve_template`]'s answer, in compact JSON bytes,
/// computed without resolving anything: each distinct path's value is
/// measured once however often the template repeats it, so sizing a
/// template that would resolve to gigabytes costs no more than its values.
pub fn resolved_size<C: PathContext + ?Sized>(template: &Value, context: &C) -> usize {
    let mut measured = HashMap::new();
    resolved_size_with(template, context, &mut measured)
}

fn resolved_size_with<'t, C: PathContext + ?Sized>(
    template: &'t Value,
    context: &C,
    measured: &mut HashMap<&'t str, usize>,
) -> usize {
    match template {
        Value::String(s) if s.starts_with(PREFIX) => {
            if let Some(&size) = measured.get(s.as_str()) {
                return size;
            }
            let size = match ContextPath::parse(s) {
                Ok(path) => path.resolve(context).map_or(4, json_size),
                Err(_) => json_size(template),
            };
            measured.insert(s, size);
            size
        }
        Value::Array(items) => items
            .iter()
            .fold(2 + items.len().saturating_sub(1), |total, item| {
                total.saturating_add(resolved_size_with(item, context, measured))
            }),
        Value::Object(map) => map.iter().fold(
            2 + map.len() + map.len().saturating_sub(1),
            |total, (key, item)| {
                total
                    .saturating_add(json_string_size(key))
                    .saturating_add(resolved_size_with(item, context, measured))
            },
        ),
        other => json_size(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn context() -> JsonContext {
        let mut nodes = Map::new();
        nodes.insert(
            "make-invoice".into(),
            json!({"state": "success", "output": {"invoice_id": "inv_1"}}),
        );
        JsonContext {
            event: json!({"type": "product", "total": "120.0", "product": {"id": "p1", "tags": ["book", "new"]}}),
            company: json!({"id": "acme"}),
            run: json!({"id": "run_1"}),
            nodes,
        }
    }

    fn resolve(path: &str) -> Option<Value> {
        ContextPath::parse(path)
            .unwrap()
            .resolve(&context())
            .cloned()
    }

    #[test]
    fn resolves_every_root() {
        assert_eq!(resolve("$context.event.type"), Some(json!("product")));
        assert_eq!(resolve("$context.event.product.tags.1"), Some(json!("new")));
        assert_eq!(resolve("$context.company.id"), Some(json!("acme")));
        assert_eq!(resolve("$context.run.id"), Some(json!("run_1")));
        assert_eq!(
            resolve("$context.nodes.make-invoice.output.invoice_id"),
            Some(json!("inv_1"))
        );
        assert_eq!(resolve("$context.event"), Some(context().event));
    }

    #[test]
    fn missing_paths_are_none() {
        assert_eq!(resolve("$context.event.nope"), None);
        assert_eq!(resolve("$context.event.type.deeper"), None);
        assert_eq!(resolve("$context.event.product.tags.9"), None);
        assert_eq!(resolve("$context.nodes.unknown.output"), None);
    }

    #[test]
    fn rejects_malformed_paths() {
        assert_eq!(
            ContextPath::parse("event.type"),
            Err(PathError::MissingPrefix)
        );
        assert_eq!(
            ContextPath::parse("$context."),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            ContextPath::parse("$context.event..a"),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            ContextPath::parse("$context.event.a."),
            Err(PathError::EmptySegment)
        );
        assert_eq!(
            ContextPath::parse("$context.nodes"),
            Err(PathError::MissingNodeId)
        );
        assert_eq!(
            ContextPath::parse("$context.payment.total"),
            Err(PathError::UnknownRoot("payment".into()))
        );
    }

    #[test]
    fn templates_resolve_at_any_depth() {
        let template = json!({
            "product_id": "$context.event.product.id",
            "nested": {"list": ["$context.company.id", 3, "plain"]},
            "missing": "$context.event.nope"
        });
        assert_eq!(
            resolve_template(&template, &context()),
            json!({"product_id": "p1", "nested": {"list": ["acme", 3, "plain"]}, "missing": null})
        );
    }

    #[test]
    fn the_resolved_size_is_the_size_of_the_resolved_template() {
        let template = json!({
            "product_id": "$context.event.product.id",
            "again": ["$context.event.product", "$context.event.product", "x\n"],
            "nested": {"list": ["$context.company.id", 3, "plain", "$context.nodes.make-invoice"]},
            "missing": "$context.event.nope",
            "not a path": "$context.",
            "é\"": true
        });
        let resolved = resolve_template(&template, &context());
        assert_eq!(
            resolved_size(&template, &context()),
            serde_json::to_string(&resolved).unwrap().len()
        );
    }

    #[test]
    fn sizing_a_template_that_repeats_a_large_value_does_not_resolve_it() {
        // Resolving would copy 10,000 × 1 MiB; sizing measures the value once.
        let mut nodes = Map::new();
        nodes.insert(
            "big".into(),
            json!({"state": "success", "output": "x".repeat(1 << 20)}),
        );
        let context = JsonContext {
            nodes,
            ..JsonContext::default()
        };
        let template = Value::Array(vec![json!("$context.nodes.big.output"); 10_000]);
        assert_eq!(
            resolved_size(&template, &context),
            10_000 * ((1 << 20) + 2) + 2 + 9_999
        );
    }

    #[test]
    fn finds_context_strings_with_their_location() {
        let value = json!({"a": ["$context.event.x", {"b": "$context.run.id"}], "c": "x"});
        let found = context_strings(&value);
        assert_eq!(
            found,
            vec![
                (".a[0]".to_owned(), "$context.event.x"),
                (".a[1].b".to_owned(), "$context.run.id")
            ]
        );
    }

    proptest! {
        #[test]
        fn parse_and_resolve_never_panic(text in "\\$context\\.[a-z0-9._-]{0,30}") {
            if let Ok(path) = ContextPath::parse(&text) {
                let _ = path.resolve(&context());
            }
        }
    }
}
