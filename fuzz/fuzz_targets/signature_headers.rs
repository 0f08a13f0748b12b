//! The Standard Webhooks header parser on any bytes: the input is split at
//! the first two newlines into `webhook-id`, `webhook-timestamp` and
//! `webhook-signature` (a missing part is a missing header). It never
//! panics, and what it accepts has the shape it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moneyflow_core::signature::{MAX_ID_LEN, MAX_SIGNATURES, parse_headers};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let (id, timestamp, signature) = (parts.next(), parts.next(), parts.next());
    if let Ok(signed) = parse_headers(id, timestamp, signature) {
        assert!(!signed.id.is_empty() && signed.id.len() <= MAX_ID_LEN);
        assert!(signed.timestamp >= 0);
        assert!(!signed.signatures.is_empty() && signed.signatures.len() <= MAX_SIGNATURES);
    }
});
