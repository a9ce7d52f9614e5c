//! The console's pages (GET): the cancellations with the listing's filters and cursor paging,
//! the `needs_review` queue, one cancellation with its attempts, the providers' health. Each
//! reads through the API's own functions (`routes::cancellation_list::list_visible`,
//! `routes::operate::{visible_id, attempt_views, retry_refusal}`, `routes::providers::views`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::Console;
use super::auth::session;
use super::page::{self, explain, frame, html, redirect, title_of};
use super::session::Session;
use super::view;
use crate::api::Status;
use crate::routes::{cancellation_list, cancellations, event_views, events, operate, providers};

/// The listing's filters the console's form sends (an empty field is no filter).
const FILTERS: [&str; 6] = ["status", "provider", "account", "reference", "created_gte", "created_lt"];

/// The session of a page's request; without one the page is the sign-in form.
fn signed_in(console: &Console, headers: &HeaderMap) -> Option<Session> {
    session(console, headers).map(|(_, s)| s)
}

/// The console's query, cleaned: known parameters with a value, times made RFC 3339.
fn cleaned(query: Option<&str>, keep: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let value = value.trim();
        if value.is_empty() || !keep.contains(&name.as_ref()) || out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let value = if name.starts_with("created_") { view::normalize_time(value) } else { value.to_owned() };
        out.push((name.into_owned(), value));
    }
    out
}

fn encode(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (n, v) in params {
        s.append_pair(n, v);
    }
    s.finish()
}

/// One page of a listing, as the list and the queue show it.
async fn listing(
    console: &Console,
    session: &Session,
    params: Vec<(String, String)>,
    path: &str,
    mut context: serde_json::Map<String, Value>,
) -> Response {
    let query = encode(&params);
    let (status, rows, has_more, error) =
        match cancellation_list::list_visible(&console.app, &session.client, Some(&query)).await {
            Ok((data, has_more)) => (StatusCode::OK, data, has_more, None),
            Err(e) => (e.status(), Vec::new(), false, Some(explain(&e))),
        };
    let without_cursor: Vec<_> = params.iter().filter(|(n, _)| n != "starting_after").cloned().collect();
    let next_page = match rows.last() {
        Some(last) if has_more => {
            let mut next = without_cursor.clone();
            next.push(("starting_after".into(), last.id.clone()));
            Some(format!("{path}?{}", encode(&next)))
        }
        _ => None,
    };
    let first_page = params.iter().any(|(n, _)| n == "starting_after").then(|| match encode(&without_cursor) {
        q if q.is_empty() => path.to_owned(),
        q => format!("{path}?{q}"),
    });
    let filters: serde_json::Map<String, Value> = params.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
    context.insert("rows".into(), json!(rows.iter().map(view::cancellation).collect::<Vec<_>>()));
    context.insert("filters".into(), Value::Object(filters));
    context.insert("statuses".into(), json!(["processing", "cancelled", "failed", "needs_review"]));
    context.insert("providers".into(), json!(console.app.registry.entries().map(|e| e.id()).collect::<Vec<_>>()));
    context.insert("error".into(), json!(error));
    context.insert("next_page".into(), json!(next_page));
    context.insert("first_page".into(), json!(first_page));
    html(status, "list.html", &Value::Object(context))
}

/// `GET /console/cancellations`: every cancellation this client may see, newest first.
pub async fn list(State(console): State<Console>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let Some(session) = signed_in(&console, &headers) else { return redirect("/console") };
    let mut keep = FILTERS.to_vec();
    keep.extend(["limit", "starting_after"]);
    let params = cleaned(query.as_deref(), &keep);
    let mut context = frame(&console, &session, "cancellations").await;
    context.insert("heading".into(), json!("Cancellations"));
    context.insert("intro".into(), json!("Every cancellation, newest first. Times are UTC."));
    context.insert("show_filters".into(), json!(true));
    context.insert("empty".into(), json!("No cancellation matches these filters."));
    listing(&console, &session, params, "/console/cancellations", context).await
}

/// `GET /console/review`: the cancellations awaiting an operator.
pub async fn review(State(console): State<Console>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let Some(session) = signed_in(&console, &headers) else { return redirect("/console") };
    let mut params = vec![("status".to_owned(), Status::NeedsReview.as_str().to_owned())];
    params.extend(cleaned(query.as_deref(), &["limit", "starting_after"]));
    let mut context = frame(&console, &session, "review").await;
    context.insert("heading".into(), json!("Needs review"));
    context.insert(
        "intro".into(),
        json!("The gateway could not tell whether these were cancelled. Check with the provider, then resolve each one (or retry, where the provider allows it)."),
    );
    context.insert("show_filters".into(), json!(false));
    context.insert("empty".into(), json!("Nothing awaits review."));
    listing(&console, &session, params, "/console/review", context).await
}

/// What a finished action says on the page it returns to (`?done=`).
fn done_text(done: Option<&str>, status: &str) -> Option<String> {
    match done {
        Some("resolved") => Some(format!("Resolved: this cancellation is now {}.", view::status_label(status))),
        Some("retried") => Some("Retry sent: the gateway drives this cancellation again.".to_owned()),
        Some("redelivered") => Some("Redelivery queued: the event is sent again to its endpoints.".to_owned()),
        _ => None,
    }
}

/// One cancellation's page, with `error` shown above it (a refused action) and `status`.
pub async fn detail_page(
    console: &Console,
    session: &Session,
    id: &str,
    done: Option<&str>,
    failure: Option<(StatusCode, String)>,
) -> Response {
    let record = match operate::visible_id(&console.app, &session.client, id).await {
        Ok(record) => record,
        Err(e) => return page::message(console, Some(session), e.status(), title_of(e.status()), &explain(&e)).await,
    };
    let attempts = match operate::attempt_views(&console.app, &record).await {
        Ok(a) => a,
        Err(e) => return page::message(console, Some(session), e.status(), title_of(e.status()), &explain(&e)).await,
    };
    let c = cancellations::cancellation(&record, false);
    let in_review = record.status == cancelgate_ledger::Status::NeedsReview;
    let retry_refusal =
        in_review.then(|| operate::retry_refusal(&console.app, &record)).flatten().map(|e| e.detail.clone());
    let (status, error) = match failure {
        Some((status, text)) => (status, Some(text)),
        None => (StatusCode::OK, None),
    };
    let mut context = frame(console, session, "").await;
    context.insert("done".into(), json!(done_text(done, c.status.as_str())));
    context.insert("error".into(), json!(error));
    context.insert("c".into(), view::cancellation(&c));
    context.insert("attempts".into(), json!(attempts.iter().map(view::attempt).collect::<Vec<_>>()));
    context.insert("in_review".into(), json!(in_review));
    context.insert("retry_refusal".into(), json!(retry_refusal));
    // Events and deliveries (SPEC §8), read as `GET /v1/events/{id}` reads them.
    let events = match events::cancellation_events(&console.app, &record.id).await {
        Ok(events) => events,
        Err(e) => return page::message(console, Some(session), e.status(), title_of(e.status()), &explain(&e)).await,
    };
    let events: Vec<Value> = events.iter().map(|e| view::event(&event_views::event_view(e, true))).collect();
    context.insert("events".into(), json!(events));
    context.insert("webhooks".into(), json!(!console.app.webhooks.endpoints.is_empty()));
    html(status, "detail.html", &Value::Object(context))
}

/// `GET /console/cancellations/{id}`.
pub async fn detail(
    State(console): State<Console>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(session) = signed_in(&console, &headers) else { return redirect("/console") };
    let id = id.map(|Path(id)| id).unwrap_or_default();
    let done = cleaned(query.as_deref(), &["done"]).pop().map(|(_, v)| v);
    detail_page(&console, &session, &id, done.as_deref(), None).await
}

/// `GET /console/providers`: each provider's health, as `GET /v1/providers` tells it.
pub async fn providers(State(console): State<Console>, headers: HeaderMap) -> Response {
    let Some(session) = signed_in(&console, &headers) else { return redirect("/console") };
    let mut context = frame(&console, &session, "providers").await;
    let rows: Vec<Value> = providers::views(&console.app).iter().map(view::provider).collect();
    context.insert("providers".into(), json!(rows));
    html(StatusCode::OK, "providers.html", &Value::Object(context))
}
