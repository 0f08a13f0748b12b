//! Benchmarks of the pure core: validating a large rule graph and evaluating
//! a compiled condition. Run with `cargo bench -p moneyflow-core`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::eval::CompiledCondition;
use moneyflow_core::model::NodeKind;
use moneyflow_core::path::JsonContext;
use moneyflow_core::validation::validate_rule_set;
use serde_json::{Value, json};

/// A valid 1,000-node graph: alternating conditions and tasks, each node
/// depending on one or two earlier nodes, tasks reading `$context` paths.
fn thousand_node_graph() -> Value {
    let rules: Vec<Value> = (0..1_000)
        .map(|i| {
            let mut depends_on = Vec::new();
            if i > 0 {
                depends_on.push(json!({"node_id": format!("n{}", i - 1), "state": "success"}));
            }
            if i > 10 {
                depends_on.push(json!({"node_id": format!("n{}", i / 2), "state": "failure"}));
            }
            if i % 2 == 0 {
                json!({"node_type": "condition", "node_id": format!("n{i}"), "depends_on": depends_on,
                       "expect": [{"field": "$context.event.total", "operator": "gt", "value": [i]},
                                  {"field": "$context.event.product.type", "operator": "in", "value": ["book", "ebook"]}]})
            } else {
                json!({"node_type": "task", "node_id": format!("n{i}"), "depends_on": depends_on,
                       "task_name": "payment.tasks.generate_royalty",
                       "parameters": {"product_id": "$context.event.product.id", "total": "$context.event.total", "rate": "0.1"}})
            }
        })
        .collect();
    json!({"company_id": "bench", "rules": rules})
}

/// One condition with 20 expectations over every kind of operator, all holding.
fn twenty_condition_node() -> Value {
    json!({"company_id": "bench", "rules": [{"node_type": "condition", "node_id": "c", "expect": [
        {"field": "$context.event.type", "operator": "eq", "value": ["product"]},
        {"field": "$context.event.total", "operator": "gt", "value": [100]},
        {"field": "$context.event.total", "operator": "gte", "value": ["120.00"]},
        {"field": "$context.event.total", "operator": "lt", "value": [1000]},
        {"field": "$context.event.total", "operator": "lte", "value": [120]},
        {"field": "$context.event.discount", "operator": "eq", "value": ["5.0"]},
        {"field": "$context.event.currency", "operator": "in", "value": ["BRL", "USD", "EUR"]},
        {"field": "$context.event.currency", "operator": "nin", "value": ["JPY", "GBP"]},
        {"field": "$context.event.product.type", "operator": "in", "value": ["book", "ebook"]},
        {"field": "$context.event.product.name", "operator": "contains", "value": ["Dune"]},
        {"field": "$context.event.product.name", "operator": "ncontains", "value": ["Harry"]},
        {"field": "$context.event.product.name", "operator": "startswith", "value": ["Dune"]},
        {"field": "$context.event.product.name", "operator": "endswith", "value": ["Messiah"]},
        {"field": "$context.event.product.tags", "operator": "contains", "value": ["scifi"]},
        {"field": "$context.event.customer.email", "operator": "isnotnull"},
        {"field": "$context.event.coupon", "operator": "isnull"},
        {"field": "$context.event.customer.country", "operator": "neq", "value": ["US"]},
        {"field": "$context.event.paid_at", "operator": "gt", "value": ["2026-01-01T00:00:00Z"]},
        {"field": "$context.event.tax", "operator": "lt", "value": ["10"]},
        {"field": "$context.event.fees", "operator": "gte", "value": [0]}
    ]}]})
}

fn bench(c: &mut Criterion) {
    let catalogue = Catalogue::builtin();
    let graph = thousand_node_graph();
    assert!(validate_rule_set(&graph, catalogue).is_ok());
    c.bench_function("validate 1,000-node graph", |b| {
        b.iter(|| validate_rule_set(black_box(&graph), catalogue).is_ok())
    });

    let rule_set = validate_rule_set(&twenty_condition_node(), catalogue).expect("valid");
    let NodeKind::Condition(condition) = &rule_set.rules[0].kind else {
        unreachable!("the node is a condition")
    };
    let compiled = CompiledCondition::compile(condition).expect("compiles");
    let context = JsonContext {
        event: json!({
            "type": "product", "total": "120.00", "discount": 5, "currency": "BRL", "tax": "9.50", "fees": 1,
            "paid_at": "2026-11-28T10:00:00Z",
            "product": {"type": "book", "name": "Dune Messiah", "tags": ["scifi", "classic"]},
            "customer": {"email": "a@b.c", "country": "BR"}
        }),
        ..JsonContext::default()
    };
    assert!(
        compiled.holds(&context),
        "{:#?}",
        compiled.explain(&context)
    );
    c.bench_function("evaluate 20-condition node", |b| {
        b.iter(|| compiled.holds(black_box(&context)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
