//! Bearer authentication.
//!
//! - The **admin token** may do everything. Only its SHA-256 is held in
//!   memory, and a presented token is compared by hash in constant time
//!   (`subtle`), so response timing says nothing about how much of it matched.
//! - A **company API key** (`mfk_…`) is looked up by its SHA-256 hex (the only
//!   form the store keeps) and acts for its own company alone: handlers ask
//!   [`Principal::may_act_for`] and answer another company's resources with
//!   the very same 404 a missing one gets, so keys cannot probe for ids.
//! - No credentials, or unknown or revoked ones → 401 with
//!   `WWW-Authenticate: Bearer`. A company key on an admin-only route → 403.
//! - `/metrics` takes the admin token or the operator's `--metrics-token`
//!   (a scraper's credential that can do nothing else).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use moneyflow_core::ports::ApiKeyStore;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::secret::{API_KEY_PREFIX, SecretString, sha256, sha256_hex};
use crate::state::AppState;

/// The SHA-256 of the admin token.
#[derive(Clone)]
pub struct AdminTokenHash([u8; 32]);

impl AdminTokenHash {
    pub fn from_token(token: &SecretString) -> Self {
        Self(token.sha256())
    }

    /// From the lower-case hex form kept in the settings table.
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let bytes = hex::decode(hex_digest).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Constant-time comparison of the presented token's hash.
    pub fn matches(&self, presented: &str) -> bool {
        sha256(presented).ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for AdminTokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminTokenHash([redacted])")
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Company { company_id: String, key_id: String },
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }

    /// Whether the caller may see and change `company_id`'s resources.
    pub fn may_act_for(&self, company_id: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Company {
                company_id: own, ..
            } => own == company_id,
        }
    }

    /// For admin-only routes: a company key gets a 403 that says why.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Company { .. } => Err(ApiError::Forbidden {
                detail: "this route needs the admin token; a company API key cannot use it"
                    .to_owned(),
            }),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?;
        authenticate(state, token).await
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized {
            detail: "this route needs credentials: send `Authorization: Bearer <admin token or company API key>`"
                .to_owned(),
            invalid_token: false,
        });
    };
    let malformed = || ApiError::Unauthorized {
        detail: "the Authorization header must be `Bearer <token>`".to_owned(),
        invalid_token: true,
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

/// Whether the request carries the admin token (no error either way).
pub fn is_admin_token(state: &AppState, headers: &HeaderMap) -> bool {
    bearer_token(headers).is_ok_and(|token| state.admin_token().matches(token))
}

/// Lets `/metrics` through for the admin token or the metrics token.
pub async fn require_metrics_access(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer_token(headers).map_err(|_| ApiError::Unauthorized {
        detail: "/metrics needs `Authorization: Bearer <admin token or metrics token>` (--metrics-token)"
            .to_owned(),
        invalid_token: false,
    })?;
    if state.admin_token().matches(token)
        || state
            .metrics_token()
            .is_some_and(|metrics| metrics.matches(token))
    {
        return Ok(());
    }
    match authenticate(state, token).await? {
        Principal::Admin => Ok(()),
        Principal::Company { .. } => Err(ApiError::Forbidden {
            detail: "/metrics needs the admin token or the metrics token; a company API key cannot read it"
                .to_owned(),
        }),
    }
}

async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if state.admin_token().matches(token) {
        return Ok(Principal::Admin);
    }
    let invalid = || ApiError::Unauthorized {
        detail: "the credentials are not valid: unknown or revoked token".to_owned(),
        invalid_token: true,
    };
    // Only `mfk_…` tokens can be keys: anything else is refused without a
    // database round trip.
    if !token.starts_with(API_KEY_PREFIX) {
        return Err(invalid());
    }
    let key_hash = sha256_hex(token);
    if let Some(principal) = state.principals().get(&key_hash) {
        return Ok(principal);
    }
    let ticket = state.principals().begin();
    match state.store().find_api_key_by_hash(&key_hash).await? {
        Some(key) => {
            let principal = Principal::Company {
                company_id: key.company_id,
                key_id: key.id,
            };
            state
                .principals()
                .insert(ticket, key_hash, principal.clone());
            Ok(principal)
        }
        None => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn admin_hash_matches_only_the_token() {
        let hash = AdminTokenHash::from_token(&SecretString::new("mfa_right"));
        assert!(hash.matches("mfa_right"));
        assert!(!hash.matches("mfa_wrong"));
        assert!(!hash.matches(""));
        let round_trip = AdminTokenHash::from_hex(&hash.to_hex()).expect("hex");
        assert!(round_trip.matches("mfa_right"));
        assert!(AdminTokenHash::from_hex("zz").is_none());
        assert!(AdminTokenHash::from_hex("abcd").is_none());
        assert!(!format!("{hash:?}").contains(&hash.to_hex()));
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            bearer_token(&headers),
            Err(ApiError::Unauthorized {
                invalid_token: false,
                ..
            })
        ));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer ", "abc"] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert!(
                matches!(
                    bearer_token(&headers),
                    Err(ApiError::Unauthorized {
                        invalid_token: true,
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn company_principal_acts_for_its_company_only() {
        let principal = Principal::Company {
            company_id: "acme".into(),
            key_id: "key_1".into(),
        };
        assert!(principal.may_act_for("acme"));
        assert!(!principal.may_act_for("other"));
        assert!(principal.require_admin().is_err());
        assert!(Principal::Admin.may_act_for("anything"));
        assert!(Principal::Admin.require_admin().is_ok());
    }
}
