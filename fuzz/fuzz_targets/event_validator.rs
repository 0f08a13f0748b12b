//! The payment event validator on any JSON document: it never panics, a
//! refusal names at least one problem, and an accepted event has a type and
//! a total that is not negative.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moneyflow_core::event::validate_event;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match validate_event(&input) {
        Ok(event) => {
            assert!(!event.total.is_sign_negative() || event.total.is_zero());
            assert_eq!(input["type"].as_str(), Some(event.event_type.as_str()));
        }
        Err(problems) => assert!(!problems.is_empty()),
    }
});
