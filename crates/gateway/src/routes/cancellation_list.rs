//! `GET /v1/cancellations` (SPEC §2): newest first, cursor-paginated, filtered by the query;
//! the console's list reads through [`list_visible`] too.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use cancelgate_ledger::{LedgerError, ListFilter, Status};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::cancellations::cancellation;
use super::faults::ledger_error;
use super::listing;
use crate::api::{Cancellation, MAX_ACCOUNT_CHARS};
use crate::clients::Client;
use crate::error::ApiError;
use crate::extract::Caller;
use crate::openapi::{CancellationListSchema, problems};
use crate::registry::{Lookup, Registry};
use crate::state::AppState;

/// The query of `GET /v1/cancellations`, every parameter checked: an unknown parameter, one given
/// twice, or a value that can match nothing (an unknown provider, a malformed reference) is a
/// `400` naming it, never a silently empty page. Our own parser and words: a library's
/// message never reaches the caller.
#[derive(Debug)]
struct ListQuery {
    limit: u32,
    starting_after: Option<String>,
    filter: ListFilter,
}

/// The parameters, in the order the listing documents them.
const LIST_PARAMS: [&str; 8] =
    ["limit", "starting_after", "provider", "account", "reference", "status", "created_gte", "created_lt"];

impl ListQuery {
    fn parse(query: Option<&str>, registry: &Registry) -> Result<Self, ApiError> {
        let mut q = ListQuery { limit: listing::DEFAULT_LIMIT, starting_after: None, filter: ListFilter::default() };
        let unknown = "Unknown query parameter: the listing takes limit, starting_after, provider, account, reference, \
                       status, created_gte and created_lt.";
        for (param, value) in listing::params(query, &LIST_PARAMS, unknown)? {
            let invalid = |detail: &str| ApiError::invalid(param, detail);
            match param {
                "limit" => q.limit = listing::limit(&value)?,
                "starting_after" => q.starting_after = Some(value),
                "provider" => {
                    if matches!(registry.lookup(&value), Lookup::Unknown) {
                        return Err(invalid("Unknown provider."));
                    }
                    q.filter.provider = Some(value);
                }
                "account" => {
                    if value.is_empty() || value.chars().count() > MAX_ACCOUNT_CHARS {
                        return Err(ApiError::invalid(
                            param,
                            format!("An account name has 1 to {MAX_ACCOUNT_CHARS} characters."),
                        ));
                    }
                    q.filter.account = Some(value);
                }
                "reference" => {
                    let url_safe = (1..=128).contains(&value.len())
                        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !url_safe {
                        return Err(invalid("A reference has 1 to 128 of `A–Z a–z 0–9 _ -`."));
                    }
                    q.filter.reference = Some(value);
                }
                "status" => {
                    let status = Status::parse(&value).ok_or_else(|| {
                        invalid("Unknown status: one of processing, cancelled, failed, needs_review.")
                    })?;
                    q.filter.status = Some(status);
                }
                // `created_gte`, `created_lt`
                _ => {
                    let time = OffsetDateTime::parse(&value, &Rfc3339)
                        .map_err(|_| ApiError::invalid(param, format!("`{param}` is an RFC 3339 time.")))?;
                    if param == "created_gte" {
                        q.filter.created_gte = Some(time);
                    } else {
                        q.filter.created_lt = Some(time);
                    }
                }
            }
        }
        Ok(q)
    }
}

problems!(
    /// What `GET /v1/cancellations` answers besides a page.
    ListProblems = V1_LAYERS + [InvalidRequest, Internal, LedgerUnavailable]
);

/// List cancellations, newest first.
#[utoipa::path(
    get, path = "/v1/cancellations", tag = "cancellations", operation_id = "listCancellations",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1–100 (default 20)."),
        ("starting_after" = Option<String>, Query, description = "The id of the last cancellation of the previous page."),
        ("provider" = Option<String>, Query),
        ("account" = Option<String>, Query),
        ("reference" = Option<String>, Query),
        ("status" = Option<Status>, Query),
        ("created_gte" = Option<String>, Query, format = DateTime, description = "RFC 3339."),
        ("created_lt" = Option<String>, Query, format = DateTime, description = "RFC 3339."),
        ("X-Request-Id" = Option<String>, Header, description = "As on `POST /v1/cancellations`."),
    ),
    responses((status = 200, description = "One page.", body = CancellationListSchema), ListProblems),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    Caller(client): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (data, has_more) = list_visible(&state, &client, query.as_deref()).await?;
    Ok(Json(json!({"object": "list", "data": data, "has_more": has_more})).into_response())
}

/// One page of the listing `query` asks for (checked as `GET /v1/cancellations` checks it), of
/// the records `client` may see, and whether more follow. The API and the console share it.
pub(crate) async fn list_visible(
    state: &AppState,
    client: &Client,
    query: Option<&str>,
) -> Result<(Vec<Cancellation>, bool), ApiError> {
    let ListQuery { limit, starting_after, filter } = ListQuery::parse(query, &state.registry)?;
    // A client sees the cancellations of the provider accounts it may use. Records it may not
    // see are skipped page by page, so a page is full whenever more visible records exist.
    let mut data = Vec::new();
    let mut cursor = starting_after;
    let has_more = loop {
        let page = state.driver.ledger.list(&filter, limit, cursor.as_deref()).await.map_err(|e| match e {
            LedgerError::UnknownCursor(_) => {
                ApiError::invalid("starting_after", "`starting_after` names no cancellation.")
            }
            other => ledger_error(other),
        })?;
        let mut records = page.records.iter();
        for record in records.by_ref() {
            cursor = Some(record.id.clone());
            if client.may_use(&record.provider, &record.account) {
                data.push(cancellation(record, false));
                if data.len() == limit as usize {
                    break;
                }
            }
        }
        if data.len() == limit as usize {
            // Full: more follow if this page had more records after the last one taken.
            break records.next().is_some() || page.has_more;
        }
        if !page.has_more {
            break false;
        }
    };
    Ok((data, has_more))
}
