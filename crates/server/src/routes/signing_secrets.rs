//! `/companies/{company_id}/signing-secrets` (admin): the secrets a company's
//! payment provider signs webhooks with (Standard Webhooks, `whsec_…`).
//!
//! Creating a secret rotates: every earlier secret stays valid for a grace
//! period (24 hours unless the body says otherwise), so the sender can
//! switch over without a window in which its requests are refused. A secret
//! is shown once, in the answer that creates it; listings carry no secret
//! material. A rotation never lengthens an earlier grace: rotating with
//! `previous_valid_seconds: 0` ends every earlier secret at once, and
//! `DELETE …/signing-secrets/{secret_id}` revokes one.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use moneyflow_core::ports::{CompanyStore, SigningSecret, SigningSecretStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::routes::companies::{company_not_found, is_valid_id};
use crate::routes::fields::whole_number;
use crate::secret::random_base62;
use crate::state::AppState;
use crate::webhook::generate_secret;

/// How long earlier secrets stay valid after a rotation, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 60 * 60);
/// The longest grace period a rotation may ask for: a week.
pub const MAX_GRACE_SECONDS: u64 = 7 * 24 * 60 * 60;
/// Prefix of a signing secret's public id.
pub const SECRET_ID_PREFIX: &str = "whs_";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct CreateSigningSecretRequest {
    /// How long the company's earlier secrets stay valid, in seconds
    /// (0 to 604800; default 86400), at most: a secret already due to expire
    /// sooner keeps its earlier end. 0 revokes them all now.
    #[schema(example = 86400, minimum = 0, maximum = 604_800)]
    pub previous_valid_seconds: Option<u64>,
}

/// A new secret: the only answer that ever contains `secret`.
#[derive(Serialize, ToSchema)]
pub struct CreatedSigningSecret {
    pub id: String,
    pub company_id: String,
    /// `whsec_` + base64 of 32 random bytes: configure it in the sender now,
    /// it is not shown again.
    pub secret: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Until when the company's earlier secrets stay valid.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_valid_until: OffsetDateTime,
}

impl std::fmt::Debug for CreatedSigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSigningSecret")
            .field("id", &self.id)
            .field("company_id", &self.company_id)
            .field("secret", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("previous_valid_until", &self.previous_valid_until)
            .finish()
    }
}

/// A secret as listed: no secret material.
#[derive(Debug, Serialize, ToSchema)]
pub struct SigningSecretBody {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Set once a newer secret replaced it; valid until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<SigningSecret> for SigningSecretBody {
    fn from(secret: SigningSecret) -> Self {
        Self {
            id: secret.id,
            created_at: secret.created_at,
            expires_at: secret.expires_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningSecretList {
    /// The active secrets, newest first.
    pub items: Vec<SigningSecretBody>,
}

/// Reads `{"previous_valid_seconds": 0..=604800}`; every problem is listed.
fn parse_grace(body: Option<Value>) -> Result<Duration, ApiError> {
    let Some(body) = body.filter(|body| !body.is_null()) else {
        return Ok(DEFAULT_GRACE);
    };
    let Value::Object(map) = body else {
        return Err(ApiError::invalid_fields(vec![FieldError::new(
            "",
            "wrong_type",
            r#"the body must be a JSON object: {"previous_valid_seconds": 86400} (optional)"#,
        )]));
    };
    let mut errors = Vec::new();
    for key in map.keys().filter(|key| *key != "previous_valid_seconds") {
        errors.push(
            FieldError::new(
                key.clone(),
                "unknown_field",
                format!("unknown field `{key}`"),
            )
            .with_allowed(["previous_valid_seconds"]),
        );
    }
    let grace = match map.get("previous_valid_seconds") {
        None | Some(Value::Null) => Some(DEFAULT_GRACE),
        Some(value @ Value::Number(_)) => {
            match whole_number(value).filter(|s| *s <= MAX_GRACE_SECONDS) {
                Some(seconds) => Some(Duration::from_secs(seconds)),
                None => {
                    errors.push(FieldError::new(
                    "previous_valid_seconds",
                    "invalid_value",
                    format!(
                        "`previous_valid_seconds` must be a whole number from 0 to {MAX_GRACE_SECONDS} (a week)"
                    ),
                ));
                    None
                }
            }
        }
        Some(_) => {
            errors.push(FieldError::new(
                "previous_valid_seconds",
                "wrong_type",
                "`previous_valid_seconds` must be a number of seconds",
            ));
            None
        }
    };
    match grace {
        Some(grace) if errors.is_empty() => Ok(grace),
        _ => Err(ApiError::invalid_fields(errors)),
    }
}

/// Creates a signing secret for the company; earlier ones stay valid for the grace period.
#[utoipa::path(post, path = "/companies/{company_id}/signing-secrets", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body(content = Option<CreateSigningSecretRequest>, description = "Optional"),
    responses(
        (status = 201, description = "Created; `secret` is shown only here", body = CreatedSigningSecret),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`previous_valid_seconds` out of range", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    body: Option<JsonBody<Value>>,
) -> Result<(StatusCode, Json<CreatedSigningSecret>), ApiError> {
    principal.require_admin()?;
    if !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    let grace = parse_grace(body.map(|JsonBody(body)| body))?;
    let id = format!("{SECRET_ID_PREFIX}{}", random_base62(16));
    let secret = generate_secret();
    let now = OffsetDateTime::now_utc();
    let previous_valid_until = now + grace;
    let stored = state
        .store()
        .create_signing_secret(
            &company_id,
            &id,
            secret.expose_secret(),
            now,
            previous_valid_until,
        )
        .await
        .map_err(|error| match error {
            StoreError::NotFound(_) => company_not_found(&company_id),
            other => other.into(),
        })?;
    tracing::info!(secret_id = %stored.id, grace_seconds = grace.as_secs(), "signing secret created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedSigningSecret {
            id: stored.id,
            company_id: stored.company_id,
            secret: secret.expose_secret().to_owned(),
            created_at: stored.created_at,
            previous_valid_until,
        }),
    ))
}

/// The company's active signing secrets, without secret material.
#[utoipa::path(get, path = "/companies/{company_id}/signing-secrets", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "The secrets valid now, newest first", body = SigningSecretList),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<SigningSecretList>, ApiError> {
    principal.require_admin()?;
    let store = state.store();
    if !is_valid_id(&company_id) || store.get_company(&company_id).await?.is_none() {
        return Err(company_not_found(&company_id));
    }
    let secrets = store
        .active_signing_secrets(&company_id, OffsetDateTime::now_utc())
        .await?;
    Ok(Json(SigningSecretList {
        items: secrets.into_iter().map(SigningSecretBody::from).collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct SecretPath {
    pub company_id: String,
    pub secret_id: String,
}

/// Revokes one signing secret: requests signed with it fail from now on.
#[utoipa::path(delete, path = "/companies/{company_id}/signing-secrets/{secret_id}", tag = "companies",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("secret_id" = String, Path, description = "The secret's id (`whs_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "The company has no such secret", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, secret_id = %path.secret_id))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<SecretPath>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    let valid = is_valid_id(&path.company_id) && is_valid_id(&path.secret_id);
    if valid
        && state
            .store()
            .delete_signing_secret(&path.company_id, &path.secret_id)
            .await?
    {
        tracing::info!("signing secret revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "company `{}` has no signing secret `{}`",
            path.company_id, path.secret_id
        )))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn grace_defaults_to_a_day_and_is_bounded() {
        assert_eq!(parse_grace(None).unwrap(), DEFAULT_GRACE);
        assert_eq!(parse_grace(Some(json!({}))).unwrap(), DEFAULT_GRACE);
        assert_eq!(
            parse_grace(Some(json!({"previous_valid_seconds": 0}))).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            parse_grace(Some(json!({"previous_valid_seconds": 604800}))).unwrap(),
            Duration::from_secs(604_800)
        );
        for bad in [
            json!({"previous_valid_seconds": 604801}),
            json!({"previous_valid_seconds": -1}),
            json!({"previous_valid_seconds": 1.5}),
            json!({"previous_valid_seconds": "60"}),
            json!({"grace": 60}),
            json!([]),
        ] {
            assert!(
                matches!(
                    parse_grace(Some(bad.clone())),
                    Err(ApiError::Validation { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_of_a_created_secret_is_redacted() {
        let created = CreatedSigningSecret {
            id: "whs_1".into(),
            company_id: "acme".into(),
            secret: "whsec_c2VjcmV0".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            previous_valid_until: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(!format!("{created:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn a_listed_secret_has_no_secret_material() {
        let body = SigningSecretBody::from(SigningSecret {
            id: "whs_1".into(),
            company_id: "acme".into(),
            secret: "whsec_c2VjcmV0".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
        });
        let text = serde_json::to_string(&body).unwrap();
        assert!(!text.contains("whsec_"), "{text}");
    }
}
