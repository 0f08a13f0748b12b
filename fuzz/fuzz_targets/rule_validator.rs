//! The rule validator on any JSON document: it never panics, a refusal names
//! at least one problem, and an accepted rule set serialises to a document
//! that is accepted as the same rule set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moneyflow_core::catalogue::Catalogue;
use moneyflow_core::validation::validate_rule_set;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match validate_rule_set(&input, Catalogue::builtin()) {
        Ok(rule_set) => {
            let again = validate_rule_set(&rule_set.to_json(), Catalogue::builtin())
                .expect("a serialised valid rule set is valid");
            assert_eq!(again.to_json(), rule_set.to_json());
        }
        Err(report) => assert!(!report.problems.is_empty()),
    }
});
