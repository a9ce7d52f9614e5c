//! The events API (SPEC §8): `GET /v1/events`, `GET /v1/events/{id}` (with its deliveries and
//! their attempts) and `POST /v1/events/{id}/redeliver`. An event is visible to a client that may
//! see what it is about: the cancellation's provider account, or its own batch.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use cancelgate_ledger::{DeliveryStatus, EVENT_TYPES, Event, EventFilter, LedgerError};
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::event_views::{EventList, EventView, RedeliverBody, event_view};
use super::faults::ledger_error;
use super::listing;
use crate::clients::Client;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::openapi::problems;
use crate::state::AppState;

pub(crate) fn not_found() -> ApiError {
    ApiError::not_found("No event with this id.")
}

/// Whose event it is: the client of the batch, or the provider account of the cancellation.
async fn may_see(state: &AppState, client: &Client, event: &Event) -> Result<bool, ApiError> {
    if let Some(batch_id) = &event.batch_id {
        let batch = state.driver.ledger.get_batch(batch_id).await.map_err(ledger_error)?;
        return Ok(batch.is_some_and(|b| b.client == client.name));
    }
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let data = &payload["data"];
    Ok(match (data["provider"].as_str(), data["account"].as_str()) {
        (Some(provider), Some(account)) => client.may_use(provider, account),
        _ => false,
    })
}

async fn visible_event(
    state: &AppState,
    client: &Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Event, ApiError> {
    let Ok(Path(id)) = id else { return Err(not_found()) };
    visible_event_id(state, client, &id).await
}

/// The event `id` with its deliveries, when `client` may see it; else `404` (as if absent).
pub(crate) async fn visible_event_id(state: &AppState, client: &Client, id: &str) -> Result<Event, ApiError> {
    if id.len() > 64 {
        return Err(not_found());
    }
    let event = state.driver.ledger.get_event(id).await.map_err(ledger_error)?.ok_or_else(not_found)?;
    if !may_see(state, client, &event).await? {
        return Err(not_found());
    }
    Ok(event)
}

problems!(
    /// What `GET /v1/events/{id}` answers besides the event.
    GetProblems = V1_LAYERS + [NotFound, Internal, LedgerUnavailable]
);

/// One event with its deliveries, one per endpoint (and per redelivery), and their attempts.
#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events", operation_id = "getEvent",
    params(("id" = String, Path, description = "The event id (`evt_…`).")),
    responses((status = 200, description = "The event.", body = EventView), GetProblems),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let event = visible_event(&state, &client, id).await?;
    Ok(Json(event_view(&event, true)).into_response())
}

const LIST_PARAMS: [&str; 5] = ["limit", "starting_after", "type", "cancellation_id", "delivery_status"];

struct ListQuery {
    limit: u32,
    starting_after: Option<String>,
    filter: EventFilter,
}

impl ListQuery {
    fn parse(query: Option<&str>) -> Result<ListQuery, ApiError> {
        let mut q = ListQuery { limit: listing::DEFAULT_LIMIT, starting_after: None, filter: EventFilter::default() };
        let unknown = "Unknown query parameter: the listing takes limit, starting_after, type, cancellation_id and \
                       delivery_status.";
        for (param, value) in listing::params(query, &LIST_PARAMS, unknown)? {
            match param {
                "limit" => q.limit = listing::limit(&value)?,
                "starting_after" => q.starting_after = Some(value),
                "type" => {
                    if !EVENT_TYPES.contains(&value.as_str()) {
                        return Err(ApiError::invalid(
                            param,
                            format!("Unknown event type: one of {}.", EVENT_TYPES.join(", ")),
                        ));
                    }
                    q.filter.kind = Some(value);
                }
                "cancellation_id" => {
                    if value.is_empty() || value.len() > 64 {
                        return Err(ApiError::invalid(param, "A cancellation id has 1 to 64 characters."));
                    }
                    q.filter.cancellation_id = Some(value);
                }
                // `delivery_status`
                _ => {
                    let status = DeliveryStatus::parse(&value).ok_or_else(|| {
                        ApiError::invalid(param, "Unknown delivery status: one of pending, delivered, failed.")
                    })?;
                    q.filter.delivery_status = Some(status);
                }
            }
        }
        Ok(q)
    }
}

problems!(
    /// What `GET /v1/events` answers besides a page.
    ListProblems = V1_LAYERS + [InvalidRequest, Internal, LedgerUnavailable]
);

/// Outcome events, newest first (scope `read`; SPEC §8).
///
/// Cursor-paginated like the cancellations (`limit` 1–100, default 20; `starting_after` an event
/// id). Filters: `type`, `cancellation_id`, `delivery_status` (events with at least one delivery
/// `pending`, `delivered` or `failed`). Listed events carry no `deliveries`; read one for them.
// Events this client may not see are skipped, page by page.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "listEvents",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100 (default 20)."),
        ("starting_after" = Option<String>, Query, description = "An event id: the page after it."),
        ("type" = Option<String>, Query, description = "An event type."),
        ("cancellation_id" = Option<String>, Query, description = "The cancellation the events are about."),
        ("delivery_status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`."),
    ),
    responses((status = 200, description = "A page of events.", body = EventList), ListProblems),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(client): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let ListQuery { limit, starting_after, filter } = ListQuery::parse(query.as_deref())?;
    let mut data = Vec::new();
    let mut cursor = starting_after;
    let has_more = loop {
        let page = state.driver.ledger.list_events(&filter, limit, cursor.as_deref()).await.map_err(|e| match e {
            LedgerError::UnknownCursor(_) => ApiError::invalid("starting_after", "`starting_after` names no event."),
            other => ledger_error(other),
        })?;
        let mut events = page.events.iter();
        for event in events.by_ref() {
            cursor = Some(event.id.clone());
            if may_see(&state, &client, event).await? {
                data.push(event_view(event, false));
                if data.len() == limit as usize {
                    break;
                }
            }
        }
        if data.len() == limit as usize {
            break events.next().is_some() || page.has_more;
        }
        if !page.has_more {
            break false;
        }
    };
    Ok(Json(json!({"object": "list", "data": data, "has_more": has_more})).into_response())
}

/// The endpoint a redeliver body names, if any: `{}`, an empty body, or `{"endpoint": "name"}`;
/// anything else is refused naming the member.
fn parse_redeliver(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut failure = None;
    let parsed = serde::Deserializer::deserialize_map(&mut de, RedeliverVisitor { failure: &mut failure })
        .and_then(|endpoint| de.end().map(|()| endpoint));
    parsed.map_err(|_| {
        failure.unwrap_or_else(|| ApiError::invalid("body", "The body is `{}` or `{\"endpoint\": \"name\"}`."))
    })
}

struct RedeliverVisitor<'a> {
    failure: &'a mut Option<ApiError>,
}

impl<'de> serde::de::Visitor<'de> for RedeliverVisitor<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a redeliver object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        use serde::de::Error as _;
        let mut endpoint = None;
        while let Some(name) = map.next_key::<String>()? {
            if name != "endpoint" {
                *self.failure = Some(ApiError::invalid(name, "Unknown member: a redeliver takes only `endpoint`."));
                return Err(A::Error::custom("unknown member"));
            }
            if endpoint.is_some() {
                *self.failure = Some(ApiError::invalid("endpoint", "`endpoint` is given more than once."));
                return Err(A::Error::custom("repeated member"));
            }
            match map.next_value::<String>() {
                Ok(value) => endpoint = Some(value),
                Err(e) => {
                    *self.failure = Some(ApiError::invalid("endpoint", "`endpoint` is an endpoint's name (a string)."));
                    return Err(e);
                }
            }
        }
        Ok(endpoint)
    }
}

problems!(
    /// What `POST /v1/events/{id}/redeliver` answers besides the event.
    RedeliverProblems = V1_LAYERS + [InvalidRequest, NotFound, PayloadTooLarge, Internal, LedgerUnavailable]
);

/// Queue an event again (scope `operate`).
///
/// A new delivery to every endpoint that takes the event (`{}`), or to the one named
/// (`{"endpoint": name}`); the receiver gets the same `webhook-id`.
#[utoipa::path(
    post, path = "/v1/events/{id}/redeliver", tag = "events", operation_id = "redeliverEvent",
    params(("id" = String, Path, description = "The event id (`evt_…`).")),
    request_body(content = RedeliverBody, content_type = "application/json"),
    responses((status = 202, description = "Queued; the event with its deliveries.", body = EventView), RedeliverProblems),
    security(("bearer" = []))
)]
pub async fn redeliver(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let named = parse_redeliver(&body)?;
    let event = visible_event(&state, &client, id).await?;
    let event = redeliver_event(&state, &event, named).await?;
    Ok((StatusCode::ACCEPTED, Json(event_view(&event, true))).into_response())
}

/// The events of one cancellation, oldest first, each with its deliveries (the console's
/// cancellation page). A cancellation has a handful (one per state it announced, plus none for
/// replays), so the first [`CANCELLATION_EVENTS_SHOWN`] are all of them in practice.
pub(crate) async fn cancellation_events(state: &AppState, cancellation_id: &str) -> Result<Vec<Event>, ApiError> {
    let filter = EventFilter { cancellation_id: Some(cancellation_id.to_owned()), ..EventFilter::default() };
    let page = state.driver.ledger.list_events(&filter, CANCELLATION_EVENTS_SHOWN, None).await.map_err(ledger_error)?;
    let mut events = Vec::with_capacity(page.events.len());
    for listed in page.events.iter().rev() {
        if let Some(event) = state.driver.ledger.get_event(&listed.id).await.map_err(ledger_error)? {
            events.push(event);
        }
    }
    Ok(events)
}

/// How many of a cancellation's events its console page shows.
pub(crate) const CANCELLATION_EVENTS_SHOWN: u32 = 50;

/// Queues `event` again: to the endpoint `named`, or to every configured endpoint that takes it
/// (by `events` and `clients`). The API's redeliver and the console's button both come here.
pub(crate) async fn redeliver_event(state: &AppState, event: &Event, named: Option<String>) -> Result<Event, ApiError> {
    let endpoints: Vec<String> = match named {
        Some(name) => {
            if state.webhooks.endpoint(&name).is_none() {
                return Err(ApiError::invalid("endpoint", "No configured webhook endpoint has this name."));
            }
            vec![name]
        }
        None => {
            let owner = event_client(state, event).await?;
            state
                .webhooks
                .endpoints
                .iter()
                .filter(|e| owner.as_deref().is_some_and(|c| e.takes(&event.kind, c)))
                .map(|e| e.name.clone())
                .collect()
        }
    };
    let stored =
        state.driver.ledger.redeliver(&event.id, endpoints, OffsetDateTime::now_utc()).await.map_err(ledger_error)?;
    stored.ok_or_else(not_found)
}

/// The client whose cancellation (or batch) the event is about: endpoints filter by it.
async fn event_client(state: &AppState, event: &Event) -> Result<Option<String>, ApiError> {
    if let Some(batch_id) = &event.batch_id {
        return Ok(state.driver.ledger.get_batch(batch_id).await.map_err(ledger_error)?.map(|b| b.client));
    }
    match &event.cancellation_id {
        Some(id) => Ok(state.driver.ledger.get(id).await.map_err(ledger_error)?.map(|r| r.client)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redeliver_body_is_empty_or_names_one_endpoint() {
        assert_eq!(parse_redeliver(b"").unwrap(), None);
        assert_eq!(parse_redeliver(b" {} ").unwrap(), None);
        assert_eq!(parse_redeliver(br#"{"endpoint": "ops"}"#).unwrap().as_deref(), Some("ops"));
        let refused = [
            (&br#"{"endpoint": "a", "x": 1}"#[..], "x"),
            (br#"{"endpoint": 5}"#, "endpoint"),
            (br#"{"endpoint": "a", "endpoint": "b"}"#, "endpoint"),
            (b"[]", "body"),
            (b"{", "body"),
            (br#"{"endpoint": "a"} x"#, "body"),
        ];
        for (body, param) in refused {
            let e = parse_redeliver(body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn list_query_is_checked() {
        let q = ListQuery::parse(Some("type=cancellation.failed&delivery_status=failed&limit=5")).unwrap();
        assert_eq!((q.limit, q.filter.kind.as_deref()), (5, Some("cancellation.failed")));
        assert_eq!(q.filter.delivery_status, Some(DeliveryStatus::Failed));
        for (query, param) in [
            ("type=nope", "type"),
            ("delivery_status=disabled", "delivery_status"),
            ("limit=0", "limit"),
            ("limit=1&limit=2", "limit"),
            ("foo=1", "foo"),
        ] {
            assert_eq!(
                ListQuery::parse(Some(query)).err().and_then(|e| e.param.clone()).as_deref(),
                Some(param),
                "{query}"
            );
        }
    }
}
