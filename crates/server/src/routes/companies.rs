//! `/companies…`: companies and their API keys (admin), and a company reading
//! itself with its own key.
//!
//! Small bodies are checked field by field from a JSON value (instead of
//! serde's first-error-wins) so a 422 names every field at fault and what
//! it allows.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use moneyflow_core::ports::{ApiKey, ApiKeyStore, Company, CompanyStore, NewApiKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, FieldError, ProblemDetails};
use crate::extract::{JsonBody, Path};
use crate::routes::fields::{body_object, unknown_fields};
use crate::secret::generate_api_key;
use crate::state::AppState;

/// Longest company name and key label, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest company id.
pub const MAX_ID_CHARS: usize = 128;
const ID_RULE: &str = "1 to 128 characters, each a letter (A-Z, a-z), a digit, `-` or `_`";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct CreateCompanyRequest {
    /// At most 200 characters, not blank, without control characters.
    #[schema(
        example = "Acme Books",
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: String,
    /// Optional; a UUID v4 is generated when absent.
    #[schema(example = "acme", pattern = "^[A-Za-z0-9_-]{1,128}$")]
    pub id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyBody {
    pub id: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Company> for CompanyBody {
    fn from(company: Company) -> Self {
        Self {
            id: company.id,
            name: company.name,
            created_at: company.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyList {
    pub items: Vec<CompanyBody>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only describes the body in the OpenAPI document.
pub struct CreateApiKeyRequest {
    /// A note for people, e.g. where the key is used: at most 200
    /// characters, without control characters.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub label: Option<String>,
}

/// A new key: the only answer that ever contains `key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    pub company_id: String,
    /// The key itself: store it now, it is not shown again.
    pub key: String,
    /// The key's first 12 characters, shown in listings.
    pub prefix: String,
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A key as listed: no key material.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyBody {
    pub id: String,
    pub company_id: String,
    pub prefix: String,
    pub label: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<ApiKey> for ApiKeyBody {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            company_id: key.company_id,
            prefix: key.prefix,
            label: key.label,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyBody>,
}

#[derive(Debug, Deserialize)]
pub struct KeyPath {
    pub company_id: String,
    pub key_id: String,
}

/// The 404 for a missing company, and for another company seen with a key.
pub fn company_not_found(company_id: &str) -> ApiError {
    ApiError::not_found(format!("company `{company_id}` not found"))
}

/// `^[A-Za-z0-9_-]{1,128}$`: the rule for company ids (the core's for
/// `company_id` too), which key ids also follow. A path parameter that breaks
/// it cannot name anything stored, so handlers answer 404 without asking the
/// store (PostgreSQL, for one, rejects a NUL byte in a query parameter).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// [`is_valid_id`] as a field error at `company_id`.
pub fn check_company_id(id: &str) -> Result<(), FieldError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(FieldError::new(
            "company_id",
            "invalid_value",
            format!("`{id}` is not a valid company id"),
        )
        .with_hint(format!("a company id is {ID_RULE}")))
    }
}

/// A text field of at most [`MAX_NAME_CHARS`] characters, without control
/// characters: `None` when absent, null or invalid (the problem is recorded).
fn optional_text(
    map: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match map.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() > MAX_NAME_CHARS => {
            errors.push(FieldError::new(
                field,
                "invalid_value",
                format!("`{field}` must be at most {MAX_NAME_CHARS} characters"),
            ));
            None
        }
        // Control characters have no place in a name or label (and PostgreSQL
        // text cannot hold a NUL byte at all).
        Some(Value::String(text)) if text.chars().any(char::is_control) => {
            errors.push(FieldError::new(
                field,
                "invalid_value",
                format!("`{field}` must not contain control characters"),
            ));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                field,
                "wrong_type",
                format!("`{field}` must be a string"),
            ));
            None
        }
    }
}

/// Checks `{"name", "id"?}`; every problem is collected.
fn parse_create_company(body: Value) -> Result<(String, Option<String>), ApiError> {
    let map = body_object(body, r#"{"name": "…", "id": "…" (optional)}"#)?;
    let mut errors = Vec::new();
    unknown_fields(&map, &["name", "id"], &mut errors);

    let name = optional_text(&map, "name", &mut errors);
    let name = match name {
        Some(name) if name.trim().is_empty() => {
            errors.push(FieldError::new(
                "name",
                "invalid_value",
                "`name` must not be empty",
            ));
            None
        }
        None if !map.contains_key("name") || map["name"].is_null() => {
            errors.push(FieldError::new("name", "missing", "`name` is required"));
            None
        }
        other => other,
    };

    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => match check_company_id(id) {
            Ok(()) => Some(id.clone()),
            Err(mut error) => {
                error.path = "id".to_owned();
                errors.push(error);
                None
            }
        },
        Some(_) => {
            errors.push(
                FieldError::new("id", "wrong_type", "`id` must be a string")
                    .with_hint(format!("a company id is {ID_RULE}")),
            );
            None
        }
    };

    match name {
        Some(name) if errors.is_empty() => Ok((name, id)),
        _ => Err(ApiError::invalid_fields(errors)),
    }
}

/// Creates a company.
#[utoipa::path(post, path = "/companies", tag = "companies",
    request_body = CreateCompanyRequest,
    responses(
        (status = 201, description = "Created", body = CompanyBody),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = tracing::field::Empty))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<CompanyBody>), ApiError> {
    principal.require_admin()?;
    let (name, id) = parse_create_company(body)?;
    let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    tracing::Span::current().record("company_id", id.as_str());
    let company = state
        .store()
        .create_company(&id, &name)
        .await
        .map_err(|error| match error {
            moneyflow_core::ports::StoreError::Conflict(_) => ApiError::Conflict {
                detail: format!("a company with id `{id}` already exists"),
            },
            other => other.into(),
        })?;
    tracing::info!("company created");
    Ok((StatusCode::CREATED, Json(company.into())))
}

/// Every company.
#[utoipa::path(get, path = "/companies", tag = "companies",
    responses(
        (status = 200, description = "Every company", body = CompanyList),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<CompanyList>, ApiError> {
    principal.require_admin()?;
    let companies = state.store().list_companies().await?;
    Ok(Json(CompanyList {
        items: companies.into_iter().map(CompanyBody::from).collect(),
    }))
}

/// One company (the admin, or that company's own key).
#[utoipa::path(get, path = "/companies/{company_id}", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "The company", body = CompanyBody),
        (status = 404, description = "No such company (or another company's)", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<CompanyBody>, ApiError> {
    if !principal.may_act_for(&company_id) || !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    match state.store().get_company(&company_id).await? {
        Some(company) => Ok(Json(company.into())),
        None => Err(company_not_found(&company_id)),
    }
}

/// Creates an API key for the company; the answer is the only time the key is shown.
#[utoipa::path(post, path = "/companies/{company_id}/api-keys", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    request_body(content = Option<CreateApiKeyRequest>, description = "Optional"),
    responses(
        (status = 201, description = "Created; `key` is shown only here", body = CreatedApiKey),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
    body: Option<JsonBody<Value>>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    principal.require_admin()?;
    if !is_valid_id(&company_id) {
        return Err(company_not_found(&company_id));
    }
    let label = match body {
        None | Some(JsonBody(Value::Null)) => None,
        Some(JsonBody(body)) => {
            let map = body_object(body, r#"{"label": "…"} (optional)"#)?;
            let mut errors = Vec::new();
            unknown_fields(&map, &["label"], &mut errors);
            let label = optional_text(&map, "label", &mut errors);
            if !errors.is_empty() {
                return Err(ApiError::invalid_fields(errors));
            }
            label
        }
    };
    let generated = generate_api_key();
    let stored = state
        .store()
        .create_api_key(NewApiKey {
            id: &generated.id,
            company_id: &company_id,
            key_hash: &generated.hash_hex,
            prefix: &generated.prefix,
            label: label.as_deref(),
        })
        .await
        .map_err(|error| match error {
            moneyflow_core::ports::StoreError::NotFound(_) => company_not_found(&company_id),
            other => other.into(),
        })?;
    tracing::info!(key_id = %stored.id, prefix = %stored.prefix, "api key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: stored.id,
            company_id: stored.company_id,
            key: generated.key.expose_secret().to_owned(),
            prefix: stored.prefix,
            label: stored.label,
            created_at: stored.created_at,
        }),
    ))
}

/// The company's API keys, without key material.
#[utoipa::path(get, path = "/companies/{company_id}/api-keys", tag = "companies",
    params(("company_id" = String, Path, description = "The company's id")),
    responses(
        (status = 200, description = "Every key, revoked ones included", body = ApiKeyList),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such company", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %company_id))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(company_id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    principal.require_admin()?;
    let store = state.store();
    if !is_valid_id(&company_id) || store.get_company(&company_id).await?.is_none() {
        return Err(company_not_found(&company_id));
    }
    let keys = store.list_api_keys(&company_id).await?;
    Ok(Json(ApiKeyList {
        items: keys.into_iter().map(ApiKeyBody::from).collect(),
    }))
}

/// Revokes a key: it stops working at once.
#[utoipa::path(delete, path = "/companies/{company_id}/api-keys/{key_id}", tag = "companies",
    params(
        ("company_id" = String, Path, description = "The company's id"),
        ("key_id" = String, Path, description = "The key's id (`key_…`)"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not the admin token", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(company_id = %path.company_id, key_id = %path.key_id))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(path): Path<KeyPath>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    let valid = is_valid_id(&path.company_id) && is_valid_id(&path.key_id);
    if valid
        && state
            .store()
            .revoke_api_key(&path.company_id, &path.key_id)
            .await?
    {
        state.principals().forget_all();
        tracing::info!("api key revoked");
        state.key_revoked();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "company `{}` has no API key `{}`",
            path.company_id, path.key_id
        )))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(result: Result<(String, Option<String>), ApiError>) -> Vec<FieldError> {
        match result {
            Err(ApiError::Validation { errors, .. }) => errors,
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn company_body_accepts_name_and_optional_id() {
        assert_eq!(
            parse_create_company(json!({"name": "Acme"})).unwrap(),
            ("Acme".to_owned(), None)
        );
        assert_eq!(
            parse_create_company(json!({"name": "Acme", "id": "acme_1-x"})).unwrap(),
            ("Acme".to_owned(), Some("acme_1-x".to_owned()))
        );
    }

    #[test]
    fn company_body_names_every_bad_field() {
        let errors = problems(parse_create_company(
            json!({"id": "no spaces", "nmae": "x"}),
        ));
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["nmae", "name", "id"]);
        assert_eq!(errors[0].allowed, ["name", "id"]);
        assert!(errors[2].hint.as_deref().unwrap().contains("letter"));

        let errors = problems(parse_create_company(json!({"name": "  "})));
        assert_eq!(errors[0].code, "invalid_value");
        let errors = problems(parse_create_company(json!({"name": "x".repeat(201)})));
        assert_eq!(errors[0].code, "invalid_value");
        let errors = problems(parse_create_company(json!({"name": 5, "id": 7})));
        assert_eq!(errors.len(), 2);
        let errors = problems(parse_create_company(
            json!({"name": "A", "id": "x".repeat(129)}),
        ));
        assert_eq!(errors[0].path, "id");
        let errors = problems(parse_create_company(json!([1])));
        assert_eq!(errors[0].code, "wrong_type");
    }

    #[test]
    fn company_id_rule() {
        assert!(check_company_id("b5aa9687-d61f-467c-973e-f55d446981dc").is_ok());
        assert!(check_company_id("A_z-9").is_ok());
        assert!(check_company_id("").is_err());
        assert!(check_company_id("é").is_err());
        assert!(check_company_id("a/b").is_err());
        assert!(check_company_id(&"a".repeat(128)).is_ok());
        assert!(check_company_id(&"a".repeat(129)).is_err());
    }
}
