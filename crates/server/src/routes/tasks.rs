//! `GET /tasks`: the task catalogue (the built-in tasks, plus any the
//! server's registry adds), each task with the JSON Schema
//! of its parameters (what validation checks and the canvas renders).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// `{name, title, description, parameters_schema, output}` per task.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
}

/// The task catalogue.
#[utoipa::path(get, path = "/tasks", tag = "tasks",
    responses((status = 200, description = "Every built-in task with its parameters' JSON Schema", body = TaskList)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Response, ApiError> {
    // The registry does not change while the server runs, so its JSON is
    // built once per state and served as bytes.
    let cache = state.tasks_body();
    let body = match cache.get() {
        Some(body) => body.clone(),
        None => {
            let json =
                serde_json::to_vec(&serde_json::json!({ "items": state.catalogue().tasks() }))
                    .map_err(ApiError::internal)?;
            cache.get_or_init(|| Bytes::from(json)).clone()
        }
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}
