//! The built-in task catalogue (DESIGN §7): each task's name, what it does,
//! its parameters and what it returns. Validation checks parameters against
//! these specs; `GET /tasks` serves them with a JSON Schema the canvas reads;
//! the engine executes the tasks under the same names.

use std::sync::OnceLock;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::money::decimal_from_json;
use crate::path::PREFIX;

/// The type a parameter's literal value must have. Any parameter may instead
/// be a `$context.` path, whose value is only known at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A non-empty string.
    Text,
    /// An identifier: a non-empty string or an integer.
    Id,
    /// A decimal amount: a JSON number or a numeric string.
    Decimal,
    /// A decimal between 0 and 1 inclusive (a rate).
    Rate,
    /// An integer at least this large.
    Integer { min: i64 },
    /// Three upper-case letters (ISO 4217).
    Currency,
    /// An RFC 3339 timestamp.
    Timestamp,
    /// An absolute `http://` or `https://` URL.
    Url,
    /// One of the listed strings.
    OneOf(&'static [&'static str]),
    /// A JSON object.
    Object,
    /// A JSON object whose values are strings.
    StringMap,
    /// Request headers: a [`Self::StringMap`] without the headers
    /// [`refused_request_header`] names.
    RequestHeaders,
    /// A JSON list.
    List,
    /// Any JSON value.
    Any,
}

impl ParamType {
    fn schema(self) -> Value {
        match self {
            Self::Text => json!({"type": "string", "minLength": 1}),
            Self::Id => json!({"type": ["string", "integer"], "minLength": 1}),
            Self::Decimal => {
                json!({"type": ["number", "string"], "pattern": DECIMAL_PATTERN, "format": "decimal"})
            }
            Self::Rate => {
                json!({"type": ["number", "string"], "pattern": DECIMAL_PATTERN, "format": "decimal", "minimum": 0, "maximum": 1})
            }
            Self::Integer { min } => json!({"type": "integer", "minimum": min}),
            Self::Currency => json!({"type": "string", "pattern": "^[A-Z]{3}$"}),
            Self::Timestamp => json!({"type": "string", "format": "date-time"}),
            Self::Url => json!({"type": "string", "format": "uri", "pattern": "^https?://"}),
            Self::OneOf(values) => json!({"type": "string", "enum": values}),
            Self::Object => json!({"type": "object"}),
            Self::StringMap | Self::RequestHeaders => {
                json!({"type": "object", "additionalProperties": {"type": "string"}})
            }
            Self::List => json!({"type": "array"}),
            Self::Any => json!({}),
        }
    }

    /// `None` when `value` fits, else what was expected.
    pub fn check(self, value: &Value) -> Option<String> {
        if let (Self::RequestHeaders, Some(map)) = (self, value.as_object())
            && let Some((name, why)) = map
                .keys()
                .find_map(|name| refused_request_header(name).map(|why| (name, why)))
        {
            return Some(format!("{} without `{name}` ({why})", self.expected()));
        }
        let fits = match self {
            Self::Text => value.as_str().is_some_and(|s| !s.is_empty()),
            Self::Id => {
                value.as_str().is_some_and(|s| !s.is_empty())
                    || value.as_i64().is_some()
                    || value.as_u64().is_some()
            }
            Self::Decimal => decimal_from_json(value).is_some(),
            Self::Rate => decimal_from_json(value).is_some_and(|d| d >= 0.into() && d <= 1.into()),
            Self::Integer { min } => value.as_i64().is_some_and(|n| n >= min),
            Self::Currency => value
                .as_str()
                .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase())),
            Self::Timestamp => value.as_str().is_some_and(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            }),
            Self::Url => value.as_str().is_some_and(|s| {
                (s.starts_with("http://") || s.starts_with("https://"))
                    && s.len() > "https://".len()
            }),
            Self::OneOf(values) => value.as_str().is_some_and(|s| values.contains(&s)),
            Self::Object => value.is_object(),
            Self::StringMap | Self::RequestHeaders => value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
            Self::List => value.is_array(),
            Self::Any => true,
        };
        (!fits).then(|| self.expected())
    }

    fn expected(self) -> String {
        match self {
            Self::Text => "a non-empty string".into(),
            Self::Id => "a non-empty string or an integer".into(),
            Self::Decimal => {
                "a decimal amount (a number or a numeric string such as \"19.90\")".into()
            }
            Self::Rate => "a decimal rate between 0 and 1 (e.g. 0.10)".into(),
            Self::Integer { min } => format!("an integer of at least {min}"),
            Self::Currency => "an ISO 4217 currency code such as \"BRL\" or \"USD\"".into(),
            Self::Timestamp => "an RFC 3339 timestamp such as \"2026-12-31T23:59:59Z\"".into(),
            Self::Url => "an absolute http:// or https:// URL".into(),
            Self::OneOf(values) => format!("one of {}", values.join(", ")),
            Self::Object => "a JSON object".into(),
            Self::StringMap => "an object whose values are strings".into(),
            Self::RequestHeaders => "an object of header names to string values".into(),
            Self::List => "a list".into(),
            Self::Any => "any JSON value".into(),
        }
    }
}

/// Why a rule may not set request header `name` (any case) on an
/// `http_request`, or `None` when it may. Hop-by-hop, framing, proxy and
/// forwarding headers belong to the server: a tenant setting them could
/// smuggle requests, spoof its origin to the endpoint, or steer a proxy.
pub fn refused_request_header(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "host" => Some("the server sets `Host` from the URL"),
        "connection" | "keep-alive" | "te" | "trailer" | "upgrade" | "expect" => {
            Some("a hop-by-hop header, which the server manages")
        }
        "transfer-encoding" | "content-length" => Some("the server frames the body itself"),
        "forwarded"
        | "via"
        | "x-real-ip"
        | "true-client-ip"
        | "x-client-ip"
        | "x-cluster-client-ip"
        | "cf-connecting-ip"
        | "client-ip" => {
            Some("a forwarding header, which would misstate where the request comes from")
        }
        "idempotency-key" => Some("the server sets `Idempotency-Key: {run_id}:{node_id}`"),
        _ if lower.starts_with("x-forwarded-") => {
            Some("a forwarding header, which would misstate where the request comes from")
        }
        _ if lower.starts_with("proxy-") => Some("a proxy header, which the server does not send"),
        _ => None,
    }
}

const DECIMAL_PATTERN: &str = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$";

/// One parameter of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    pub description: &'static str,
}

/// A catalogue task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub params: Vec<ParamSpec>,
    /// Whether parameters beyond `params` are accepted and kept (`notify`).
    pub open_params: bool,
    /// The output fields, for people and the canvas's path completion.
    pub output: &'static [(&'static str, &'static str)],
}

impl TaskSpec {
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.to_owned()).collect()
    }

    /// The JSON Schema (2020-12) of the task's `parameters` object. Every
    /// property also accepts a `$context.` path.
    pub fn parameters_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .params
            .iter()
            .map(|p| {
                let mut literal = p.kind.schema();
                if let Value::Object(map) = &mut literal {
                    map.insert("description".into(), p.description.into());
                }
                let schema = json!({
                    "anyOf": [literal, {"$ref": "#/$defs/context_path"}],
                    "description": p.description,
                });
                (p.name.to_owned(), schema)
            })
            .collect();
        let required: Vec<&str> = self
            .params
            .iter()
            .filter(|p| p.required)
            .map(|p| p.name)
            .collect();
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": format!("{} parameters", self.name),
            "type": ["object", "null"],
            "properties": properties,
            "required": required,
            "additionalProperties": self.open_params,
            "$defs": {
                "context_path": {
                    "type": "string",
                    "pattern": format!("^\\{PREFIX}"),
                    "description": "A $context path resolved at run time, e.g. $context.event.product.id"
                }
            }
        })
    }

    fn output_schema(&self) -> Value {
        let properties: Map<String, Value> = self
            .output
            .iter()
            .map(|(name, description)| ((*name).to_owned(), json!({"description": description})))
            .collect();
        json!({"type": "object", "properties": properties})
    }
}

impl Serialize for TaskSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("TaskSpec", 5)?;
        s.serialize_field("name", self.name)?;
        s.serialize_field("title", self.title)?;
        s.serialize_field("description", self.description)?;
        s.serialize_field("parameters_schema", &self.parameters_schema())?;
        s.serialize_field("output", &self.output_schema())?;
        s.end()
    }
}

/// The set of tasks rules may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    tasks: Vec<TaskSpec>,
}

impl Catalogue {
    /// The built-in catalogue of DESIGN §7.
    pub fn builtin() -> &'static Catalogue {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        BUILTIN.get_or_init(|| Catalogue {
            tasks: builtin_tasks(),
        })
    }

    /// A catalogue of these tasks (an engine with tasks of its own builds one).
    pub fn new(tasks: Vec<TaskSpec>) -> Self {
        Self { tasks }
    }

    /// Adds a task, replacing one of the same name.
    pub fn insert(&mut self, spec: TaskSpec) {
        self.tasks.retain(|t| t.name != spec.name);
        self.tasks.push(spec);
    }

    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    pub fn get(&self, name: &str) -> Option<&TaskSpec> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name.to_owned()).collect()
    }
}

const fn param(
    name: &'static str,
    kind: ParamType,
    required: bool,
    description: &'static str,
) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required,
        description,
    }
}

fn builtin_tasks() -> Vec<TaskSpec> {
    use ParamType::*;
    const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
    vec![
        TaskSpec {
            name: "payment.tasks.generate_invoice",
            title: "Generate invoice",
            description: "Issues an invoice for the payment.",
            params: vec![
                param(
                    "total",
                    Decimal,
                    false,
                    "Amount invoiced; default: the event's total.",
                ),
                param(
                    "currency",
                    Currency,
                    false,
                    "ISO 4217 code; default: the event's currency.",
                ),
                param(
                    "customer",
                    Any,
                    false,
                    "Who is invoiced (an id or an object).",
                ),
                param(
                    "company_id",
                    Id,
                    false,
                    "The issuing company; default: the run's company.",
                ),
                param("product_id", Id, false, "The product invoiced."),
                param("items", List, false, "Invoice lines."),
            ],
            open_params: false,
            output: &[
                ("invoice_id", "Id of the invoice document."),
                ("number", "Sequential invoice number."),
                ("total", "Amount invoiced, as a decimal string."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.generate_shipment",
            title: "Generate shipment",
            description: "Creates a shipment with its packing slip.",
            params: vec![
                param("product_id", Id, true, "The product shipped."),
                param(
                    "quantity",
                    Integer { min: 1 },
                    false,
                    "How many; default 1.",
                ),
                param(
                    "address",
                    Any,
                    false,
                    "Where to ship (a string or an object).",
                ),
            ],
            open_params: false,
            output: &[("shipment_id", "Id of the shipment document.")],
        },
        TaskSpec {
            name: "payment.tasks.duplicate_shipment",
            title: "Duplicate packing slip",
            description: "Makes a copy of a shipment's packing slip for a department.",
            params: vec![
                param(
                    "department",
                    Text,
                    true,
                    "Department receiving the copy, e.g. royalties.",
                ),
                param(
                    "shipment_id",
                    Id,
                    false,
                    "Shipment to copy; default: the shipment made earlier in this run.",
                ),
            ],
            open_params: false,
            output: &[("shipment_id", "Id of the copied packing slip.")],
        },
        TaskSpec {
            name: "payment.tasks.add_shipment_item",
            title: "Add shipment item",
            description: "Adds an item line (e.g. a free gift) to a shipment.",
            params: vec![
                param("item", Any, true, "The item to add (a name or an object)."),
                param(
                    "shipment_id",
                    Id,
                    false,
                    "Shipment to change; default: the shipment made earlier in this run.",
                ),
            ],
            open_params: false,
            output: &[
                ("shipment_id", "Id of the shipment."),
                ("items", "The shipment's item lines."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.generate_royalty",
            title: "Generate royalty",
            description: "Records a royalty owed on the sale.",
            params: vec![
                param("product_id", Id, true, "The product the royalty is for."),
                param(
                    "total",
                    Decimal,
                    false,
                    "Base amount; default: the event's total.",
                ),
                param("rate", Rate, false, "Royalty rate; default 0.10."),
                param(
                    "company_id",
                    Id,
                    false,
                    "The company owing it; default: the run's company.",
                ),
            ],
            open_params: false,
            output: &[
                ("royalty_id", "Id of the royalty document."),
                ("amount", "Royalty amount, as a decimal string."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.generate_commission",
            title: "Generate commission",
            description: "Records a sales agent's commission.",
            params: vec![
                param("agent_id", Id, true, "The agent earning the commission."),
                param(
                    "total",
                    Decimal,
                    false,
                    "Base amount; default: the event's total.",
                ),
                param("rate", Rate, false, "Commission rate; default 0.05."),
            ],
            open_params: false,
            output: &[
                ("commission_id", "Id of the commission document."),
                ("amount", "Commission amount, as a decimal string."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.activate_subscription",
            title: "Activate subscription",
            description: "Activates a subscription.",
            params: vec![param(
                "subscription_id",
                Id,
                true,
                "The subscription to activate.",
            )],
            open_params: false,
            output: &[
                ("subscription_id", "The subscription."),
                ("status", "Its new status: active."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.upgrade_subscription",
            title: "Upgrade subscription",
            description: "Moves a subscription to another plan.",
            params: vec![
                param("subscription_id", Id, true, "The subscription to upgrade."),
                param("plan", Text, false, "The new plan."),
            ],
            open_params: false,
            output: &[
                ("subscription_id", "The subscription."),
                ("status", "Its new status: upgraded."),
            ],
        },
        TaskSpec {
            name: "payment.tasks.grant_digital_access",
            title: "Grant digital access",
            description: "Grants a customer access to a digital product.",
            params: vec![
                param("product_id", Id, true, "The digital product."),
                param("customer", Any, false, "Who gets access."),
                param(
                    "expires_at",
                    Timestamp,
                    false,
                    "When access ends; default: never.",
                ),
            ],
            open_params: false,
            output: &[("grant_id", "Id of the access grant.")],
        },
        TaskSpec {
            name: "payment.tasks.notify",
            title: "Notify",
            description: "Puts a notification in the outbox for a channel (email, or a department such as royalties). Further fields are kept.",
            params: vec![
                param(
                    "channel",
                    Text,
                    true,
                    "email, or a department such as royalties.",
                ),
                param("to", Any, false, "Recipient(s)."),
                param("message", Text, false, "The text."),
            ],
            open_params: true,
            output: &[("notification_id", "Id of the notification.")],
        },
        TaskSpec {
            name: "payment.tasks.abort_flow",
            title: "Abort flow",
            description: "Ends the run as aborted: every node not yet finished is skipped.",
            params: vec![param("reason", Text, false, "Why the flow stops.")],
            open_params: false,
            output: &[("reason", "The reason given.")],
        },
        TaskSpec {
            name: "payment.tasks.http_request",
            title: "HTTP request",
            description: "Calls the company's endpoint with an Idempotency-Key. 5xx, 429 and timeouts are retried; other 4xx fail.",
            params: vec![
                param("url", Url, true, "The endpoint."),
                param("method", OneOf(HTTP_METHODS), false, "Default POST."),
                param(
                    "headers",
                    RequestHeaders,
                    false,
                    "Extra request headers; hop-by-hop, framing, proxy and forwarding headers (Host, Connection, Transfer-Encoding, Content-Length, Proxy-*, Forwarded, X-Forwarded-*…) are refused.",
                ),
                param("body", Any, false, "JSON body; default: the payment event."),
            ],
            open_params: false,
            output: &[
                ("status", "HTTP status code."),
                ("body", "Response body (JSON when it parses, else text)."),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_of_the_design_is_in_the_catalogue() {
        let names = Catalogue::builtin().names();
        for suffix in [
            "generate_invoice",
            "generate_shipment",
            "duplicate_shipment",
            "add_shipment_item",
            "generate_royalty",
            "generate_commission",
            "activate_subscription",
            "upgrade_subscription",
            "grant_digital_access",
            "notify",
            "abort_flow",
            "http_request",
        ] {
            assert!(
                names.contains(&format!("payment.tasks.{suffix}")),
                "{suffix}"
            );
        }
    }

    #[test]
    fn schema_lists_required_parameters() {
        let spec = Catalogue::builtin()
            .get("payment.tasks.generate_shipment")
            .unwrap();
        let schema = spec.parameters_schema();
        assert_eq!(schema["required"], json!(["product_id"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema["properties"]["quantity"]["anyOf"].is_array());
    }

    #[test]
    fn parameter_types_check_literals() {
        assert_eq!(ParamType::Decimal.check(&json!("12.50")), None);
        assert!(ParamType::Decimal.check(&json!("twelve")).is_some());
        assert_eq!(ParamType::Rate.check(&json!(0.1)), None);
        assert!(ParamType::Rate.check(&json!(2)).is_some());
        assert_eq!(ParamType::Integer { min: 1 }.check(&json!(3)), None);
        assert!(ParamType::Integer { min: 1 }.check(&json!(0)).is_some());
        assert!(ParamType::Currency.check(&json!("brl")).is_some());
        assert_eq!(
            ParamType::Url.check(&json!("https://shop.example/hook")),
            None
        );
        assert!(ParamType::Url.check(&json!("ftp://x")).is_some());
        assert_eq!(
            ParamType::Timestamp.check(&json!("2026-12-31T23:59:59Z")),
            None
        );
        assert!(ParamType::OneOf(&["GET"]).check(&json!("TRACE")).is_some());
    }

    #[test]
    fn hop_and_forwarding_headers_are_refused_by_name_in_any_case() {
        let headers = ParamType::RequestHeaders;
        assert_eq!(
            headers.check(&json!({"X-Signature": "abc", "Accept": "x"})),
            None
        );
        for name in [
            "Host",
            "host",
            "X-Forwarded-For",
            "x-forwarded-host",
            "Forwarded",
            "Connection",
            "Transfer-Encoding",
            "Content-Length",
            "Proxy-Authorization",
            "TE",
            "Upgrade",
            "X-Real-IP",
            "Idempotency-Key",
        ] {
            let expected = headers
                .check(&json!({"Accept": "x", name: "v"}))
                .unwrap_or_else(|| panic!("{name} must be refused"));
            assert!(expected.contains(&format!("`{name}`")), "{expected}");
        }
        assert!(headers.check(&json!({"Accept": 1})).is_some());
    }
}
