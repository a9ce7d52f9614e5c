//! `POST /v1/cancellation-batches` and `GET /v1/cancellation-batches/{id}` (SPEC §10): a trip's
//! cancellations in one call. Not atomic (independent providers cannot be): every item is its own
//! durable Cancellation, begun through the single cancel's own path ([`begin_one`]), and the
//! batch reports item by item. Its status is computed from its items whenever it is answered,
//! never stored (see `ledger/src/batch.rs`).
//
// `cancellation_batch.completed` (SPEC §8/§10) is not emitted here, which may have answered 202
// long before: the ledger's event rule emits it in the transaction that ends a batch's last
// item, or seals a batch whose items are all final already (`ledger/src/events.rs`).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use cancelgate_core::ErrorCode;
use cancelgate_ledger::{Batch, BatchBegin, ItemEnd, NewBatch, Record};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::cancellations::{begin_one, cancellation, deadline};
use super::faults::{ledger_error, ledger_too_slow};
use crate::api::{BatchBody, BatchItemView, BatchStatus, CancelBody, CancellationBatch, Status, in_item, rfc3339};
use crate::cancel::{self, Prepared};
use crate::clients::Client;
use crate::driver::Begun;
use crate::error::ApiError;
use crate::extract::{Caller, IdempotencyKey, JsonBody};
use crate::openapi::problems;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::telemetry;

/// What one item is, as answered.
enum ItemState {
    Record(Box<Record>),
    /// Shed (or refused) before anything was recorded: the item's problem.
    Error(Value),
    /// Its record is being begun by the request that created the batch.
    Pending,
}

impl ItemState {
    fn status(&self) -> Status {
        match self {
            ItemState::Record(record) => record.status,
            ItemState::Error(_) => Status::Failed,
            ItemState::Pending => Status::Processing,
        }
    }
}

problems!(
    /// What `POST /v1/cancellation-batches` answers besides a batch: its own checks (body, every
    /// item's provider, account and reference) and the ledger. An item's own refusal or shed is
    /// in the item, not the answer.
    CreateProblems = V1_LAYERS
        + [
            InvalidRequest,
            Forbidden,
            RequestInProgress,
            PayloadTooLarge,
            IdempotencyKeyReused,
            RateLimited,
            Internal,
            ProviderUnavailable,
            LedgerUnavailable,
        ]
);

/// Cancel a trip: up to 50 cancellations, at any providers, in one call.
///
/// Not atomic: every item becomes its own Cancellation (with `batch_id`), validated before
/// anything is recorded, and run concurrently within each provider's limits. An item shed by a
/// limit carries its problem and has no cancellation. `200` when no item is processing, else
/// `202` with `Location` once `limits.respond_within_ms` has passed.
#[utoipa::path(
    post, path = "/v1/cancellation-batches", tag = "cancellations", operation_id = "createCancellationBatch",
    request_body(content = BatchBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "For the batch as a whole: same key, same client and same body replays the batch (as it stands now, `replayed: true`) without sending anything."),
        ("X-Request-Id" = Option<String>, Header, description = "As on `POST /v1/cancellations`."),
    ),
    responses(
        (status = 200, description = "No item is processing: every item is final (or was shed).", body = CancellationBatch),
        (status = 202, description = "Some item is still processing.", body = CancellationBatch,
         headers(("Location" = String, description = "`/v1/cancellation-batches/{id}`: where to read the batch."))),
        CreateProblems,
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Caller(client): Caller,
    key: Option<IdempotencyKey>,
    request_id: axum::Extension<RequestId>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let deadline = deadline(&state);
    let body = BatchBody::parse(&body)?;
    // Every item is checked before anything is recorded or sent (SPEC §10).
    let mut prepared = Vec::with_capacity(body.items.len());
    let mut seen: HashMap<(String, String, String), usize> = HashMap::new();
    for (i, item) in body.items.iter().enumerate() {
        let p = cancel::prepare(&state.registry, &client, item).map_err(|e| in_item(e.into(), i))?;
        let target = (p.entry.id().to_owned(), p.account.name().to_owned(), p.request.reference.as_str().to_owned());
        if let Some(first) = seen.insert(target, i) {
            return Err(ApiError::invalid(
                format!("items[{i}]"),
                format!("This item names the same reservation (provider, account, reference) as items[{first}]."),
            ));
        }
        prepared.push(p);
    }

    let now = OffsetDateTime::now_utc();
    let batch_id = format!("cb_{}", ulid::Ulid::new());
    let item_ids: Vec<String> = (0..prepared.len()).map(|_| format!("can_{}", ulid::Ulid::new())).collect();
    let new = NewBatch {
        id: batch_id.clone(),
        client: client.name.clone(),
        idempotency_key: key.map(|k| k.as_str().to_owned()),
        fingerprint: body.fingerprint(),
        metadata: json!(body.metadata.clone().unwrap_or_default()),
        item_ids: item_ids.clone(),
        owner: state.driver.owner.to_string(),
        now,
        recording_until: now + state.driver.ledger.lease(),
    };
    telemetry::record("cancellation_id", &batch_id);
    let batch = match tokio::time::timeout_at(deadline, state.driver.ledger.begin_batch(new)).await {
        Ok(begin) => begin.map_err(ledger_error)?,
        Err(_) => return Err(ledger_too_slow(Duration::from_millis(state.settings.limits.respond_within_ms))),
    };
    let batch = match batch {
        BatchBegin::Fresh(batch) => batch,
        BatchBegin::Replay(batch) => return Ok(answer(&batch_view(&batch, true), true)),
        BatchBegin::KeyInFlight => {
            return Err(ApiError::new(
                ErrorCode::RequestInProgress,
                "A batch with this idempotency key is still being recorded; retry later with the same key.",
            )
            .with_retry_after(Duration::from_secs(1)));
        }
        BatchBegin::KeyReused => {
            let mut e = ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "This idempotency key was used with another request body.",
            );
            e.param = Some("Idempotency-Key".to_owned());
            return Err(e);
        }
    };

    // Recording runs on a task of its own, so a caller hanging up cannot cut it between an
    // item's record and the batch's seal; the request waits for it.
    let items: Vec<(String, CancelBody, Prepared)> =
        item_ids.into_iter().zip(body.items).zip(prepared).map(|((id, b), p)| (id, b, p)).collect();
    let recording = tokio::spawn(record_items(
        state.clone(),
        client.clone(),
        batch.id.clone(),
        items,
        request_id.0.clone(),
        deadline,
    ));
    let begun = recording.await.map_err(|e| ApiError::internal(format!("recording the batch's items failed: {e}")))?;

    // Every item concurrently, each by the deadline: a batch takes as long as its slowest item.
    let settling: Vec<_> = begun
        .into_iter()
        .map(|item| {
            let state = state.clone();
            tokio::spawn(async move {
                match item {
                    Ok(Begun::Fresh { record, early }) => {
                        ItemState::Record(Box::new(state.driver.settle(record, early, deadline).await))
                    }
                    Ok(Begun::Found(record)) => ItemState::Record(record),
                    Err(error) => ItemState::Error(error.to_json()),
                }
            })
        })
        .collect();
    let mut states = Vec::with_capacity(settling.len());
    for task in settling {
        states.push(task.await.map_err(|e| ApiError::internal(format!("an item's task failed: {e}")))?);
    }
    Ok(answer(&view(&batch, states, false), true))
}

/// Begins every item's record concurrently, then stores in one transaction what became of the
/// items not recorded under their planned id, and seals the batch.
async fn record_items(
    state: AppState,
    client: Arc<Client>,
    batch_id: String,
    items: Vec<(String, CancelBody, Prepared)>,
    request_id: RequestId,
    deadline: tokio::time::Instant,
) -> Vec<Result<Begun, ApiError>> {
    let tasks: Vec<_> = items
        .into_iter()
        .map(|(id, body, prepared)| {
            let (state, client, batch_id, request_id) =
                (state.clone(), client.clone(), batch_id.clone(), request_id.clone());
            let scope = request_id.clone();
            let task = async move {
                let planned = id.clone();
                let begun =
                    begin_one(&state, &client, &body, prepared, None, id, Some(batch_id), &request_id, deadline).await;
                (planned, begun)
            };
            tokio::spawn(cancelgate_engine::context::follow(scope, task))
        })
        .collect();
    let mut begun = Vec::with_capacity(tasks.len());
    let mut ends = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let (planned, result) = match task.await {
            Ok(done) => done,
            Err(e) => (String::new(), Err(ApiError::internal(format!("an item's task failed: {e}")))),
        };
        match &result {
            Ok(Begun::Found(record)) if record.id != planned => {
                ends.push((index, ItemEnd::Cancellation(record.id.clone())));
            }
            Ok(_) => {}
            // Not known to be recorded (the ledger failed or was too slow): the item keeps its
            // planned id, which the batch reports once it exists, or as never recorded.
            Err(e) if e.code == ErrorCode::LedgerUnavailable => {}
            Err(e) => ends.push((index, ItemEnd::Refused { error: e.to_json(), http_status: e.code.http_status() })),
        }
        begun.push(result);
    }
    let owner = state.driver.owner.to_string();
    if let Err(e) = state.driver.ledger.seal_batch(&batch_id, &owner, ends, OffsetDateTime::now_utc()).await {
        // The batch stays "being recorded" until its time is up; it is then answered from its
        // items as they stand (an unrecorded one as never recorded).
        tracing::error!(batch_id = %batch_id, error = %e, "the ledger did not seal the batch");
    }
    begun
}

problems!(
    /// What `GET /v1/cancellation-batches/{id}` answers besides the batch.
    GetProblems = V1_LAYERS + [NotFound, Internal, LedgerUnavailable]
);

/// One batch, each item as it stands now.
#[utoipa::path(
    get, path = "/v1/cancellation-batches/{id}", tag = "cancellations", operation_id = "getCancellationBatch",
    params(("id" = String, Path, description = "The batch id (`cb_…`).")),
    responses((status = 200, description = "The batch.", body = CancellationBatch), GetProblems),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Caller(client): Caller,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("No cancellation batch with this id.");
    let Ok(Path(id)) = id else { return Err(not_found()) };
    if id.len() > 64 {
        return Err(not_found());
    }
    let batch = state.driver.ledger.get_batch(&id).await.map_err(ledger_error)?.ok_or_else(not_found)?;
    // Another client's batch does not exist for this one.
    if batch.client != client.name {
        return Err(not_found());
    }
    telemetry::record("cancellation_id", &batch.id);
    Ok(answer(&batch_view(&batch, false), false))
}

/// A stored batch, each item as it stands now.
pub(crate) fn batch_view(batch: &Batch, replayed: bool) -> CancellationBatch {
    let now = OffsetDateTime::now_utc();
    let recording = batch.is_recording(now);
    let states = batch
        .items
        .iter()
        .map(|item| match (&item.record, &item.error) {
            (Some(record), _) => ItemState::Record(Box::new(record.clone())),
            (None, Some(error)) => ItemState::Error(error.clone()),
            (None, None) if recording => ItemState::Pending,
            (None, None) => ItemState::Error(never_recorded().to_json()),
        })
        .collect();
    view(batch, states, replayed)
}

/// The item whose record the creating request never stored (the ledger failed, or the process
/// stopped first): nothing was sent for it.
fn never_recorded() -> ApiError {
    ApiError::new(
        ErrorCode::LedgerUnavailable,
        "The gateway could not record this item; nothing was sent to the provider. Cancel it again.",
    )
}

fn view(batch: &Batch, states: Vec<ItemState>, replayed: bool) -> CancellationBatch {
    let status = BatchStatus::of(states.iter().map(ItemState::status).collect::<Vec<_>>());
    let mut updated_at = batch.updated_at;
    let items = states
        .into_iter()
        .enumerate()
        .map(|(index, state)| {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            match state {
                ItemState::Record(record) => {
                    updated_at = updated_at.max(record.updated_at);
                    // Answered by a record of another request (a reference cancelled earlier).
                    let replayed = record.batch_id.as_deref() != Some(batch.id.as_str());
                    BatchItemView { index, cancellation: Some(cancellation(&record, replayed)), error: None }
                }
                ItemState::Error(error) => BatchItemView { index, cancellation: None, error: Some(error) },
                ItemState::Pending => BatchItemView { index, cancellation: None, error: None },
            }
        })
        .collect();
    let metadata: BTreeMap<String, String> = serde_json::from_value(batch.metadata.clone()).unwrap_or_default();
    CancellationBatch {
        id: batch.id.clone(),
        object: "cancellation_batch",
        status,
        items,
        metadata,
        replayed,
        created_at: rfc3339(batch.created_at),
        updated_at: rfc3339(updated_at),
    }
}

/// `200` when no item is processing; else (only a POST gets here by its deadline) `202` with
/// `Location`. A `GET` is always `200`: it answers what is stored.
fn answer(batch: &CancellationBatch, created: bool) -> Response {
    if created && batch.status == BatchStatus::Processing {
        let mut response = (StatusCode::ACCEPTED, Json(batch)).into_response();
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/cancellation-batches/{}", batch.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    (StatusCode::OK, Json(batch)).into_response()
}
