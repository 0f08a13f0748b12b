//! `GET /`: the original health check, kept as it was (no credentials).

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Always `ok` while the process answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Health check.
#[utoipa::path(get, path = "/", tag = "health", security(()),
    responses((status = 200, description = "The server is up", body = Status)))]
pub async fn status() -> Json<Status> {
    Json(Status { status: "ok" })
}
