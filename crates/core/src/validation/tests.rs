use super::*;
use crate::suggest::{DEFAULT_BUDGET, MAX_COMPARED_LEN};
use proptest::prelude::*;
use serde_json::json;

fn validate(input: Value) -> Result<RuleSet, ValidationReport> {
    validate_rule_set(&input, Catalogue::builtin())
}

fn problems(input: Value) -> ValidationReport {
    validate(input).expect_err("expected the rule set to be rejected")
}

fn codes_at(report: &ValidationReport, path: &str) -> Vec<ProblemCode> {
    report.at(path).iter().map(|p| p.code).collect()
}

/// The example of the original README, with its dangling `conditional-1`.
fn original_example() -> Value {
    json!({
        "company_id": "b5aa9687-d61f-467c-973e-f55d446981dc",
        "rules": [
            {"node_type": "condition", "node_id": "condition-1",
             "expect": [{"field": "$context.event.payment_type", "operator": "eq", "value": ["product"]}]},
            {"node_type": "task", "node_id": "abort-flow-1",
             "depends_on": [{"node_id": "conditional-1", "state": "failure"}],
             "task_name": "payment.tasks.abort_flow", "parameters": null},
            {"node_type": "task", "node_id": "generate-invoice-1",
             "depends_on": [{"node_id": "conditional-1", "state": "success"}],
             "task_name": "payment.tasks.generate_invoice",
             "parameters": {"company_id": "$context.event.company_id", "product_id": "$context.event.product.id"}},
            {"node_type": "condition", "node_id": "condition-2",
             "depends_on": [{"node_id": "condition-1", "state": "success"}],
             "expect": [{"field": "$context.event.product.type", "operator": "in", "value": ["book", "ebook"]}]},
            {"node_type": "task", "node_id": "generate_royalty-1",
             "task_name": "payment.tasks.generate_royalty",
             "parameters": {"company_id": "$context.event.company_id", "product_id": "$context.event.product.id"}}
        ]
    })
}

#[test]
fn original_example_names_the_dangling_reference_and_suggests_the_fix() {
    let report = problems(original_example());
    let at = report.at("rules[1].depends_on[0].node_id");
    assert_eq!(at.len(), 1, "{report:#?}");
    assert_eq!(at[0].code, ProblemCode::DanglingReference);
    assert_eq!(at[0].hint.as_deref(), Some("did you mean `condition-1`?"));
    assert_eq!(
        codes_at(&report, "rules[2].depends_on[0].node_id"),
        vec![ProblemCode::DanglingReference]
    );
    assert_eq!(report.problems.len(), 2, "{report:#?}");
}

#[test]
fn mended_original_example_is_valid_and_normalised() {
    let mended = serde_json::to_string(&original_example())
        .unwrap()
        .replace("conditional-1", "condition-1");
    let rule_set = validate(serde_json::from_str(&mended).unwrap()).expect("valid");
    let json = rule_set.to_json();
    for node in json["rules"].as_array().unwrap() {
        assert!(node["depends_on"].is_array(), "{node}");
    }
    assert_eq!(json["rules"][0]["depends_on"], json!([]));
    assert_eq!(json["rules"][1]["parameters"], Value::Null);
    assert!(json["rules"][0].get("trigger").is_none());
    // Validating the normalised form again is a fixed point.
    assert_eq!(validate(json.clone()).unwrap().to_json(), json);
}

#[test]
fn extensions_round_trip() {
    let input = json!({
        "company_id": "acme",
        "rules": [
            {"node_type": "condition", "node_id": "big", "depends_on": [], "expect": [
                {"field": "$context.event.total", "operator": "gt", "value": [100]},
                {"field": "$context.event.vip", "operator": "isnull"}
            ], "match": "any", "ui": {"x": 10.5, "y": -3}},
            {"node_type": "task", "node_id": "hook", "depends_on": [{"node_id": "big", "state": "success"}],
             "trigger": "any", "task_name": "payment.tasks.http_request",
             "parameters": {"url": "https://shop.example/hook", "body": {"id": "$context.nodes.big.output.matched"}},
             "retry": {"max_attempts": 5, "initial_backoff_ms": 100, "max_backoff_ms": 2000}, "timeout_ms": 3000}
        ]
    });
    let rule_set = validate(input.clone()).expect("valid");
    assert_eq!(rule_set.to_json(), input);
}

#[test]
fn unknown_node_type_lists_the_allowed_values() {
    let report = problems(
        json!({"company_id": "acme", "rules": [{"node_type": "decision", "node_id": "a"}]}),
    );
    let at = report.at("rules[0].node_type");
    assert_eq!(at[0].code, ProblemCode::UnknownValue);
    assert_eq!(at[0].allowed, vec!["condition", "task"]);
}

#[test]
fn unknown_operator_lists_the_allowed_operators() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "condition", "node_id": "a", "expect": [{"field": "$context.event.total", "operator": "greater", "value": [1]}]}
    ]}));
    let at = report.at("rules[0].expect[0].operator");
    assert_eq!(at[0].code, ProblemCode::UnknownValue);
    assert_eq!(at[0].allowed.len(), 14);
    assert!(at[0].allowed.contains(&"gte".to_owned()));
}

#[test]
fn empty_object_names_both_missing_fields() {
    let report = problems(json!({}));
    assert_eq!(codes_at(&report, "company_id"), vec![ProblemCode::Missing]);
    assert_eq!(codes_at(&report, "rules"), vec![ProblemCode::Missing]);
}

#[test]
fn not_an_object_is_rejected() {
    let report = problems(json!([1, 2]));
    assert_eq!(codes_at(&report, ""), vec![ProblemCode::WrongType]);
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    let report = problems(json!({"company_id": "bad id!", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.generate_shipmnt"},
        {"node_type": "condition", "node_id": "b", "expect": [{"field": "event.total", "operator": "eq", "value": [1, 2]}]},
        {"node_type": "task", "node_id": "c", "task_name": "payment.tasks.generate_shipment", "parameters": {"prodct_id": "x"}}
    ]}));
    assert_eq!(
        codes_at(&report, "company_id"),
        vec![ProblemCode::InvalidValue]
    );
    let task = report.at("rules[0].task_name");
    assert_eq!(task[0].code, ProblemCode::UnknownTask);
    assert_eq!(
        task[0].hint.as_deref(),
        Some("did you mean `payment.tasks.generate_shipment`?")
    );
    let field = report.at("rules[1].expect[0].field");
    assert_eq!(field[0].code, ProblemCode::InvalidPath);
    assert_eq!(
        field[0].hint.as_deref(),
        Some("did you mean `$context.event.total`?")
    );
    assert_eq!(
        codes_at(&report, "rules[1].expect[0].value"),
        vec![ProblemCode::Arity]
    );
    let unknown = report.at("rules[2].parameters.prodct_id");
    assert_eq!(unknown[0].code, ProblemCode::UnknownParameter);
    assert_eq!(
        unknown[0].hint.as_deref(),
        Some("did you mean `product_id`?")
    );
    assert_eq!(
        codes_at(&report, "rules[2].parameters.product_id"),
        vec![ProblemCode::Missing]
    );
}

#[test]
fn literal_parameters_are_type_checked_and_paths_accepted() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.generate_royalty",
         "parameters": {"product_id": "$context.event.product.id", "rate": "lots", "total": "$context.event.total"}}
    ]}));
    assert_eq!(
        codes_at(&report, "rules[0].parameters.rate"),
        vec![ProblemCode::InvalidParameter]
    );
    assert_eq!(report.problems.len(), 1, "{report:#?}");
}

#[test]
fn notify_keeps_further_fields() {
    validate(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.notify",
         "parameters": {"channel": "royalties", "book": "$context.event.product.name", "priority": 2}}
    ]}))
    .expect("valid");
}

#[test]
fn a_null_dependency_state_is_named_as_missing() {
    let report = problems(json!({
        "company_id": "acme",
        "rules": [
            {"node_type": "condition", "node_id": "a",
             "expect": [{"field": "$context.event.total", "operator": "isnull"}]},
            {"node_type": "task", "node_id": "b", "task_name": "payment.tasks.abort_flow",
             "depends_on": [{"node_id": "a", "state": null}]}
        ]
    }));
    assert_eq!(
        codes_at(&report, "rules[1].depends_on[0].state"),
        vec![ProblemCode::Missing],
        "{report:#?}"
    );
}

#[test]
fn unknown_node_fields_are_typos() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow", "dependson": []}
    ]}));
    let at = report.at("rules[0].dependson");
    assert_eq!(at[0].code, ProblemCode::UnknownField);
    assert_eq!(at[0].hint.as_deref(), Some("did you mean `depends_on`?"));
}

#[test]
fn echoed_fields_are_accepted() {
    let mut input = json!({"company_id": "acme", "rules": []});
    input["id"] = json!("r1");
    input["version"] = json!(3);
    input["created_at"] = json!("2026-01-01T00:00:00Z");
    input["updated_at"] = json!("2026-01-01T00:00:00Z");
    validate(input).expect("valid");
}

#[test]
fn cycles_are_named_node_by_node() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow", "depends_on": [{"node_id": "c", "state": "success"}]},
        {"node_type": "task", "node_id": "b", "task_name": "payment.tasks.abort_flow", "depends_on": [{"node_id": "a", "state": "success"}]},
        {"node_type": "task", "node_id": "c", "task_name": "payment.tasks.abort_flow", "depends_on": [{"node_id": "b", "state": "failure"}]},
        {"node_type": "task", "node_id": "d", "task_name": "payment.tasks.abort_flow", "depends_on": [{"node_id": "c", "state": "success"}]}
    ]}));
    assert_eq!(report.problems.len(), 1, "{report:#?}");
    let cycle = &report.problems[0];
    assert_eq!(cycle.code, ProblemCode::Cycle);
    assert_eq!(cycle.path, "rules[0].depends_on[0]");
    assert_eq!(
        cycle.message,
        "the dependencies form a cycle: a → b → c → a"
    );
}

#[test]
fn a_node_depending_on_itself_is_a_cycle() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow", "depends_on": [{"node_id": "a", "state": "success"}]}
    ]}));
    assert_eq!(report.problems[0].code, ProblemCode::Cycle);
    assert_eq!(
        report.problems[0].message,
        "the dependencies form a cycle: a → a"
    );
}

#[test]
fn node_outputs_must_come_from_ancestors() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "ship", "task_name": "payment.tasks.generate_shipment", "parameters": {"product_id": "p"}},
        {"node_type": "task", "node_id": "gift", "task_name": "payment.tasks.add_shipment_item",
         "parameters": {"item": "bookmark", "shipment_id": "$context.nodes.ship.output.shipment_id"}},
        {"node_type": "task", "node_id": "copy", "task_name": "payment.tasks.duplicate_shipment",
         "depends_on": [{"node_id": "ship", "state": "success"}],
         "parameters": {"department": "royalties", "shipment_id": "$context.nodes.ship.output.shipment_id"}},
        {"node_type": "condition", "node_id": "check", "expect": [{"field": "$context.nodes.shp.output", "operator": "isnotnull"}]}
    ]}));
    assert_eq!(
        codes_at(&report, "rules[1].parameters.shipment_id"),
        vec![ProblemCode::NotAncestor]
    );
    assert!(report.at("rules[2].parameters.shipment_id").is_empty());
    let dangling = report.at("rules[3].expect[0].field");
    assert_eq!(dangling[0].code, ProblemCode::DanglingReference);
    assert_eq!(dangling[0].hint.as_deref(), Some("did you mean `ship`?"));
}

#[test]
fn arity_per_operator() {
    let rule = |op: &str, value: Value| {
        json!({"company_id": "acme", "rules": [{"node_type": "condition", "node_id": "a",
            "expect": [{"field": "$context.event.x", "operator": op, "value": value}]}]})
    };
    assert!(validate(rule("eq", json!([1]))).is_ok());
    assert_eq!(
        codes_at(&problems(rule("eq", json!([]))), "rules[0].expect[0].value"),
        vec![ProblemCode::Arity]
    );
    assert_eq!(
        codes_at(&problems(rule("eq", json!(1))), "rules[0].expect[0].value"),
        vec![ProblemCode::WrongType]
    );
    assert!(validate(rule("in", json!([1, 2, 3]))).is_ok());
    assert_eq!(
        codes_at(
            &problems(rule("nin", json!([]))),
            "rules[0].expect[0].value"
        ),
        vec![ProblemCode::Arity]
    );
    assert!(validate(rule("isnull", Value::Null)).is_ok());
    assert!(validate(rule("isnotnull", json!(["ignored"]))).is_ok());
}

#[test]
fn limits_are_enforced() {
    let nodes: Vec<Value> = (0..=limits::MAX_NODES)
        .map(|i| json!({"node_type": "task", "node_id": format!("n{i}"), "task_name": "payment.tasks.abort_flow"}))
        .collect();
    let report = problems(json!({"company_id": "acme", "rules": nodes}));
    assert_eq!(codes_at(&report, "rules"), vec![ProblemCode::TooMany]);
    let deps: Vec<Value> = (0..=limits::MAX_DEPENDENCIES)
        .map(|i| json!({"node_id": format!("n{i}"), "state": "success"}))
        .collect();
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "x", "task_name": "payment.tasks.abort_flow", "depends_on": deps}]}));
    assert_eq!(
        codes_at(&report, "rules[0].depends_on"),
        vec![ProblemCode::TooMany]
    );
}

#[test]
fn retry_and_timeout_are_checked() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow",
         "retry": {"max_attempts": 0, "initial_backoff_ms": 5000, "max_backoff_ms": 10}, "timeout_ms": 0}
    ]}));
    assert_eq!(
        codes_at(&report, "rules[0].retry.max_attempts"),
        vec![ProblemCode::InvalidValue]
    );
    assert_eq!(
        codes_at(&report, "rules[0].retry.max_backoff_ms"),
        vec![ProblemCode::InvalidValue]
    );
    assert_eq!(
        codes_at(&report, "rules[0].timeout_ms"),
        vec![ProblemCode::InvalidValue]
    );
}

#[test]
fn duplicate_ids_and_dependencies() {
    let report = problems(json!({"company_id": "acme", "rules": [
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow"},
        {"node_type": "task", "node_id": "a", "task_name": "payment.tasks.abort_flow"},
        {"node_type": "task", "node_id": "b", "task_name": "payment.tasks.abort_flow",
         "depends_on": [{"node_id": "a", "state": "success"}, {"node_id": "a", "state": "failure"}]}
    ]}));
    assert_eq!(
        codes_at(&report, "rules[1].node_id"),
        vec![ProblemCode::Duplicate]
    );
    assert_eq!(
        codes_at(&report, "rules[2].depends_on[1].node_id"),
        vec![ProblemCode::Duplicate]
    );
}

// ---- Property tests: generated valid graphs pass; each mutation is caught. ----

/// A random acyclic graph: node i may only depend on nodes before it.
/// The shape of the reported stall: many nodes with long ids, each with
/// dangling references of the same length (so no length prefilter helps)
/// and `$context.nodes.<id>` paths whose id is far longer than any node id.
fn huge_dangling_references() -> Value {
    let long = "n".repeat(limits::MAX_ID_LEN - 8);
    let huge = "x".repeat(300_000);
    let rules: Vec<Value> = (0..1_000)
        .map(|i| {
            let depends_on: Vec<Value> = (0..20)
                .map(|j| json!({"node_id": format!("{long}-{i:03}-{j:03}"), "state": "success"}))
                .collect();
            let field = if i == 0 {
                format!("$context.nodes.{huge}.output")
            } else {
                "$context.event.type".to_owned()
            };
            json!({
                "node_type": "condition", "node_id": format!("{long}-{i:07}"),
                "depends_on": depends_on,
                "expect": [{"field": field, "operator": "eq", "value": ["product"]}],
            })
        })
        .collect();
    json!({"company_id": "acme", "rules": rules})
}

#[test]
fn validating_huge_dangling_references_does_bounded_hint_work() {
    let input = huge_dangling_references();
    let mut hints = Suggester::default();
    let report = validate_with_hints(&input, Catalogue::builtin(), &mut hints)
        .expect_err("every reference dangles");
    let one_comparison = (1 + MAX_COMPARED_LEN + MAX_COMPARED_LEN * MAX_COMPARED_LEN) as u64;
    assert!(
        hints.spent() <= DEFAULT_BUDGET + one_comparison,
        "hint work {} is past the budget {DEFAULT_BUDGET}",
        hints.spent()
    );
    // Every problem is still reported, with or without a hint.
    let dangling: Vec<&Problem> = report
        .problems
        .iter()
        .filter(|p| p.code == ProblemCode::DanglingReference)
        .collect();
    assert_eq!(dangling.len(), 20_000);
    let first = dangling[0].hint.as_deref().unwrap_or_default();
    assert!(first.starts_with("did you mean"), "{first}");
}

#[test]
fn a_path_to_a_node_id_longer_than_the_limit_is_refused() {
    let input = huge_dangling_references();
    let report = validate(input).expect_err("invalid");
    let at = report.at("rules[0].expect[0].field");
    assert_eq!(at.len(), 1, "{at:#?}");
    assert_eq!(at[0].code, ProblemCode::InvalidPath);
    assert!(at[0].message.contains("1 to 128"), "{}", at[0].message);
    assert!(at[0].message.len() < 400, "the huge id is not echoed whole");
    assert!(
        at[0].message.ends_with(&format!("`{}…`", "x".repeat(60))),
        "{}",
        at[0].message
    );
}

fn valid_graph() -> impl Strategy<Value = Value> {
    (1usize..40)
        .prop_flat_map(|n| {
            let nodes: Vec<_> = (0..n)
                .map(|i| {
                    (
                        prop::collection::vec((0..i.max(1), any::<bool>()), 0..(i.min(4) + 1)),
                        any::<bool>(),
                        0usize..14,
                        any::<bool>(),
                    )
                })
                .collect();
            nodes
        })
        .prop_map(|nodes| {
            let rules: Vec<Value> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (deps, is_condition, op, any))| {
                    let mut seen = std::collections::HashSet::new();
                    let depends_on: Vec<Value> = deps
                        .into_iter()
                        .filter(|(d, _)| *d < i && seen.insert(*d))
                        .map(|(d, success)| json!({"node_id": format!("node-{d}"), "state": if success {"success"} else {"failure"}}))
                        .collect();
                    let mut node = if is_condition {
                        let operator = Operator::ALL[op];
                        let value = match operator.arity() {
                            Arity::One => json!([op]),
                            Arity::AtLeastOne => json!([1, "two"]),
                            Arity::None => Value::Null,
                        };
                        let mut expectation = json!({"field": "$context.event.total", "operator": operator.as_str()});
                        if !value.is_null() {
                            expectation["value"] = value;
                        }
                        json!({"node_type": "condition", "node_id": format!("node-{i}"), "expect": [expectation]})
                    } else {
                        json!({"node_type": "task", "node_id": format!("node-{i}"),
                               "task_name": "payment.tasks.generate_commission",
                               "parameters": {"agent_id": "$context.event.agent_id", "rate": "0.05"}})
                    };
                    node["depends_on"] = Value::Array(depends_on);
                    if any {
                        node["trigger"] = json!("any");
                    }
                    node
                })
                .collect();
            json!({"company_id": "acme", "rules": rules})
        })
}

fn has_code(result: Result<RuleSet, ValidationReport>, code: ProblemCode) -> bool {
    match result {
        Ok(_) => false,
        Err(report) => report.problems.iter().any(|p| p.code == code),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn generated_valid_graphs_pass(graph in valid_graph()) {
        let rule_set = validate(graph.clone());
        prop_assert!(rule_set.is_ok(), "{:#?}", rule_set.err());
        prop_assert_eq!(rule_set.unwrap().to_json(), graph);
    }

    #[test]
    fn a_back_edge_is_a_cycle(graph in valid_graph(), pick in any::<prop::sample::Index>()) {
        let mut graph = graph;
        let rules = graph["rules"].as_array_mut().unwrap();
        // Find a node with a dependency and make that dependency wait on it.
        let with_deps: Vec<usize> = (0..rules.len()).filter(|&i| !rules[i]["depends_on"].as_array().unwrap().is_empty()).collect();
        prop_assume!(!with_deps.is_empty());
        let i = with_deps[pick.index(with_deps.len())];
        let target = rules[i]["depends_on"][0]["node_id"].as_str().unwrap().to_owned();
        let me = format!("node-{i}");
        let t = rules.iter().position(|n| n["node_id"] == target.as_str()).unwrap();
        rules[t]["depends_on"].as_array_mut().unwrap().push(json!({"node_id": me, "state": "success"}));
        prop_assert!(has_code(validate(graph), ProblemCode::Cycle));
    }

    #[test]
    fn a_dangling_reference_is_caught(graph in valid_graph(), pick in any::<prop::sample::Index>()) {
        let mut graph = graph;
        let rules = graph["rules"].as_array_mut().unwrap();
        let i = pick.index(rules.len());
        rules[i]["depends_on"].as_array_mut().unwrap().push(json!({"node_id": "nowhere", "state": "success"}));
        let report = validate(graph).unwrap_err();
        let problem = report.problems.iter().find(|p| p.code == ProblemCode::DanglingReference);
        prop_assert!(problem.is_some());
        let expected = format!("rules[{i}].depends_on[");
        prop_assert!(problem.unwrap().path.starts_with(&expected));
    }

    #[test]
    fn a_duplicate_id_is_caught(graph in valid_graph(), pick in any::<prop::sample::Index>()) {
        let mut graph = graph;
        let rules = graph["rules"].as_array_mut().unwrap();
        let copy = rules[pick.index(rules.len())].clone();
        rules.push(copy);
        prop_assert!(has_code(validate(graph), ProblemCode::Duplicate));
    }

    #[test]
    fn an_unknown_operator_is_caught(graph in valid_graph(), operator in "[a-z]{1,10}") {
        prop_assume!(Operator::parse(&operator).is_none());
        let mut graph = graph;
        let rules = graph["rules"].as_array_mut().unwrap();
        rules.push(json!({"node_type": "condition", "node_id": "extra",
            "expect": [{"field": "$context.event.total", "operator": operator, "value": [1]}]}));
        let path = format!("rules[{}].expect[0].operator", rules.len() - 1);
        let report = validate(graph).unwrap_err();
        prop_assert!(report.at(&path).iter().any(|p| p.code == ProblemCode::UnknownValue));
    }

    #[test]
    fn a_bad_arity_is_caught(graph in valid_graph(), op in 0usize..12, extra in 2usize..5) {
        let operator = Operator::ALL[op];
        prop_assume!(operator.arity() != Arity::None);
        let value: Vec<Value> = if operator.arity() == Arity::One { (0..extra).map(|i| json!(i)).collect() } else { vec![] };
        let mut graph = graph;
        let rules = graph["rules"].as_array_mut().unwrap();
        rules.push(json!({"node_type": "condition", "node_id": "extra",
            "expect": [{"field": "$context.event.total", "operator": operator.as_str(), "value": value}]}));
        prop_assert!(has_code(validate(graph), ProblemCode::Arity));
    }

    #[test]
    fn arbitrary_json_never_panics(input in rule_shaped()) {
        check_verdict_is_consistent(&input)?;
    }

    #[test]
    fn a_valid_graph_with_any_part_replaced_never_panics(
        graph in valid_graph(),
        pick in any::<prop::sample::Index>(),
        replacement in rule_json(),
    ) {
        let mut graph = graph;
        let mut slots = Vec::new();
        json_pointers(&graph, String::new(), &mut slots);
        let slot = &slots[pick.index(slots.len())];
        if let Some(target) = graph.pointer_mut(slot) {
            *target = replacement;
        }
        check_verdict_is_consistent(&graph)?;
    }
}

#[test]
fn numbers_past_what_a_double_holds_are_out_of_range() {
    let number = |text: &str| -> serde_json::Number { serde_json::from_str(text).unwrap() };
    for good in [
        "0",
        "-0",
        "0.0",
        "0e10",
        "120.00",
        "-3",
        "1e308",
        "2.5e-300",
        "123456789012345678901234567890",
    ] {
        assert!(number_in_range(&number(good)), "{good}");
    }
    let long = format!("1.{}", "0".repeat(MAX_NUMBER_LEN));
    for bad in ["1e999999", "-1e400", "1e-999999", "0.1e-400", long.as_str()] {
        assert!(!number_in_range(&number(bad)), "{bad}");
    }
}

#[test]
fn numbers_out_of_range_are_named_by_path_and_counted() {
    let input: Value = serde_json::from_str(
        r#"{"rules": [{"ui": {"x": 1e999999, "y": 2}}, {"expect": [{"value": [1, -1e400]}]}], "n": 1e-999}"#,
    )
    .unwrap();
    let (problems, total) = numbers_out_of_range(&input, 2);
    assert_eq!(total, 3);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["rules[0].ui.x", "rules[1].expect[0].value[1]"]);
    assert!(
        problems
            .iter()
            .all(|p| p.code == ProblemCode::NumberOutOfRange)
    );
    assert!(
        problems[0].message.contains("999999"),
        "{}",
        problems[0].message
    );
    assert_eq!(
        numbers_out_of_range(&json!({"a": [1, 2.5, {"b": -7}]}), 10).1,
        0
    );
}

// ---- Rule-shaped JSON: the vocabulary of the format, right and wrong. ----

/// Words the format uses, so generated documents reach past the first type check.
fn rule_word() -> impl Strategy<Value = String> {
    let mut words: Vec<String> = [
        "condition",
        "task",
        "success",
        "failure",
        "all",
        "any",
        "node-0",
        "node-1",
        "node-2",
        "acme",
        "",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .collect();
    words.extend(Operator::ALL.iter().map(|op| op.as_str().to_owned()));
    words.extend(Catalogue::builtin().names());
    prop::sample::select(words)
}

/// A `$context.` path, well-formed or not.
fn context_path() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\$context\\.(event|company|run|nodes)(\\.[a-z0-9_-]{0,8}|\\[[0-9]{1,2}\\]){0,4}",
        "\\$context\\.nodes\\.node-[0-3]\\.(output|state|error)(\\.[a-z]{1,6}){0,2}",
        "\\$context[.\\[\\]a-z0-9$]{0,16}",
    ]
}

fn rule_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-2i64..70_000).prop_map(Value::from),
        "-?[0-9]{1,24}(\\.[0-9]{1,8})?([eE][-+]?[0-9]{1,5})?"
            .prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
        rule_word().prop_map(Value::String),
        context_path().prop_map(Value::String),
        "[-a-z0-9_ .$]{0,12}".prop_map(Value::String),
    ]
}

/// Any JSON built from the format's field names and words.
fn rule_json() -> impl Strategy<Value = Value> {
    let mut keys: Vec<&'static str> = Vec::new();
    for fields in [
        TOP_FIELDS,
        NODE_FIELDS,
        CONDITION_FIELDS,
        TASK_FIELDS,
        DEPENDENCY_FIELDS,
        EXPECTATION_FIELDS,
        RETRY_FIELDS,
        UI_FIELDS,
        ECHOED_FIELDS,
    ] {
        keys.extend_from_slice(fields);
    }
    keys.extend([
        "company_id",
        "product_id",
        "agent_id",
        "rate",
        "url",
        "unknown",
    ]);
    rule_leaf().prop_recursive(5, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys.clone()), inner), 0..6).prop_map(
                |entries| Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect()
                )
            ),
        ]
    })
}

/// A node: mostly its own fields with plausible values, sometimes anything.
fn rule_node() -> impl Strategy<Value = Value> {
    let dependency = prop_oneof![
        3 => (prop::sample::select(vec!["node-0", "node-1", "node-2", "node-3"]),
              prop::sample::select(vec!["success", "failure", "maybe"]))
            .prop_map(|(id, state)| json!({"node_id": id, "state": state})),
        1 => rule_json(),
    ];
    let expectation = prop_oneof![
        3 => (context_path(), prop::sample::select(Operator::ALL.to_vec()),
              prop::option::of(prop::collection::vec(rule_leaf(), 0..4)))
            .prop_map(|(field, op, value)| {
                let mut e = json!({"field": field, "operator": op.as_str()});
                if let Some(value) = value {
                    e["value"] = Value::Array(value);
                }
                e
            }),
        1 => rule_json(),
    ];
    let parameters = prop::collection::vec(
        (
            prop::sample::select(vec![
                "company_id",
                "product_id",
                "agent_id",
                "rate",
                "amount",
                "url",
                "method",
                "department",
                "reason",
                "x",
            ]),
            prop_oneof![
                rule_leaf(),
                context_path().prop_map(Value::String),
                rule_json()
            ],
        ),
        0..5,
    )
    .prop_map(|entries| {
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    });
    (
        "node-[0-3]",
        any::<bool>(),
        prop::collection::vec(dependency, 0..3),
        prop::collection::vec(expectation, 0..3),
        rule_word(),
        parameters,
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "trigger",
                    "retry",
                    "timeout_ms",
                    "ui",
                    "match",
                    "stray",
                ]),
                rule_json(),
            ),
            0..2,
        ),
    )
        .prop_map(
            |(id, is_condition, deps, expect, task, parameters, extras)| {
                let mut node = json!({"node_id": id, "depends_on": deps});
                if is_condition {
                    node["node_type"] = json!("condition");
                    node["expect"] = Value::Array(expect);
                } else {
                    node["node_type"] = json!("task");
                    node["task_name"] = json!(task);
                    node["parameters"] = parameters;
                }
                for (key, value) in extras {
                    node[key] = value;
                }
                node
            },
        )
}

/// A document shaped like a rule set, whose parts may each be wrong.
fn rule_shaped() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (rule_leaf(), prop::collection::vec(prop_oneof![6 => rule_node(), 1 => rule_json()], 0..8))
            .prop_map(|(company, rules)| json!({"company_id": company, "rules": rules})),
        1 => rule_json(),
    ]
}

/// The JSON pointers of every value in `value`, itself included.
fn json_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                json_pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Validation never panics; a refusal names at least one problem, each with a
/// message; an accepted rule set serialises to a document that is accepted as
/// the same rule set.
fn check_verdict_is_consistent(input: &Value) -> Result<(), TestCaseError> {
    match validate(input.clone()) {
        Ok(rule_set) => {
            let again = validate(rule_set.to_json());
            prop_assert!(again.is_ok(), "{:#?}", again.err());
            prop_assert_eq!(again.unwrap().to_json(), rule_set.to_json());
        }
        Err(report) => {
            prop_assert!(!report.problems.is_empty());
            prop_assert!(report.problems.iter().all(|p| !p.message.is_empty()));
        }
    }
    Ok(())
}

/// Guards the generator itself: it must produce accepted rule sets and
/// problems deep inside nodes, or the property above tests nothing.
#[test]
fn rule_shaped_inputs_reach_every_level_of_the_validator() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = rule_shaped();
    let (mut accepted, mut in_nodes, mut in_parts) = (0, 0, 0);
    for _ in 0..512 {
        let input = strategy.new_tree(&mut runner).unwrap().current();
        match validate(input) {
            Ok(_) => accepted += 1,
            Err(report) => {
                if report.problems.iter().any(|p| p.path.starts_with("rules[")) {
                    in_nodes += 1;
                }
                if report.problems.iter().any(|p| {
                    p.path.contains(".expect[")
                        || p.path.contains(".depends_on[")
                        || p.path.contains(".parameters")
                }) {
                    in_parts += 1;
                }
            }
        }
    }
    assert!(
        accepted >= 5,
        "only {accepted} of 512 generated rule sets were valid"
    );
    assert!(
        in_nodes >= 200,
        "only {in_nodes} of 512 had a problem inside a node"
    );
    assert!(
        in_parts >= 100,
        "only {in_parts} of 512 had a problem inside a node's parts"
    );
}
