//! The console's HTML answers: security headers on every one, the frame every signed-in page
//! shares (who, the review count, the CSRF token), and errors as readable pages, never JSON.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::Console;
use super::session::Session;
use super::templates;
use crate::clients::Scope;
use crate::error::ApiError;

/// Scripts from nowhere (the console has none), styles and images from the gateway only, no
/// framing, forms only back to the gateway.
const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Every console answer: the CSP and its companions; pages are never cached (they show live
/// records and carry a CSRF token), assets say their own `Cache-Control`.
pub async fn secure(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An HTML page with `status`, or a plain 500 if the page could not be made (a bug: logged).
pub fn html(status: StatusCode, template: &str, context: &Value) -> Response {
    match templates::render(template, context) {
        Ok(body) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], body)
            .into_response(),
        Err(cause) => {
            tracing::error!(error = %cause, template, "a console page could not be rendered");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.").into_response()
        }
    }
}

pub fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// What every signed-in page shows around its content.
pub async fn frame(console: &Console, session: &Session, nav: &str) -> Map<String, Value> {
    let client = &session.client;
    // The queue's size, gateway-wide; a ledger that cannot say shows "?" rather than no page.
    let review_count = match console.app.driver.ledger.count(cancelgate_ledger::Status::NeedsReview).await {
        Ok(n) => json!(n),
        Err(_) => json!("?"),
    };
    let mut m = Map::new();
    m.insert(
        "me".into(),
        json!({"name": client.name, "scopes": client.scopes.iter().map(Scope::as_str).collect::<Vec<_>>()}),
    );
    m.insert("operate".into(), json!(client.scopes.contains(Scope::Operate)));
    m.insert("csrf".into(), json!(session.csrf));
    m.insert("nav".into(), json!(nav));
    m.insert("review_count".into(), review_count);
    m
}

/// A page that only says what went wrong, inside the frame when signed in.
pub async fn message(
    console: &Console,
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let mut context = match session {
        Some(s) => frame(console, s, "").await,
        None => Map::new(),
    };
    let (href, label) = if session.is_some() {
        ("/console/cancellations", "Back to the cancellations")
    } else {
        ("/console", "Sign in")
    };
    context.insert("title".into(), json!(title));
    context.insert("message".into(), json!(text));
    context.insert("back_href".into(), json!(href));
    context.insert("back_label".into(), json!(label));
    html(status, "message.html", &Value::Object(context))
}

/// An API error in an operator's words: its detail (and the parameter it is about).
pub fn explain(error: &ApiError) -> String {
    match &error.param {
        Some(param) => format!("{} (field `{param}`)", error.detail),
        None => error.detail.clone(),
    }
}

/// The title an error page gets.
pub fn title_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        409 => "Not possible now",
        429 => "Too many attempts",
        400 | 422 => "Check the form",
        503 => "Unavailable",
        _ => "Something went wrong",
    }
}

/// `/console/…` that is no page.
pub async fn not_found(axum::extract::State(console): axum::extract::State<Console>, headers: HeaderMap) -> Response {
    let session = super::auth::session(&console, &headers);
    message(
        &console,
        session.as_ref().map(|(_, s)| s),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
    )
    .await
}
