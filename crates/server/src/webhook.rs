//! Standard Webhooks signatures (<https://www.standardwebhooks.com>) on
//! `POST /payment`, and the generation of signing secrets.
//!
//! A sender signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256
//! under the company's secret (`whsec_` + base64 of the key bytes) and sends
//! `webhook-signature: v1,<base64> [v1,<base64> …]`. The request is accepted
//! when ANY listed signature matches ANY of the company's active secrets, so
//! a sender can rotate without a gap, and when the timestamp is within
//! [`TOLERANCE`] of the server's clock, which bounds replays of a captured
//! request. Tags are compared in constant time.
//!
//! Errors say which check failed (missing header, stale timestamp, no
//! matching signature) but never anything about the secrets.

use std::time::Duration;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::secret::SecretString;

// The header parser is pure and lives in the core, where it is fuzzed.
pub use moneyflow_core::signature::{
    ID_HEADER, MAX_ID_LEN, MAX_SIGNATURES, SIGNATURE_HEADER, SignatureError, SignedHeaders,
    TIMESTAMP_HEADER, parse_timestamp,
};

/// Prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret's key.
pub const SECRET_KEY_BYTES: usize = 32;
/// How far `webhook-timestamp` may be from the server's clock, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Whether the request carries any of the Standard Webhooks headers.
pub fn is_signed(headers: &HeaderMap) -> bool {
    [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER]
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// Reads and checks the shape of the three headers
/// ([`moneyflow_core::signature::parse_headers`]).
pub fn parse_headers(headers: &HeaderMap) -> Result<SignedHeaders, SignatureError> {
    let raw = |name: &str| headers.get(name).map(|value| value.as_bytes());
    moneyflow_core::signature::parse_headers(
        raw(ID_HEADER),
        raw(TIMESTAMP_HEADER),
        raw(SIGNATURE_HEADER),
    )
}

/// Refuses a timestamp more than [`TOLERANCE`] away from `now`.
pub fn check_timestamp(timestamp: i64, now: OffsetDateTime) -> Result<(), SignatureError> {
    let skew = now.unix_timestamp().saturating_sub(timestamp);
    let tolerance = i64::try_from(TOLERANCE.as_secs()).unwrap_or(i64::MAX);
    if skew.saturating_abs() > tolerance {
        Err(SignatureError::StaleTimestamp { seconds: skew })
    } else {
        Ok(())
    }
}

/// The HMAC key of a `whsec_…` secret; `None` when it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    BASE64.decode(encoded).ok().filter(|key| !key.is_empty())
}

/// HMAC-SHA256 of `{id}.{timestamp}.{body}` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Accepts when any signature in `headers` matches the body under any of
/// `secrets` (the `whsec_…` strings). Every pair is compared, in constant
/// time, so timing reveals neither which secret nor how much matched.
pub fn verify<'a>(
    headers: &SignedHeaders,
    body: &[u8],
    secrets: impl IntoIterator<Item = &'a str>,
) -> Result<(), SignatureError> {
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let Some(key) = secret_key(secret) else {
            // A stored secret that is not `whsec_…` base64 is a bug; it matches nothing.
            tracing::warn!("a stored signing secret is malformed; it is skipped");
            continue;
        };
        let expected = sign(&key, &headers.id, headers.timestamp, body);
        for signature in &headers.signatures {
            // `ct_eq` on slices of different lengths is false without
            // comparing, and a length is not secret.
            matched |= expected.as_slice().ct_eq(signature.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::NoMatch)
    }
}

/// A fresh secret: `whsec_` + base64 of 32 bytes from the OS generator.
pub fn generate_secret() -> SecretString {
    let mut key = [0u8; SECRET_KEY_BYTES];
    OsRng.fill_bytes(&mut key);
    SecretString::new(format!("{SECRET_PREFIX}{}", BASE64.encode(key)))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The test vector published with the Standard Webhooks reference libraries.
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TIMESTAMP: i64 = 1_614_265_330;
    const VECTOR_BODY: &str = r#"{"test": 2432232314}"#;
    const VECTOR_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(ID_HEADER, HeaderValue::from_str(id).unwrap());
        map.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).unwrap());
        map.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        map
    }

    fn vector_headers(signature: &str) -> SignedHeaders {
        parse_headers(&headers(
            VECTOR_ID,
            &VECTOR_TIMESTAMP.to_string(),
            signature,
        ))
        .expect("well-formed")
    }

    #[test]
    fn the_reference_vector_verifies() {
        let key = secret_key(VECTOR_SECRET).unwrap();
        let tag = sign(&key, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY.as_bytes());
        assert_eq!(format!("v1,{}", BASE64.encode(tag)), VECTOR_SIGNATURE);
        let signed = vector_headers(VECTOR_SIGNATURE);
        assert_eq!(
            verify(&signed, VECTOR_BODY.as_bytes(), [VECTOR_SECRET]),
            Ok(())
        );
    }

    #[test]
    fn any_signature_may_match_any_secret() {
        let other = generate_secret();
        let wrong = format!("v1,{}", BASE64.encode([7u8; 32]));
        let signed = vector_headers(&format!("{wrong} v1a,xyz {VECTOR_SIGNATURE}"));
        assert_eq!(signed.signatures.len(), 2, "the v1a entry is skipped");
        assert_eq!(
            verify(
                &signed,
                VECTOR_BODY.as_bytes(),
                [other.expose_secret(), VECTOR_SECRET]
            ),
            Ok(())
        );
        assert_eq!(
            verify(&signed, VECTOR_BODY.as_bytes(), [other.expose_secret()]),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(&signed, VECTOR_BODY.as_bytes(), []),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_changed_body_id_or_timestamp_does_not_verify() {
        let signed = vector_headers(VECTOR_SIGNATURE);
        assert!(verify(&signed, br#"{"test": 2432232315}"#, [VECTOR_SECRET]).is_err());
        let mut moved = signed.clone();
        moved.timestamp += 1;
        assert!(verify(&moved, VECTOR_BODY.as_bytes(), [VECTOR_SECRET]).is_err());
        let mut renamed = signed;
        renamed.id.push('x');
        assert!(verify(&renamed, VECTOR_BODY.as_bytes(), [VECTOR_SECRET]).is_err());
    }

    #[test]
    fn header_shapes_are_checked() {
        let ts = VECTOR_TIMESTAMP.to_string();
        let mut missing = headers("id", &ts, VECTOR_SIGNATURE);
        missing.remove(TIMESTAMP_HEADER);
        assert_eq!(
            parse_headers(&missing),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert!(is_signed(&missing));
        assert!(!is_signed(&HeaderMap::new()));
        assert_eq!(
            parse_headers(&headers("has space", &ts, VECTOR_SIGNATURE)),
            Err(SignatureError::InvalidId)
        );
    }

    #[test]
    fn timestamps_are_allowed_five_minutes_either_way() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let at = now.unix_timestamp();
        assert!(check_timestamp(at, now).is_ok());
        assert!(check_timestamp(at - 300, now).is_ok());
        assert!(check_timestamp(at + 300, now).is_ok());
        assert_eq!(
            check_timestamp(at - 301, now),
            Err(SignatureError::StaleTimestamp { seconds: 301 })
        );
        assert_eq!(
            check_timestamp(at + 301, now),
            Err(SignatureError::StaleTimestamp { seconds: -301 })
        );
        assert!(check_timestamp(i64::MAX, now).is_err());
        assert!(check_timestamp(0, now).is_err());
    }

    #[test]
    fn generated_secrets_are_whsec_base64_of_32_bytes() {
        let secret = generate_secret();
        let key = secret_key(secret.expose_secret()).expect("decodes");
        assert_eq!(key.len(), SECRET_KEY_BYTES);
        assert_ne!(
            generate_secret().expose_secret(),
            secret.expose_secret(),
            "fresh randomness"
        );
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(secret_key("sk_abc").is_none());
        assert!(secret_key("whsec_!!").is_none());
    }
}
