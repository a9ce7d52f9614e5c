//! The console's operator actions: resolve, retry and redeliver, each a form POST carrying the session's
//! CSRF token, allowed to `operate` clients only, and done by the API's own functions
//! (`routes::operate::{resolve_record, retry_record}`, `routes::events::redeliver_event`): the
//! same checks, the same ledger doors.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use http::StatusCode;

use super::Console;
use super::auth::{authorize_post, read_form};
use super::page::{self, explain, redirect};
use super::pages::detail_page;
use super::session::Session;
use crate::api::ResolveBody;
use crate::clients::Scope;
use crate::request_id::RequestId;
use crate::routes::{events, operate};

/// The signed-in `operate` session behind a valid form, and the cancellation id; else the page
/// that says why not (nothing changed).
async fn admit(
    console: &Console,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(Session, String, super::auth::Form), Response> {
    let (headers, form) = read_form(console, request).await?;
    let (_, session) = authorize_post(console, &headers, &form).await?;
    if !session.client.scopes.contains(Scope::Operate) {
        return Err(page::message(
            console,
            Some(&session),
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your client's scopes do not include `operate`: it may look at cancellations, not resolve or retry them. Nothing was changed.",
        )
        .await);
    }
    let id = id.map(|Path(id)| id).unwrap_or_default();
    Ok((session, id, form))
}

/// `POST /console/cancellations/{id}/resolve` with `status` and `note`.
pub async fn resolve(
    State(console): State<Console>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (session, id, form) = match admit(&console, id, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    // The API's own body, parsed by the API's own parser: the same rules for the note.
    let body = serde_json::json!({"status": form.get("status").unwrap_or(""), "note": form.get("note").unwrap_or("")});
    let outcome = match ResolveBody::parse(body.to_string().as_bytes()) {
        Ok(body) => match operate::visible_id(&console.app, &session.client, &id).await {
            Ok(record) => operate::resolve_record(&console.app, &session.client, record, body).await.map(|_| ()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => redirect(&format!("/console/cancellations/{id}?done=resolved")),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            page::message(&console, Some(&session), e.status(), "Not found", &explain(&e)).await
        }
        Err(e) => detail_page(&console, &session, &id, None, Some((e.status(), explain(&e)))).await,
    }
}

/// `POST /console/cancellations/{id}/retry`.
pub async fn retry(
    State(console): State<Console>,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let request_id = request.extensions().get::<RequestId>().cloned();
    let (session, id, _) = match admit(&console, id, request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let request_id = request_id.unwrap_or_else(RequestId::generate);
    let outcome = match operate::visible_id(&console.app, &session.client, &id).await {
        Ok(record) => operate::retry_record(&console.app, &session.client, record, &request_id).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => redirect(&format!("/console/cancellations/{id}?done=retried")),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            page::message(&console, Some(&session), e.status(), "Not found", &explain(&e)).await
        }
        Err(e) => detail_page(&console, &session, &id, None, Some((e.status(), explain(&e)))).await,
    }
}

/// `POST /console/cancellations/{id}/events/{event}/redeliver`: the event queued again to every
/// endpoint that takes it, as `POST /v1/events/{id}/redeliver` with `{}` does.
pub async fn redeliver(
    State(console): State<Console>,
    ids: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (id, event_id) = ids.map(|Path(ids)| ids).unwrap_or_default();
    let (session, _, _) = match admit(&console, Ok(Path(id.clone())), request).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let outcome = match events::visible_event_id(&console.app, &session.client, &event_id).await {
        // The event must be this cancellation's: the page's button names both.
        Ok(event) if event.cancellation_id.as_deref() == Some(id.as_str()) => {
            events::redeliver_event(&console.app, &event, None).await.map(|_| ())
        }
        Ok(_) => Err(events::not_found()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => redirect(&format!("/console/cancellations/{id}?done=redelivered#events")),
        Err(e) if e.status() == StatusCode::NOT_FOUND => {
            page::message(&console, Some(&session), e.status(), "Not found", &explain(&e)).await
        }
        Err(e) => detail_page(&console, &session, &id, None, Some((e.status(), explain(&e)))).await,
    }
}
