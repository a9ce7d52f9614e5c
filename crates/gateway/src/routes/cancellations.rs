use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cancelgate_core::ErrorCode;
use cancelgate_ledger::{Begin, LedgerError, ListFilter, NewCancellation, Record, Status as LedgerStatus};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::listing;
use crate::api::{CancelBody, Cancellation, MAX_ACCOUNT_CHARS, ResolutionView, Status, UpstreamSnapshot, rfc3339};
use crate::cancel::{self, Prepared};
use crate::clients::Client;
use crate::driver::{Early, stored_request};
use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::extract::{Caller, IdempotencyKey};
use crate::failure::Failure;
use crate::registry::{Lookup, Registry};
use crate::request_id::RequestId;
use crate::resilience::Shed;
use crate::state::AppState;
use crate::telemetry;

/// `POST /v1/cancellations`.
pub async fn create(
    State(state): State<AppState>,
    Caller(client): Caller,
    key: Option<IdempotencyKey>,
    request_id: axum::Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (body, deadline) = admit_post(&state, &headers, body)?;
    let body = CancelBody::parse(&body)?;
    // A provider id the gateway knows is a safe label even when a later check fails.
    if !matches!(state.registry.lookup(&body.provider), Lookup::Unknown) {
        telemetry::record_provider(&body.provider);
    }
    let prepared = cancel::prepare(&state.registry, &client, &body)?;
    telemetry::record("account", prepared.account.name());
    telemetry::record("reference", prepared.request.reference.as_str());

    let id = format!("can_{}", ulid::Ulid::new());
    let key = key.map(|k| k.as_str().to_owned());
    let begun = begin_one(&state, &client, &body, prepared, key, id, None, &request_id.0, deadline).await;
    let begun = begun.inspect_err(|e| {
        if let Some(id) = &e.cancellation_id {
            telemetry::record("cancellation_id", id);
        }
    })?;
    telemetry::record("cancellation_id", begun.id());
    match begun {
        Begun::Found(record) => Ok(render(&record, true)),
        Begun::Fresh { record, early } => Ok(render(&settle_one(&state, record, early, deadline).await, false)),
    }
}

/// A cancellation once its record is begun.
pub(crate) enum Begun {
    /// Recorded now, its first attempt on its way: [`settle_one`] waits for its early word.
    Fresh { record: Record, early: tokio::sync::oneshot::Receiver<Early> },
    /// Answered by a record stored before (a replay of the key, a reference already cancelled
    /// or in review): nothing was sent.
    Found(Record),
}

impl Begun {
    fn id(&self) -> &str {
        match self {
            Begun::Fresh { record, .. } | Begun::Found(record) => &record.id,
        }
    }
}

/// The single cancel's path from admission to a begun record, for `POST /v1/cancellations` and
/// for each item of a batch alike: load is shed before anything is recorded or sent, the record
/// and its first attempt are stored together on the driver's task (which sends it), and this
/// waits for the ledger only until `deadline`. The record is `id`, an item of `batch_id` if any.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn begin_one(
    state: &AppState,
    client: &Client,
    body: &CancelBody,
    prepared: Prepared,
    idempotency_key: Option<String>,
    id: String,
    batch_id: Option<String>,
    request_id: &RequestId,
    deadline: tokio::time::Instant,
) -> Result<Begun, ApiError> {
    let respond_within = Duration::from_millis(state.settings.limits.respond_within_ms);
    // Load is shed before anything is recorded or sent: nothing was attempted, and under
    // overload the ledger must not be the next thing to fall over.
    let admission = prepared
        .entry
        .guard
        .admit_now()
        .await
        .map_err(|shed| shed_error(shed).with_target(prepared.entry.id(), prepared.request.reference.as_str()))?;

    let now = OffsetDateTime::now_utc();
    let new = NewCancellation {
        id,
        client: client.name.clone(),
        provider: prepared.entry.id().to_owned(),
        account: prepared.account.name().to_owned(),
        reference: prepared.request.reference.as_str().to_owned(),
        idempotency_key,
        fingerprint: body.fingerprint(),
        request: stored_request(&prepared.request, request_id),
        metadata: json!(body.metadata.clone().unwrap_or_default()),
        owner: state.driver.owner.to_string(),
        now,
        lease_until: now + state.driver.ledger.lease(),
        batch_id,
    };
    let (provider, reference) = (prepared.entry.id().to_owned(), prepared.request.reference.as_str().to_owned());
    let target = |e: ApiError| e.with_target(&provider, &reference);
    // The record and its first attempt are stored together (the attempt is sent right after),
    // on the driver's task: this request waits for it only until its deadline.
    let started = state.driver.begin_and_drive(new, prepared, admission, request_id.clone());
    let begin = match tokio::time::timeout_at(deadline, started.begun).await {
        Ok(Ok(begun)) => begun.map_err(|e| target(ledger_error(e)))?,
        Ok(Err(_)) => return Err(target(ApiError::internal("the task recording the request ended without a word"))),
        // Not known to be recorded: a 202 would promise a record that may not exist.
        Err(_) => return Err(target(ledger_too_slow(respond_within))),
    };
    match begin {
        Begin::Fresh(record) => Ok(Begun::Fresh { record, early: started.early }),
        Begin::Replay(record) | Begin::ReferenceNeedsReview(record) | Begin::ReferenceCancelled(record) => {
            Ok(Begun::Found(record))
        }
        Begin::KeyInFlight => Err(target(ApiError::new(
            ErrorCode::RequestInProgress,
            "A request with this idempotency key is still being processed; retry later with the same key.",
        ))
        .with_retry_after(Duration::from_secs(1))),
        Begin::KeyReused => {
            let mut e = ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "This idempotency key was used with another request body.",
            );
            e.param = Some("Idempotency-Key".to_owned());
            Err(target(e))
        }
        Begin::ReferenceBusy(record) => {
            let mut e = target(ApiError::new(
                ErrorCode::RequestInProgress,
                "A cancellation of this reference is already in flight; its result is at the cancellation_id.",
            ))
            .with_retry_after(Duration::from_secs(1));
            e.cancellation_id = Some(record.id);
            Err(e)
        }
    }
}

/// The record to answer a fresh cancellation with, by `deadline`: final if the first attempt
/// settled it in time, else as stored now (a 202 is honest: the record exists durably).
pub(crate) async fn settle_one(
    state: &AppState,
    fresh: Record,
    early: tokio::sync::oneshot::Receiver<Early>,
    deadline: tokio::time::Instant,
) -> Record {
    let record = match tokio::time::timeout_at(deadline, early).await {
        Ok(Ok(Early::Final(record))) => return *record,
        // Going on in the background (or the driver lost the ledger): the record as stored now,
        // if the ledger says so in time.
        Ok(Ok(Early::Background)) | Ok(Err(_)) => tokio::time::timeout_at(deadline, state.driver.ledger.get(&fresh.id))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        // Still in its first attempt, or waiting on the ledger to store its answer: nothing newer
        // than the record as begun is stored.
        Err(_) => None,
    };
    record.unwrap_or(fresh)
}

/// What a cancelling `POST` (one cancel or a batch) checks first: the body as read, its content
/// type (the client's quota was taken before, by the route layer `client_limits::enforce`).
/// Returns the body and the caller's deadline. SPEC §12: a 202 goes out no later than
/// `limits.respond_within_ms` after the request arrived, counted from here, where it has arrived
/// in full (the extractors read its body): a slow upload is the client's time, and must not turn
/// into a 503 that blames the ledger.
pub(super) fn admit_post(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Bytes, tokio::time::Instant), ApiError> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(state.settings.limits.respond_within_ms);
    let body = body.map_err(body_rejection)?;
    check_content_type(headers)?;
    Ok((body, deadline))
}

/// `GET /v1/cancellations/{id}`: the cancellation as stored.
pub async fn get(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let record = super::operate::visible(&state, &client, id).await?;
    Ok((StatusCode::OK, Json(cancellation(&record, false))).into_response())
}

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
                    q.filter.status = Some(ledger_status(status));
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

/// `GET /v1/cancellations`: newest first, cursor-paginated.
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

fn shed_error(shed: Shed) -> ApiError {
    let error = match shed {
        Shed::RateLimited { .. } => {
            ApiError::new(ErrorCode::RateLimited, "The provider's request quota is used up; nothing was sent.")
        }
        Shed::CircuitOpen { .. } => ApiError::new(
            ErrorCode::ProviderUnavailable,
            "The provider is failing; its circuit breaker is open. Nothing was sent.",
        ),
        Shed::Full => ApiError::new(
            ErrorCode::ProviderUnavailable,
            "The provider has as many cancellations in flight as allowed; nothing was sent.",
        ),
        Shed::QuotaStoreUnavailable => ApiError::new(
            ErrorCode::ProviderUnavailable,
            "The provider's shared quota cannot be checked right now (its store is unavailable); nothing was sent.",
        ),
    };
    error.with_retry_after(shed.retry_after())
}

fn ledger_status(s: Status) -> LedgerStatus {
    match s {
        Status::Processing => LedgerStatus::Processing,
        Status::Cancelled => LedgerStatus::Cancelled,
        Status::Failed => LedgerStatus::Failed,
        Status::NeedsReview => LedgerStatus::NeedsReview,
    }
}

pub(super) fn api_status(s: LedgerStatus) -> Status {
    match s {
        LedgerStatus::Processing => Status::Processing,
        LedgerStatus::Cancelled => Status::Cancelled,
        LedgerStatus::Failed => Status::Failed,
        LedgerStatus::NeedsReview => Status::NeedsReview,
    }
}

/// The Cancellation object of a record.
pub fn cancellation(record: &Record, replayed: bool) -> Cancellation {
    let metadata: BTreeMap<String, String> = serde_json::from_value(record.metadata.clone()).unwrap_or_default();
    let upstream = record.upstream.clone().and_then(|u| serde_json::from_value::<UpstreamSnapshot>(u).ok());
    Cancellation {
        id: record.id.clone(),
        object: "cancellation",
        provider: record.provider.clone(),
        account: record.account.clone(),
        reference: record.reference.clone(),
        status: api_status(record.status),
        cancelled_at: record.cancelled_at.map(rfc3339),
        attempts: record.attempts,
        replayed,
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
        error: failure_of(record).map(|e| e.problem()),
        metadata,
        upstream,
        batch_id: record.batch_id.clone(),
        resolution: record.resolution.as_ref().map(|r| ResolutionView {
            by: r.by.clone(),
            at: rfc3339(r.at),
            note: r.note.clone(),
            status: api_status(r.status),
        }),
    }
}

/// The answer a record gives: 200 when cancelled, the stored problem when failed, 202 otherwise.
pub fn render(record: &Record, replayed: bool) -> Response {
    let mut response = render_record(record, replayed);
    if record.status != LedgerStatus::Failed {
        response.extensions_mut().insert(telemetry::Outcome(api_status(record.status).as_str()));
    }
    if let Some(failure) = record.error.as_ref().and_then(Failure::from_stored) {
        response.extensions_mut().insert(failure.code);
    }
    response
}

/// The stored failure of a record, as the facade shows it wherever it appears (the answer that
/// ended the request, its replay, the Cancellation's `error`): located at the record, naming the
/// request that made it. The one place a record's failure becomes a problem.
fn failure_of(record: &Record) -> Option<ApiError> {
    let stored = record.error.as_ref()?;
    let failure = Failure::from_stored(stored).unwrap_or_else(|| {
        tracing::error!(cancellation_id = %record.id, "the stored error of a cancellation cannot be read");
        Failure::new(ErrorCode::Internal, "The stored error of this cancellation cannot be read.")
    });
    let request_id = record.request.get("request_id").and_then(Value::as_str).map(str::to_owned);
    Some(ApiError::located(failure, &record.provider, &record.reference, &record.id, request_id))
}

fn render_record(record: &Record, replayed: bool) -> Response {
    match record.status {
        LedgerStatus::Cancelled => (StatusCode::OK, Json(cancellation(record, replayed))).into_response(),
        LedgerStatus::Failed => {
            let problem = failure_of(record).map(|error| Problem { replayed, ..error.problem() });
            let status =
                record.http_status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, Json(problem)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            if matches!(status.as_u16(), 429 | 503) {
                let seconds = record.upstream.as_ref().and_then(|u| u.get("retry_after_s")).and_then(Value::as_u64);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.unwrap_or(1)));
            }
            response
        }
        LedgerStatus::Processing | LedgerStatus::NeedsReview => {
            let mut response = (StatusCode::ACCEPTED, Json(cancellation(record, replayed))).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/cancellations/{}", record.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// The record was not stored by the caller's deadline: the ledger hangs or crawls. Whether it will
/// still be stored is unknown (the write may yet commit), so the detail promises nothing more than
/// what is true now; a retry with the key finds the record if it was stored meanwhile.
pub(super) fn ledger_too_slow(within: Duration) -> ApiError {
    tracing::error!(
        respond_within_ms = within.as_millis() as u64,
        "the ledger did not record the request in time; answered 503 ledger_unavailable"
    );
    ApiError::new(
        ErrorCode::LedgerUnavailable,
        "The gateway could not record the request in time; nothing has been sent to the provider. Retry later with the same idempotency key: if the request was recorded meanwhile, the retry answers with its cancellation.",
    )
    .with_retry_after(Duration::from_secs(1))
}

/// The ledger failing is never the caller's fault, nor the provider's: `503 ledger_unavailable`
/// when it cannot be reached or cannot write (SPEC §3), else a bug. The log names the cause
/// (the error's message: connection refused, disk full…; never the URL); the caller is told
/// what kind of outage it is, and that nothing was sent.
pub(crate) fn ledger_error(error: LedgerError) -> ApiError {
    match error.outage() {
        Some(outage) => {
            tracing::error!(error = %error, outage = %outage, "the ledger cannot record the request; nothing was sent");
            ApiError::new(
                ErrorCode::LedgerUnavailable,
                format!(
                    "The gateway cannot use its ledger right now ({}); nothing was sent to the provider. Retry later.",
                    outage.describe()
                ),
            )
            .with_retry_after(Duration::from_secs(1))
        }
        None => ApiError::internal(error),
    }
}

pub(super) fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::PayloadTooLarge, "The request body is over the size limit.")
    } else {
        ApiError::invalid(
            "body",
            "The request body could not be read: it was cut, malformed, or did not arrive within the time limit.",
        )
    }
}

/// A body is JSON; a missing content type is tolerated, a different one is a mistake.
pub(super) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(ct) if ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(_) => Err(ApiError::invalid("Content-Type", "Send the body as `application/json`.")),
    }
}
