//! The condition evaluator on any expectations and any context, validated or
//! not. The input is a JSON object
//! `{"expect": [{"field", "operator", "value"}…], "match": "all"|"any",
//!   "event": …, "company": …, "nodes": {…}}`.
//! Evaluation never panics, and `holds` agrees with `explain`, expectation
//! by expectation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moneyflow_core::eval::{CompiledCondition, CompiledExpectation, Operator};
use moneyflow_core::model::{Condition, Expectation, Trigger};
use moneyflow_core::path::JsonContext;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let expect: Vec<Expectation> = input
        .get("expect")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(Expectation {
                field: e.get("field")?.as_str()?.to_owned(),
                operator: Operator::parse(e.get("operator")?.as_str()?)?,
                value: e.get("value").and_then(Value::as_array).cloned(),
            })
        })
        .collect();
    let match_mode = input
        .get("match")
        .and_then(Value::as_str)
        .and_then(Trigger::parse)
        .unwrap_or_default();
    let context = JsonContext {
        event: input.get("event").cloned().unwrap_or(Value::Null),
        company: input.get("company").cloned().unwrap_or(Value::Null),
        run: serde_json::json!({"id": "run_1"}),
        nodes: input
            .get("nodes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    };
    let condition = Condition { expect, match_mode };
    let Some(compiled) = CompiledCondition::compile(&condition) else {
        return;
    };
    let outcome = compiled.explain(&context);
    assert_eq!(compiled.holds(&context), outcome.matched);
    for (expectation, seen) in condition.expect.iter().zip(&outcome.expectations) {
        let single = CompiledExpectation::compile(expectation).expect("compiled above");
        let verdict = single.evaluate(&context);
        assert_eq!(verdict.held, seen.held);
        assert_eq!(verdict.mismatch.is_some(), seen.reason.is_some());
    }
});
