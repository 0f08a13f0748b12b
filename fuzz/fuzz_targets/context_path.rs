//! `$context.` path parsing on any text: it never panics, and a parsed path
//! resolves against a context without panicking, the same way twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moneyflow_core::path::{ContextPath, JsonContext, resolve_template};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut context = JsonContext {
        event: json!({"type": "product", "total": "120.0", "items": [{"id": "a"}, {"id": "b"}]}),
        company: json!({"id": "acme"}),
        run: json!({"id": "run_1"}),
        ..JsonContext::default()
    };
    context
        .nodes
        .insert("check".into(), json!({"state": "success", "output": {"matched": true}}));
    if let Ok(path) = ContextPath::parse(text) {
        let first = path.resolve(&context).cloned();
        assert_eq!(first, path.resolve(&context).cloned());
        if let Some(node) = path.referenced_node() {
            assert!(!node.is_empty());
        }
        assert_eq!(
            resolve_template(&Value::String(text.to_owned()), &context),
            first.unwrap_or(Value::Null)
        );
    }
});
