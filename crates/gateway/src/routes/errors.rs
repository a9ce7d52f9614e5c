//! `/errors/{code}`: the page each problem's `type` points to. HTML for people, JSON on request.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Json, Response};
use cancelgate_core::ErrorCode;
use serde_json::json;

use crate::error::ApiError;
use crate::openapi::{ErrorCodeDocSchema, ErrorCodeListSchema, ErrorCodeSchema, problems};

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("json"))
}

fn code_json(code: ErrorCode) -> serde_json::Value {
    let doc = code.doc();
    json!({
        "code": code.as_str(), "status": code.http_status(), "title": doc.title,
        "meaning": doc.meaning, "what_to_do": doc.what_to_do, "retryable": code.retryable(),
    })
}

problems!(
    /// What `GET /errors/{code}` answers besides the code's page.
    PageProblems = [NotFound]
);

/// What an error code means and what to do: HTML, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors/{code}", tag = "operations", operation_id = "getErrorCode",
    params(("code" = ErrorCodeSchema, Path)),
    responses((status = 200, description = "The code's page.", content(
        (ErrorCodeDocSchema = "application/json"),
        (String = "text/html"),
    )), PageProblems))]
pub async fn page(code: Result<Path<String>, PathRejection>, headers: HeaderMap) -> Response {
    // A name that is not even UTF-8 (`%FF`) is no code either: our 404, not axum's own text.
    let Ok(code) = code.map_err(drop).and_then(|Path(code)| code.parse::<ErrorCode>().map_err(drop)) else {
        return ApiError::not_found("No such error code; /errors lists them all.").into_response();
    };
    if wants_json(&headers) {
        return Json(code_json(code)).into_response();
    }
    let doc = code.doc();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} — cancelgate</title></head>\
         <body><h1><code>{code}</code>: {title}</h1><p>HTTP {status}. Retryable: {retryable}.</p>\
         <h2>What it means</h2><p>{meaning}</p><h2>What to do</h2><p>{todo}</p>\
         <p><a href=\"/errors\">All error codes</a></p></body></html>",
        code = code.as_str(),
        title = html_escape(doc.title),
        status = code.http_status(),
        retryable = if code.retryable() { "yes" } else { "no" },
        meaning = html_escape(doc.meaning),
        todo = html_escape(doc.what_to_do),
    ))
    .into_response()
}

/// Every error code: HTML, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors", tag = "operations", operation_id = "listErrorCodes",
    responses((status = 200, description = "The error codes.", content(
        (ErrorCodeListSchema = "application/json"),
        (String = "text/html"),
    ))))]
pub async fn index(headers: HeaderMap) -> Response {
    if wants_json(&headers) {
        let data: Vec<_> = ErrorCode::ALL.into_iter().map(code_json).collect();
        return Json(json!({"object": "list", "data": data})).into_response();
    }
    let rows: String = ErrorCode::ALL
        .into_iter()
        .map(|c| {
            format!(
                "<tr><td><a href=\"/errors/{0}\"><code>{0}</code></a></td><td>{1}</td><td>{2}</td></tr>",
                c.as_str(),
                c.http_status(),
                html_escape(c.doc().title)
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error codes — cancelgate</title></head>\
         <body><h1>Error codes</h1><table><tr><th>code</th><th>HTTP</th><th>title</th></tr>{rows}</table></body></html>"
    ))
    .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}
