//! The canvas's built files (`ui/dist`), served under `/ui/` on the API's
//! own origin, so the browser needs no CORS and the bearer token stays in
//! one place. When the UI has not been built, `/ui/` says how to build it.

use std::path::Path;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use crate::error::ApiError;

/// Routes for `/ui` and everything under it.
pub fn router(dir: &Path) -> Router {
    let redirect = get(|| async { Redirect::permanent("/ui/") });
    if dir.join("index.html").is_file() {
        Router::new().route("/ui", redirect).nest_service(
            "/ui/",
            ServeDir::new(dir).append_index_html_on_directories(true),
        )
    } else {
        let missing = dir.display().to_string();
        let not_built = get(move || {
            let missing = missing.clone();
            async move { not_built(&missing) }
        });
        Router::new()
            .route("/ui", redirect)
            .route("/ui/", not_built.clone())
            .route("/ui/{*path}", not_built)
    }
}

fn not_built(dir: &str) -> Response {
    ApiError::not_found(format!(
        "the canvas is not built: no index.html in {dir}. Build it with `make ui` \
         (or `cd ui && npm ci && npm run build`), or point --ui-dir at a built copy"
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn serves_the_built_files_and_redirects_the_bare_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<div id=\"root\"></div>").unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("assets/app.js"), "console.log(1)").unwrap();
        let app = router(dir.path());
        let response = app
            .clone()
            .oneshot(Request::get("/ui/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("root"));
        let response = app
            .clone()
            .oneshot(
                Request::get("/ui/assets/app.js")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = app
            .oneshot(Request::get("/ui").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()[header::LOCATION], "/ui/");
    }

    #[tokio::test]
    async fn says_how_to_build_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let response = router(&dir.path().join("nope"))
            .oneshot(Request::get("/ui/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("make ui"));
    }
}
