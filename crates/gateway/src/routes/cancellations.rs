//! `POST /v1/cancellations` and `GET /v1/cancellations/{id}` (SPEC §2): the single cancel's path
//! from admission to a begun record (which each item of a batch takes too), and a record as the
//! API shows it (the Cancellation object, or the answer a record gives).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cancelgate_core::ErrorCode;
use cancelgate_ledger::{Record, Status};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use super::faults::{ledger_error, ledger_too_slow};
use crate::api::{CancelBody, Cancellation, ResolutionView, UpstreamSnapshot, rfc3339};
use crate::cancel::{self, Prepared};
use crate::clients::Client;
use crate::driver::{BeginCommand, BeginError, Begun};
use crate::error::{ApiError, PROBLEM_JSON, Problem};
use crate::extract::{Caller, IdempotencyKey, JsonBody};
use crate::failure::Failure;
use crate::openapi::problems;
use crate::registry::Lookup;
use crate::request_id::RequestId;
use crate::resilience::Shed;
use crate::state::AppState;
use crate::telemetry;

problems!(
    /// What `POST /v1/cancellations` answers besides a cancellation: its own checks (body,
    /// provider, account, reference), the ledger, the load shed, and the provider's answer.
    CreateProblems = V1_LAYERS
        + [
            InvalidRequest,
            Forbidden,
            NotFound,
            AlreadyCancelled,
            NotCancellable,
            RequestInProgress,
            PayloadTooLarge,
            IdempotencyKeyReused,
            UpstreamRejected,
            RateLimited,
            Internal,
            UpstreamError,
            ProviderMisconfigured,
            ProviderUnavailable,
            LedgerUnavailable,
            UpstreamTimeout,
        ]
);

/// Cancel a reservation or booking.
///
/// Answers `200` when the provider confirmed, `202` (`processing` or `needs_review`) when the
/// outcome is not confirmed yet, otherwise a problem. Every authenticated, valid request
/// creates a ledger record, refusals included.
#[utoipa::path(
    post, path = "/v1/cancellations", tag = "cancellations", operation_id = "createCancellation",
    request_body(content = CancelBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "Same key, same client and same body: the stored answer is replayed (1–255 printable ASCII). A replay's `X-Request-Id` header is this request's; its body keeps the original `request_id`."),
        ("X-Request-Id" = Option<String>, Header,
         description = "Echoed, sent upstream and logged when 1–128 of `A–Z a–z 0–9 - _ . : / + =`; any other value is replaced by a generated id."),
        ("traceparent" = Option<String>, Header,
         description = "W3C trace context; forwarded upstream when well formed, ignored otherwise."),
    ),
    responses(
        (status = 200, description = "Cancelled: the provider confirmed (or a replay of an earlier confirmation).", body = Cancellation),
        (status = 202, description = "Accepted, not confirmed: `processing` (driven in the background) or `needs_review`.",
         body = Cancellation, headers(("Location" = String, description = "`/v1/cancellations/{id}`: where to read the outcome."))),
        CreateProblems,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(client): Caller,
    key: Option<IdempotencyKey>,
    request_id: axum::Extension<RequestId>,
    JsonBody(raw): JsonBody,
) -> Result<Response, ApiError> {
    let deadline = deadline(&state);
    // In a block of its own, the raw body dropped once parsed: what the request said is not kept
    // for the wait on the provider, which is most of a cancel's life.
    let settling = {
        let body = CancelBody::parse(&raw)?;
        drop(raw);
        // A provider id the gateway knows is a safe label even when a later check fails.
        if !matches!(state.registry.lookup(&body.provider), Lookup::Unknown) {
            telemetry::record_provider(&body.provider);
        }
        let prepared = cancel::prepare(&state.registry, &client, &body)?;
        telemetry::record("account", prepared.account.name());
        telemetry::record("reference", prepared.request.reference.as_str());

        let id = format!("can_{}", ulid::Ulid::new());
        let key = key.map(|k| k.as_str().to_owned());
        // Boxed, and the begun record moved into the settle before its wait: this future lives as
        // long as the cancel (mostly waiting on the provider), so what it holds only at the start
        // is not kept in it for the whole wait.
        let begun = Box::pin(begin_one(&state, &client, &body, prepared, key, id, None, &request_id.0, deadline)).await;
        let begun = begun.inspect_err(|e| {
            if let Some(id) = &e.cancellation_id {
                telemetry::record("cancellation_id", id);
            }
        })?;
        telemetry::record("cancellation_id", begun.id());
        match begun {
            Begun::Found(record) => return Ok(render(&record, true)),
            Begun::Fresh { record, early } => state.driver.settle(record, early, deadline),
        }
    };
    Ok(render(&settling.await, false))
}

/// The single cancel's start, for `POST /v1/cancellations` and for each item of a batch alike:
/// the engine's [`Driver::begin`](cancelgate_engine::driver::Driver::begin) (admission, the record
/// and its first attempt stored together, a wait bounded by `deadline`), its refusals answered
/// here as problem documents located at the provider and reference. The record is `id`, an item
/// of `batch_id` if any.
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
    let (provider, reference) = (prepared.entry.id().to_owned(), prepared.request.reference.as_str().to_owned());
    let command = BeginCommand {
        id,
        client: client.name.clone(),
        idempotency_key,
        fingerprint: body.fingerprint(),
        metadata: json!(body.metadata.clone().unwrap_or_default()),
        batch_id,
    };
    let respond_within = Duration::from_millis(state.settings.limits.respond_within_ms);
    state
        .driver
        .begin(prepared, command, request_id, deadline)
        .await
        .map_err(|e| begin_error(e, respond_within).with_target(&provider, &reference))
}

/// A command the engine did not begin, as its problem document (nothing was sent in any case).
fn begin_error(error: BeginError, respond_within: Duration) -> ApiError {
    match error {
        BeginError::Shed(shed) => shed_error(shed),
        BeginError::Ledger(e) => ledger_error(e),
        BeginError::Lost => ApiError::internal("the task recording the request ended without a word"),
        BeginError::TooSlow => ledger_too_slow(respond_within),
        BeginError::KeyInFlight => ApiError::new(
            ErrorCode::RequestInProgress,
            "A request with this idempotency key is still being processed; retry later with the same key.",
        )
        .with_retry_after(Duration::from_secs(1)),
        BeginError::KeyReused => {
            let mut e = ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "This idempotency key was used with another request body.",
            );
            e.param = Some("Idempotency-Key".to_owned());
            e
        }
        BeginError::ReferenceBusy(record) => {
            let mut e = ApiError::new(
                ErrorCode::RequestInProgress,
                "A cancellation of this reference is already in flight; its result is at the cancellation_id.",
            )
            .with_retry_after(Duration::from_secs(1));
            e.cancellation_id = Some(record.id);
            e
        }
    }
}

/// The deadline of a cancelling `POST` (one cancel or a batch). SPEC §12: a 202 goes out no
/// later than `limits.respond_within_ms` after the request arrived, counted from here, where it
/// has arrived in full (its [`JsonBody`] was read; the client's quota was taken before, by its
/// `Caller`, `routes::authorize`): a slow upload is the client's time, and must not turn
/// into a 503 that blames the ledger.
pub(super) fn deadline(state: &AppState) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(state.settings.limits.respond_within_ms)
}

problems!(
    /// What `GET /v1/cancellations/{id}` answers besides the cancellation.
    GetProblems = V1_LAYERS + [NotFound, Internal, LedgerUnavailable]
);

/// One cancellation, as stored.
#[utoipa::path(
    get, path = "/v1/cancellations/{id}", tag = "cancellations", operation_id = "getCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 200, description = "The cancellation.", body = Cancellation), GetProblems),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let record = super::operate::visible(&state, &client, id).await?;
    Ok((StatusCode::OK, Json(cancellation(&record, false))).into_response())
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

/// The Cancellation object of a record.
pub fn cancellation(record: &Record, replayed: bool) -> Cancellation {
    let metadata: BTreeMap<String, String> = serde_json::from_value(record.metadata.clone()).unwrap_or_default();
    let upstream = record.upstream.as_ref().and_then(UpstreamSnapshot::of_stored);
    Cancellation {
        id: record.id.clone(),
        object: "cancellation",
        provider: record.provider.clone(),
        account: record.account.clone(),
        reference: record.reference.clone(),
        status: record.status,
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
            status: r.status,
        }),
    }
}

/// The answer a record gives: 200 when cancelled, the stored problem when failed, 202 otherwise.
pub fn render(record: &Record, replayed: bool) -> Response {
    let mut response = render_record(record, replayed);
    if record.status != Status::Failed {
        response.extensions_mut().insert(telemetry::Outcome(record.status.as_str()));
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
        Status::Cancelled => (StatusCode::OK, Json(cancellation(record, replayed))).into_response(),
        Status::Failed => {
            let problem = failure_of(record).map(|error| Problem { replayed, ..error.problem() });
            let status =
                record.http_status.and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = (status, Json(problem)).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
            if matches!(status.as_u16(), 429 | 503) {
                #[derive(serde::Deserialize)]
                struct Kept {
                    retry_after_s: Option<u64>,
                }
                let seconds =
                    record.upstream.as_ref().and_then(|u| u.parse::<Kept>().ok()).and_then(|k| k.retry_after_s);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.unwrap_or(1)));
            }
            response
        }
        Status::Processing | Status::NeedsReview => {
            let mut response = (StatusCode::ACCEPTED, Json(cancellation(record, replayed))).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/v1/cancellations/{}", record.id)) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}
