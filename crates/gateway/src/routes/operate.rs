//! Operator actions on one cancellation (SPEC §9): its attempts, and settling it out of
//! `needs_review` by a resolution or a retry. A resolution sends nothing; a retry is driven by the
//! same driver as any cancellation (leases, one upstream cancel in flight per reference).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cancelgate_core::{ErrorCode, RefusalReason};
use cancelgate_ledger::{Record, Resolve, Resolved, ResolvedStatus, Status as LedgerStatus};
use http::StatusCode;
use time::OffsetDateTime;

use super::cancellations::{cancellation, render};
use super::faults::ledger_error;
use crate::api::{AttemptList, AttemptView, Cancellation, ResolveBody, ResolveStatus, parse_empty_body, rfc3339};
use crate::clients::Client;
use crate::driver::rebuild;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody};
use crate::failure::Failure;
use crate::openapi::problems;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::telemetry;

/// The record `id` names, if this client may see it (another client's cancellation on an
/// account this client may not use does not exist for it).
pub(super) async fn visible(
    state: &AppState,
    client: &Client,
    id: Result<Path<String>, PathRejection>,
) -> Result<Record, ApiError> {
    // An id that is not even UTF-8 (`%FF`) names no cancellation either, in the problem shape.
    let Ok(Path(id)) = id else { return Err(ApiError::not_found("No cancellation with this id.")) };
    visible_id(state, client, &id).await
}

/// [`visible`] by the id itself (the console's routes share it with the API's).
pub(crate) async fn visible_id(state: &AppState, client: &Client, id: &str) -> Result<Record, ApiError> {
    let not_found = || ApiError::not_found("No cancellation with this id.");
    if id.len() > 64 {
        return Err(not_found());
    }
    let record = state.driver.ledger.get(id).await.map_err(ledger_error)?.ok_or_else(not_found)?;
    if !client.may_use(&record.provider, &record.account) {
        return Err(not_found());
    }
    telemetry::record_provider(&record.provider);
    telemetry::record("cancellation_id", &record.id);
    Ok(record)
}

fn not_resolvable(record: &Record, detail: &str) -> ApiError {
    let mut e = ApiError::new(ErrorCode::NotResolvable, detail).with_target(&record.provider, &record.reference);
    e.cancellation_id = Some(record.id.clone());
    e
}

problems!(
    /// What `GET /v1/cancellations/{id}/attempts` answers besides the attempts.
    AttemptsProblems = V1_LAYERS + [NotFound, Internal, LedgerUnavailable]
);

/// Every upstream attempt of a cancellation, oldest first (scope `read`).
///
/// Each attempt's outcome, HTTP status, latency and the provider's body as recorded (secrets
/// scrubbed).
#[utoipa::path(
    get, path = "/v1/cancellations/{id}/attempts", tag = "cancellations", operation_id = "listCancellationAttempts",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 200, description = "The attempts, oldest first.", body = AttemptList), AttemptsProblems),
    security(("bearer" = []))
)]
pub async fn attempts(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let record = visible(&state, &client, id).await?;
    let data = attempt_views(&state, &record).await?;
    Ok(Json(AttemptList { object: "list", data }).into_response())
}

/// A record's attempts, oldest first, as the API and the console show them.
pub(crate) async fn attempt_views(state: &AppState, record: &Record) -> Result<Vec<AttemptView>, ApiError> {
    let rows = state.driver.ledger.attempts(&record.id).await.map_err(ledger_error)?;
    Ok(rows
        .into_iter()
        .map(|a| AttemptView {
            n: a.n,
            started_at: rfc3339(a.started_at),
            finished_at: a.finished_at.map(rfc3339),
            latency_ms: a.latency_ms,
            outcome: a.outcome,
            http_status: a.http_status,
            body: a.body,
            error: a.error,
        })
        .collect())
}

problems!(
    /// What the operator actions (`…/resolve`, `…/retry`) answer besides the cancellation: the
    /// body, the record (absent, or not in review) and the ledger.
    ActionProblems = V1_LAYERS + [InvalidRequest, NotFound, NotResolvable, PayloadTooLarge, Internal, LedgerUnavailable]
);

/// Settle a cancellation that needs review (scope `operate`).
///
/// Only from `needs_review`: it becomes `cancelled` (`cancelled_at` now) or `failed`
/// (`error.code` `not_cancellable`, `reason` `resolved_by_operator`, `detail` the note), with
/// `resolution` saying who, when and why. Nothing is sent upstream; `attempts` is unchanged. The
/// same body again answers `200` with the record (`replayed: true`); anything else on a
/// cancellation not in review is `409 not_resolvable`.
#[utoipa::path(
    post, path = "/v1/cancellations/{id}/resolve", tag = "cancellations", operation_id = "resolveCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    request_body(content = ResolveBody, content_type = "application/json"),
    responses((status = 200, description = "Resolved (or a replay of the same resolution).", body = Cancellation), ActionProblems),
    security(("bearer" = []))
)]
pub async fn resolve(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let body = ResolveBody::parse(&body)?;
    let record = visible(&state, &client, id).await?;
    let (record, replayed) = resolve_record(&state, &client, record, body).await?;
    Ok((StatusCode::OK, Json(cancellation(&record, replayed))).into_response())
}

/// Settle `record` (visible to `client`) as `body` says: the record resolved, and whether it
/// was a replay of the same resolution. `POST …/resolve` and the console's form both end here.
pub(crate) async fn resolve_record(
    state: &AppState,
    client: &Client,
    record: Record,
    body: ResolveBody,
) -> Result<(Record, bool), ApiError> {
    let (status, error, http_status) = match body.status {
        ResolveStatus::Cancelled => (ResolvedStatus::Cancelled, None, 200),
        ResolveStatus::Failed => {
            let failure = Failure::new(ErrorCode::NotCancellable, body.note.clone())
                .with_reason(Some(RefusalReason::ResolvedByOperator));
            (ResolvedStatus::Failed, Some(failure.to_stored()), failure.code.http_status())
        }
    };
    let resolve = Resolve {
        by: client.name.clone(),
        note: body.note,
        status,
        error,
        http_status,
        now: OffsetDateTime::now_utc(),
    };
    match state.driver.ledger.resolve(&record.id, resolve).await.map_err(ledger_error)? {
        Resolved::Fresh(record) => {
            tracing::info!(cancellation_id = %record.id, status = %record.status, by = %client.name,
                "cancellation resolved by an operator");
            Ok((record, false))
        }
        Resolved::Replay(record) => Ok((record, true)),
        Resolved::NotInReview(record) => Err(not_resolvable(
            &record,
            match record.resolution {
                Some(_) => "This cancellation is not awaiting review: it was resolved otherwise.",
                None => "This cancellation is not awaiting review.",
            },
        )),
    }
}

/// Drive a cancellation that needs review again (scope `operate`).
///
/// Only from `needs_review` and only where the provider's repeated cancel is safe (chargeapi):
/// the cancellation goes back to `processing` for a new round of attempts, driven in the
/// background; read it for the outcome. Otherwise `409 not_resolvable`. The body is empty or `{}`.
#[utoipa::path(
    post, path = "/v1/cancellations/{id}/retry", tag = "cancellations", operation_id = "retryCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 202, description = "Processing again.", body = Cancellation,
        headers(("Location" = String, description = "`/v1/cancellations/{id}`: where to read the outcome."))),
        ActionProblems),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, PathRejection>,
    request_id: axum::Extension<RequestId>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    parse_empty_body(&body)?;
    let record = visible(&state, &client, id).await?;
    let record = retry_record(&state, &client, record, &request_id.0).await?;
    Ok(render(&record, false))
}

/// Why `record` cannot be retried, if it cannot (the console shows it instead of the button).
pub(crate) fn retry_refusal(state: &AppState, record: &Record) -> Option<ApiError> {
    retry_prepared(state, record).err()
}

fn retry_prepared(state: &AppState, record: &Record) -> Result<crate::cancel::Prepared, ApiError> {
    if record.status != LedgerStatus::NeedsReview {
        return Err(not_resolvable(record, "This cancellation is not awaiting review."));
    }
    let prepared = rebuild(&state.registry, record).map_err(|_| {
        not_resolvable(record, "This cancellation's provider account is no longer configured: resolve it instead.")
    })?;
    let capabilities = prepared.entry.adapter.capabilities();
    if !(capabilities.repeat_cancel_is_safe && capabilities.repeat_settles_review) {
        return Err(not_resolvable(
            record,
            "This cancellation is not awaiting a retry: this provider's answer to a repeated cancel cannot settle a review. Resolve it instead.",
        ));
    }
    Ok(prepared)
}

/// Drive `record` (visible to `client`) again out of review, where its provider allows it: the
/// record as it is now `processing`. `POST …/retry` and the console's button both end here.
pub(crate) async fn retry_record(
    state: &AppState,
    client: &Client,
    record: Record,
    request_id: &RequestId,
) -> Result<Record, ApiError> {
    let prepared = retry_prepared(state, &record)?;
    let owner = state.driver.owner.clone();
    let Some(record) =
        state.driver.ledger.retry(&record.id, &owner, OffsetDateTime::now_utc()).await.map_err(ledger_error)?
    else {
        // Resolved or retried by someone else meanwhile.
        return Err(not_resolvable(&record, "This cancellation is not awaiting review."));
    };
    tracing::info!(cancellation_id = %record.id, by = %client.name, "cancellation retried by an operator");
    state.driver.drive_again(prepared, &record, request_id.clone());
    Ok(record)
}
