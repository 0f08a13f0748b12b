//! The shape of the Standard Webhooks headers (<https://www.standardwebhooks.com>)
//! on a signed `POST /payment`: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64> …]`.
//!
//! Parsing is pure (bytes in, [`SignedHeaders`] or a [`SignatureError`] out)
//! so that it is fuzzed and tested without a server; checking the HMAC and
//! the clock lives with the server (`crates/server/src/webhook.rs`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Most signatures read from one header; more is not rotation but abuse.
pub const MAX_SIGNATURES: usize = 16;
/// Longest accepted `webhook-id` (the same bound as an idempotency key).
pub const MAX_ID_LEN: usize = 255;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// A `webhook-timestamp`: whole seconds since the epoch, digits only,
/// within an `i64`.
pub fn parse_timestamp(text: &[u8]) -> Result<i64, SignatureError> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(SignatureError::InvalidTimestamp);
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or(SignatureError::InvalidTimestamp)
}

/// Why a signed request was refused. Each variant is a 401; the message is
/// what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the `{0}` header is missing: a signed request needs `webhook-id`, `webhook-timestamp` and `webhook-signature`"
    )]
    MissingHeader(&'static str),
    #[error("the `webhook-id` header must be 1 to 255 visible ASCII characters")]
    InvalidId,
    #[error(
        "the `webhook-timestamp` header must be the send time in whole seconds since the Unix epoch"
    )]
    InvalidTimestamp,
    #[error(
        "stale timestamp: `webhook-timestamp` is {seconds} s from the server's clock; at most 300 s are allowed (sign each delivery at send time)"
    )]
    StaleTimestamp { seconds: i64 },
    #[error(
        "the `webhook-signature` header must be space-separated `v1,<base64 HMAC-SHA256>` entries (at most 16)"
    )]
    MalformedSignature,
    #[error(
        "the signed body must name its company in `company_id` (a string id): the signature is checked with that company's secret"
    )]
    NoCompany,
    #[error(
        "no matching signature: no `v1` signature matches an active signing secret of the company for `{{webhook-id}}.{{webhook-timestamp}}.{{body}}`"
    )]
    NoMatch,
}

/// The three Standard Webhooks headers, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: i64,
    /// The decoded `v1` signatures (other versions are skipped, as the
    /// standard asks).
    pub signatures: Vec<Vec<u8>>,
}

/// A header value as text, with the rule HTTP header values follow
/// (visible ASCII, space and tab); `None` when it holds any other byte.
fn header_text(value: &[u8]) -> Option<&str> {
    if value
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// Reads and checks the shape of the three headers, given as their raw
/// values (`None` when the header is absent).
pub fn parse_headers(
    id: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
) -> Result<SignedHeaders, SignatureError> {
    let id = header_text(id.ok_or(SignatureError::MissingHeader(ID_HEADER))?)
        .ok_or(SignatureError::InvalidId)?;
    let timestamp = header_text(timestamp.ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?)
        .ok_or(SignatureError::InvalidTimestamp)?;
    let signature = header_text(signature.ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?)
        .ok_or(SignatureError::MalformedSignature)?;

    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SignatureError::InvalidId);
    }
    let timestamp = parse_timestamp(timestamp.as_bytes())?;

    let mut signatures = Vec::new();
    for (count, entry) in signature.split_ascii_whitespace().enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(SignatureError::MalformedSignature);
        }
        let (version, encoded) = entry
            .split_once(',')
            .ok_or(SignatureError::MalformedSignature)?;
        if version != "v1" {
            continue;
        }
        let decoded = BASE64
            .decode(encoded)
            .map_err(|_| SignatureError::MalformedSignature)?;
        signatures.push(decoded);
    }
    if signatures.is_empty() {
        return Err(SignatureError::MalformedSignature);
    }
    Ok(SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn parse(id: &str, timestamp: &str, signature: &str) -> Result<SignedHeaders, SignatureError> {
        parse_headers(
            Some(id.as_bytes()),
            Some(timestamp.as_bytes()),
            Some(signature.as_bytes()),
        )
    }

    #[test]
    fn header_shapes_are_checked() {
        let ts = "1614265330";
        assert_eq!(
            parse_headers(Some(b"id"), None, Some(SIGNATURE.as_bytes())),
            Err(SignatureError::MissingHeader(TIMESTAMP_HEADER))
        );
        assert_eq!(
            parse("has space", ts, SIGNATURE),
            Err(SignatureError::InvalidId)
        );
        assert_eq!(
            parse(&"a".repeat(256), ts, SIGNATURE),
            Err(SignatureError::InvalidId)
        );
        for bad in ["", "-5", "12.5", "1e9", "99999999999999999999999"] {
            assert_eq!(
                parse("id", bad, SIGNATURE),
                Err(SignatureError::InvalidTimestamp),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "v1",
            "v1,not base64!",
            "v2,abcd",
            &"v1,AAAA ".repeat(17),
        ] {
            assert_eq!(
                parse("id", ts, bad),
                Err(SignatureError::MalformedSignature),
                "{bad:?}"
            );
        }
        let parsed = parse("msg_1", ts, &format!("v1a,xyz {SIGNATURE}")).expect("well-formed");
        assert_eq!(parsed.timestamp, 1_614_265_330);
        assert_eq!(parsed.signatures.len(), 1, "the v1a entry is skipped");
    }

    #[test]
    fn bytes_a_header_cannot_hold_are_refused() {
        let ts = b"1614265330".as_slice();
        let sig = Some(SIGNATURE.as_bytes());
        assert_eq!(
            parse_headers(Some("idé".as_bytes()), Some(ts), sig),
            Err(SignatureError::InvalidId)
        );
        assert_eq!(
            parse_headers(Some(b"id"), Some(b"16\x0014"), sig),
            Err(SignatureError::InvalidTimestamp)
        );
        assert_eq!(
            parse_headers(Some(b"id"), Some(ts), Some(b"v1,AAAA\xff")),
            Err(SignatureError::MalformedSignature)
        );
    }
}
