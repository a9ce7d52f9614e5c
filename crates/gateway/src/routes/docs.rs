//! `GET /openapi.json` and the interactive docs under `/docs` (Swagger UI, its assets bundled in
//! the binary: the page works offline). Served here rather than by `utoipa_swagger_ui`'s own
//! router so that the document is the patched one (`openapi::document`) and the page is titled
//! after the API, not "Swagger UI".

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::openapi;

/// The docs page's `<title>`.
pub const TITLE: &str = "cancelgate API";

#[derive(Clone)]
pub(crate) struct Docs {
    document: Arc<serde_json::Value>,
    config: Arc<Config<'static>>,
}

impl std::fmt::Debug for Docs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs").finish_non_exhaustive()
    }
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let docs = Docs {
        document: Arc::new(openapi::document()),
        config: Arc::new(Config::new(["/openapi.json"]).validator_url("none")),
    };
    Router::new()
        .route("/openapi.json", get(document))
        .route("/docs", get(to_the_page))
        .route("/docs/", get(|State(docs): State<Docs>| async move { asset(&docs, "") }))
        .route(
            "/docs/{*rest}",
            get(|State(docs): State<Docs>, Path(rest): Path<String>| async move { asset(&docs, &rest) }),
        )
        .with_state(docs)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object)))]
pub(crate) async fn document(State(docs): State<Docs>) -> axum::Json<serde_json::Value> {
    axum::Json(docs.document.as_ref().clone())
}

/// Interactive documentation (works offline; redirects to `/docs/`).
// The page itself (`/docs/`) and its assets are served by `asset`, outside the document.
#[utoipa::path(get, path = "/docs", tag = "operations", operation_id = "docs",
    responses(
        (status = 200, description = "The docs page (after the redirect).", content_type = "text/html", body = String),
        (status = 303, description = "To `/docs/`.", headers(("Location" = String))),
    ))]
pub(crate) async fn to_the_page() -> Redirect {
    Redirect::to("/docs/")
}

fn asset(docs: &Docs, path: &str) -> Response {
    match utoipa_swagger_ui::serve(path, docs.config.clone()) {
        Ok(Some(file)) => {
            let body = if file.content_type.starts_with("text/html") {
                let html = String::from_utf8_lossy(&file.bytes);
                html.replace("<title>Swagger UI</title>", &format!("<title>{TITLE}</title>")).into_bytes()
            } else {
                file.bytes.into_owned()
            };
            let mut response = (StatusCode::OK, body).into_response();
            if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Ok(None) => ApiError::not_found("No such route.").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the docs page");
            ApiError::new(cancelgate_core::ErrorCode::Internal, "The docs page cannot be rendered.").into_response()
        }
    }
}
