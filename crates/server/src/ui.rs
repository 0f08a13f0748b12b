//! The canvas's built files (`ui/dist`), served under `/ui/` on the API's
//! own origin, so the browser needs no CORS and the bearer token stays in
//! one place. When the UI has not been built, `/ui/` says how to build it.
//!
//! Every answer under `/ui` carries security headers: a Content-Security-
//! Policy that lets the page load only its own scripts, styles and images
//! and talk only to this origin (no inline or injected script, no plugins,
//! no framing), `X-Frame-Options: DENY` for browsers without
//! `frame-ancestors`, `X-Content-Type-Options: nosniff` and a referrer
//! policy that sends no path elsewhere.

use std::path::Path;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use crate::error::ApiError;

/// The canvas's policy. Styles may be inline: React Flow positions nodes
/// and edges with `style` attributes.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The headers every `/ui` answer carries.
pub fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
    ]
}

async fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in security_headers() {
        headers.insert(name, value);
    }
    response
}

/// Routes for `/ui` and everything under it.
pub fn router(dir: &Path) -> Router {
    pages(dir).layer(axum::middleware::map_response(with_security_headers))
}

fn pages(dir: &Path) -> Router {
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
    async fn the_canvas_is_served_with_security_headers() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<div id=\"root\"></div>").unwrap();
        for path in ["/ui/", "/ui/index.html", "/ui/missing.js", "/ui"] {
            let response = router(dir.path())
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let headers = response.headers();
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert!(csp.contains("script-src 'self';"), "{path}: {csp}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
            assert!(headers.contains_key(header::REFERRER_POLICY), "{path}");
        }
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
