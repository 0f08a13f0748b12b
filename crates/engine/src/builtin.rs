//! The built-in tasks of DESIGN §7 that complete in-process. Each returns its
//! effect as a document; the engine stores it under `{run_id}:{node_id}` in
//! the same transaction as the node's checkpoint, so running a node twice
//! produces one document. Amounts are decimals rounded to the currency's
//! minor unit (half-even) and returned as strings.

use std::sync::Arc;

use async_trait::async_trait;
use moneyflow_core::catalogue::{Catalogue, TaskSpec};
use moneyflow_core::money::{decimal_from_json, round_to_currency};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::task::{Task, TaskError, TaskInput, TaskOutput};

type Body = fn(&TaskInput<'_>) -> Result<TaskOutput, TaskError>;

/// A built-in task: its spec from the catalogue and a function.
struct Builtin {
    spec: TaskSpec,
    body: Body,
}

#[async_trait]
impl Task for Builtin {
    fn spec(&self) -> &TaskSpec {
        &self.spec
    }

    // Every built-in's effect is the documents it returns.
    fn is_pure(&self) -> bool {
        true
    }

    async fn execute(&self, input: TaskInput<'_>) -> Result<TaskOutput, TaskError> {
        (self.body)(&input)
    }
}

/// Every in-process built-in task (`http_request` lives in [`crate::http`]).
pub fn all() -> Vec<Arc<dyn Task>> {
    let bodies: [(&str, Body); 11] = [
        ("payment.tasks.generate_invoice", generate_invoice),
        ("payment.tasks.generate_shipment", generate_shipment),
        ("payment.tasks.duplicate_shipment", duplicate_shipment),
        ("payment.tasks.add_shipment_item", add_shipment_item),
        ("payment.tasks.generate_royalty", generate_royalty),
        ("payment.tasks.generate_commission", generate_commission),
        ("payment.tasks.activate_subscription", activate_subscription),
        ("payment.tasks.upgrade_subscription", upgrade_subscription),
        ("payment.tasks.grant_digital_access", grant_digital_access),
        ("payment.tasks.notify", notify),
        ("payment.tasks.abort_flow", abort_flow),
    ];
    bodies
        .into_iter()
        .map(|(name, body)| {
            let spec = Catalogue::builtin()
                .get(name)
                .unwrap_or_else(|| panic!("{name} is in the built-in catalogue"))
                .clone();
            Arc::new(Builtin { spec, body }) as Arc<dyn Task>
        })
        .collect()
}

/// A required parameter (validation guarantees it is present; a path that
/// resolved to null is caught by the engine before the task runs).
fn required<'a>(input: &'a TaskInput<'_>, name: &str) -> Result<&'a Value, TaskError> {
    input
        .param(name)
        .ok_or_else(|| TaskError::permanent(format!("the parameter `{name}` is missing")))
}

/// A decimal parameter, else the event's field of the same meaning.
fn amount(input: &TaskInput<'_>, name: &str, event_field: &str) -> Result<Decimal, TaskError> {
    let (value, source) = match input.param(name) {
        Some(value) => (value, format!("the parameter `{name}`")),
        None => (
            input.event.get(event_field).unwrap_or(&Value::Null),
            format!("the event's `{event_field}`"),
        ),
    };
    if value.is_null() {
        return Err(TaskError::permanent(format!(
            "no amount: set the parameter `{name}` or send `{event_field}` in the event"
        )));
    }
    decimal_from_json(value)
        .ok_or_else(|| TaskError::permanent(format!("{source} is not a decimal amount: {value}")))
}

fn rate(input: &TaskInput<'_>, default: Decimal) -> Result<Decimal, TaskError> {
    match input.param("rate") {
        None => Ok(default),
        Some(value) => decimal_from_json(value)
            .filter(|r| *r >= Decimal::ZERO && *r <= Decimal::ONE)
            .ok_or_else(|| {
                TaskError::permanent(format!(
                    "`rate` must be a decimal between 0 and 1, got {value}"
                ))
            }),
    }
}

fn currency(input: &TaskInput<'_>) -> Option<String> {
    input
        .param("currency")
        .or_else(|| input.event.get("currency"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn optional(input: &TaskInput<'_>, name: &str) -> Value {
    input.param(name).cloned().unwrap_or(Value::Null)
}

/// The shipment this node refers to: its `shipment_id` parameter, else the
/// one made earlier in this run.
fn shipment_id(input: &TaskInput<'_>) -> Result<Value, TaskError> {
    if let Some(id) = input.param("shipment_id") {
        return Ok(id.clone());
    }
    input
        .earlier_outputs
        .iter()
        .rev()
        .find(|(task, _)| *task == "payment.tasks.generate_shipment")
        .and_then(|(_, output)| output.get("shipment_id").cloned())
        .ok_or_else(|| {
            TaskError::permanent(
                "no shipment to refer to: give `shipment_id`, or run payment.tasks.generate_shipment before this node",
            )
        })
}

fn generate_invoice(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let currency = currency(input);
    let total = round_to_currency(amount(input, "total", "total")?, currency.as_deref());
    let invoice_id = input.document_id("inv");
    // Derived from the idempotency key: the same on every attempt, unique per node of a run.
    let number = format!("INV-{}", invoice_id[4..16].to_uppercase());
    let company_id = input
        .param("company_id")
        .cloned()
        .unwrap_or_else(|| Value::String(input.company_id.to_owned()));
    let output = json!({"invoice_id": invoice_id, "number": number, "total": total.to_string()});
    let body = json!({
        "invoice_id": invoice_id, "number": number, "total": total.to_string(), "currency": currency,
        "customer": optional(input, "customer"), "company_id": company_id,
        "product_id": optional(input, "product_id"), "items": optional(input, "items"),
    });
    Ok(TaskOutput::new(output).with_document("invoice", body))
}

fn generate_shipment(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let product_id = required(input, "product_id")?.clone();
    let quantity = match input.param("quantity") {
        None => 1,
        Some(value) => value.as_u64().filter(|q| *q >= 1).ok_or_else(|| {
            TaskError::permanent(format!(
                "`quantity` must be an integer of at least 1, got {value}"
            ))
        })?,
    };
    let shipment_id = input.document_id("shp");
    let body = json!({
        "shipment_id": shipment_id, "product_id": product_id, "quantity": quantity,
        "address": optional(input, "address"), "packing_slip": {"product_id": product_id, "quantity": quantity},
    });
    Ok(TaskOutput::new(json!({"shipment_id": shipment_id})).with_document("shipment", body))
}

fn duplicate_shipment(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let department = required(input, "department")?.clone();
    let original = shipment_id(input)?;
    let copy_id = input.document_id("slip");
    let body = json!({"copy_id": copy_id, "shipment_id": original, "department": department});
    Ok(
        TaskOutput::new(json!({"shipment_id": original, "copy_id": copy_id}))
            .with_document("packing_slip_copy", body),
    )
}

fn add_shipment_item(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let item = required(input, "item")?.clone();
    let shipment = shipment_id(input)?;
    let body = json!({"shipment_id": shipment, "item": item});
    Ok(
        TaskOutput::new(json!({"shipment_id": shipment, "items": [item]}))
            .with_document("shipment_item", body),
    )
}

fn generate_royalty(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let product_id = required(input, "product_id")?.clone();
    let currency = currency(input);
    let total = amount(input, "total", "total")?;
    let rate = rate(input, Decimal::new(10, 2))?;
    let amount = round_to_currency(total * rate, currency.as_deref());
    let royalty_id = input.document_id("roy");
    let company_id = input
        .param("company_id")
        .cloned()
        .unwrap_or_else(|| Value::String(input.company_id.to_owned()));
    let body = json!({
        "royalty_id": royalty_id, "product_id": product_id, "company_id": company_id,
        "base": total.to_string(), "rate": rate.to_string(), "amount": amount.to_string(), "currency": currency,
    });
    Ok(
        TaskOutput::new(json!({"royalty_id": royalty_id, "amount": amount.to_string()}))
            .with_document("royalty", body),
    )
}

fn generate_commission(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let agent_id = required(input, "agent_id")?.clone();
    let currency = currency(input);
    let total = amount(input, "total", "total")?;
    let rate = rate(input, Decimal::new(5, 2))?;
    let amount = round_to_currency(total * rate, currency.as_deref());
    let commission_id = input.document_id("com");
    let body = json!({
        "commission_id": commission_id, "agent_id": agent_id,
        "base": total.to_string(), "rate": rate.to_string(), "amount": amount.to_string(), "currency": currency,
    });
    Ok(
        TaskOutput::new(json!({"commission_id": commission_id, "amount": amount.to_string()}))
            .with_document("commission", body),
    )
}

fn activate_subscription(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let subscription_id = required(input, "subscription_id")?.clone();
    let body = json!({"subscription_id": subscription_id, "status": "active"});
    Ok(TaskOutput::new(body.clone()).with_document("subscription_activation", body))
}

fn upgrade_subscription(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let subscription_id = required(input, "subscription_id")?.clone();
    let output = json!({"subscription_id": subscription_id, "status": "upgraded"});
    let body = json!({"subscription_id": subscription_id, "status": "upgraded", "plan": optional(input, "plan")});
    Ok(TaskOutput::new(output).with_document("subscription_upgrade", body))
}

fn grant_digital_access(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let product_id = required(input, "product_id")?.clone();
    let grant_id = input.document_id("grant");
    let body = json!({
        "grant_id": grant_id, "product_id": product_id,
        "customer": optional(input, "customer"), "expires_at": optional(input, "expires_at"),
    });
    Ok(TaskOutput::new(json!({"grant_id": grant_id})).with_document("access_grant", body))
}

fn notify(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    required(input, "channel")?;
    let notification_id = input.document_id("ntf");
    let mut body = input.parameters.clone();
    body.insert(
        "notification_id".into(),
        Value::String(notification_id.clone()),
    );
    Ok(TaskOutput::new(json!({"notification_id": notification_id}))
        .with_document("notification", Value::Object(body)))
}

fn abort_flow(input: &TaskInput<'_>) -> Result<TaskOutput, TaskError> {
    let reason = input
        .param("reason")
        .and_then(Value::as_str)
        .unwrap_or("aborted by the rule")
        .to_owned();
    Ok(TaskOutput {
        output: json!({"reason": reason}),
        documents: Vec::new(),
        abort: Some(reason),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn run(
        name: &str,
        parameters: Value,
        event: Value,
        earlier: &[(&str, &Value)],
    ) -> Result<TaskOutput, TaskError> {
        let task = all().into_iter().find(|t| t.spec().name == name).unwrap();
        let parameters: Map<String, Value> = parameters.as_object().cloned().unwrap_or_default();
        let input = TaskInput {
            run_id: "run_1",
            node_id: "node",
            company_id: "acme",
            idempotency_key: "run_1:node",
            attempt: 1,
            parameters: &parameters,
            event: &event,
            earlier_outputs: earlier,
        };
        futures::executor::block_on(task.execute(input))
    }

    #[test]
    fn invoice_defaults_to_the_event_total_rounded_half_even() {
        let out = run(
            "payment.tasks.generate_invoice",
            json!({}),
            json!({"total": "10.005", "currency": "BRL"}),
            &[],
        )
        .unwrap();
        assert_eq!(out.output["total"], json!("10.00"));
        assert_eq!(out.documents[0].kind, "invoice");
        assert_eq!(out.documents[0].body["company_id"], json!("acme"));
        let again = run(
            "payment.tasks.generate_invoice",
            json!({}),
            json!({"total": "10.005", "currency": "BRL"}),
            &[],
        )
        .unwrap();
        assert_eq!(out, again, "the same node makes the same document");
    }

    #[test]
    fn invoice_without_any_total_fails_permanently() {
        let error = run("payment.tasks.generate_invoice", json!({}), json!({}), &[]).unwrap_err();
        assert!(!error.is_retryable());
        assert!(error.to_string().contains("total"));
    }

    #[test]
    fn royalty_and_commission_use_default_rates() {
        let out = run(
            "payment.tasks.generate_royalty",
            json!({"product_id": "p"}),
            json!({"total": 120}),
            &[],
        )
        .unwrap();
        assert_eq!(out.output["amount"], json!("12.00"));
        let out = run(
            "payment.tasks.generate_commission",
            json!({"agent_id": "a", "rate": "0.075"}),
            json!({"total": "99.99", "currency": "JPY"}),
            &[],
        )
        .unwrap();
        assert_eq!(out.output["amount"], json!("7"));
    }

    #[test]
    fn duplicate_shipment_finds_the_shipment_made_earlier() {
        let shipment = json!({"shipment_id": "shp_1"});
        let earlier = [("payment.tasks.generate_shipment", &shipment)];
        let out = run(
            "payment.tasks.duplicate_shipment",
            json!({"department": "royalties"}),
            json!({}),
            &earlier,
        )
        .unwrap();
        assert_eq!(out.output["shipment_id"], json!("shp_1"));
        assert_eq!(out.documents[0].body["department"], json!("royalties"));
        let error = run(
            "payment.tasks.duplicate_shipment",
            json!({"department": "royalties"}),
            json!({}),
            &[],
        )
        .unwrap_err();
        assert!(!error.is_retryable());
    }

    #[test]
    fn abort_flow_asks_to_abort() {
        let out = run(
            "payment.tasks.abort_flow",
            json!({"reason": "not a product"}),
            json!({}),
            &[],
        )
        .unwrap();
        assert_eq!(out.abort.as_deref(), Some("not a product"));
    }

    #[test]
    fn notify_keeps_further_fields() {
        let out = run(
            "payment.tasks.notify",
            json!({"channel": "royalties", "book": "Dune"}),
            json!({}),
            &[],
        )
        .unwrap();
        assert_eq!(out.documents[0].body["book"], json!("Dune"));
    }
}
