//! What callers get back: the Cancellation and CancellationBatch objects, a resolution, the
//! attempts.

use std::collections::BTreeMap;

use cancelgate_ledger::StoredJson;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The status of a cancellation (SPEC §2): the ledger's own type (one for the record and the
/// answer; its `as_str` is both spellings), documented with the ledger's `openapi` feature.
pub use cancelgate_ledger::Status;

/// A [`Status`] as the API spells it.
pub(super) fn status_str<S: serde::Serializer>(status: &Status, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(status.as_str())
}

/// What the provider answered, kept on the cancellation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UpstreamSnapshot {
    /// The provider's HTTP status.
    pub status: u16,
    /// The provider's JSON, verbatim (a string when it was not JSON; secrets scrubbed).
    #[schema(value_type = serde_json::Value)]
    pub body: StoredJson,
}

impl UpstreamSnapshot {
    /// The record's stored `upstream` (`{"status", "body", …}`): its body stays the text it was
    /// stored as, answered as is. `None` when it is not that shape.
    pub fn of_stored(stored: &StoredJson) -> Option<Self> {
        stored.parse().ok()
    }
}

/// The Cancellation object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cancellation {
    #[schema(example = "can_01JD7Q2Z3X4Y5W6V7U8T9S0R1P")]
    pub id: String,
    /// Always `cancellation`.
    #[schema(value_type = String, pattern = "^cancellation$", example = "cancellation")]
    pub object: &'static str,
    pub provider: String,
    pub account: String,
    pub reference: String,
    #[serde(serialize_with = "status_str")]
    pub status: Status,
    /// When the provider cancelled (its own time where it gives one), RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub cancelled_at: Option<String>,
    /// Upstream requests sent for this cancellation.
    pub attempts: u32,
    /// Whether this answer replays an earlier one.
    pub replayed: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The final error of a `failed` cancellation.
    pub error: Option<crate::error::Problem>,
    pub metadata: BTreeMap<String, String>,
    pub upstream: Option<UpstreamSnapshot>,
    /// The batch (`cb_…`, SPEC §10) this cancellation is an item of; null for a single cancel.
    #[schema(example = json!(null))]
    pub batch_id: Option<String>,
    /// How an operator settled it out of `needs_review`; null for a cancellation never resolved.
    pub resolution: Option<ResolutionView>,
}

/// The status of a batch (SPEC §10), from its items: `processing` while any item is; else
/// `needs_review` if any is; else `completed` when every item is cancelled, `failed` when none
/// is, `partially_failed` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Processing,
    NeedsReview,
    Completed,
    Failed,
    PartiallyFailed,
}

impl BatchStatus {
    /// The batch's status from its items' statuses (an item that was never recorded is `failed`).
    pub fn of(items: impl IntoIterator<Item = Status> + Clone) -> Self {
        let any = |s: Status| items.clone().into_iter().any(|x| x == s);
        if any(Status::Processing) {
            BatchStatus::Processing
        } else if any(Status::NeedsReview) {
            BatchStatus::NeedsReview
        } else if items.clone().into_iter().all(|x| x == Status::Cancelled) {
            BatchStatus::Completed
        } else if !any(Status::Cancelled) {
            BatchStatus::Failed
        } else {
            BatchStatus::PartiallyFailed
        }
    }
}

/// One item of a batch: its Cancellation, or (shed by a limit, never recorded) its problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItemView {
    /// The item's position in the request, from 0.
    pub index: u32,
    pub cancellation: Option<Cancellation>,
    /// The item's problem (SPEC §3) when it has no cancellation.
    #[schema(value_type = Option<crate::error::Problem>)]
    pub error: Option<serde_json::Value>,
}

/// The CancellationBatch object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancellationBatch {
    #[schema(example = "cb_01JD7Q2Z3X4Y5W6V7U8T9S0R1P")]
    pub id: String,
    /// Always `cancellation_batch`.
    #[schema(value_type = String, pattern = "^cancellation_batch$", example = "cancellation_batch")]
    pub object: &'static str,
    pub status: BatchStatus,
    pub items: Vec<BatchItemView>,
    pub metadata: BTreeMap<String, String>,
    /// Whether this answer replays an earlier request with the same idempotency key.
    pub replayed: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The latest change of the batch or of any of its items.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An operator's resolution of a cancellation that needed review (SPEC §9).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"by": "ops-desk", "at": "2026-12-01T10:00:00.000Z",
    "note": "Checked with the provider's support: cancelled on their side.", "status": "cancelled"}))]
pub struct ResolutionView {
    /// The client that resolved it.
    pub by: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub note: String,
    /// The status it was resolved to: `cancelled` or `failed`.
    #[serde(serialize_with = "status_str")]
    pub status: Status,
}

/// One upstream attempt of a cancellation, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"n": 1, "started_at": "2026-12-01T10:00:00.000Z", "finished_at": "2026-12-01T10:00:05.001Z",
    "latency_ms": 5001, "outcome": "ambiguous", "http_status": null, "body": null,
    "error": "upstream timeout: no answer within 5000 ms"}))]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub n: u32,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Null while in flight, or for good when the gateway stopped during the attempt.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    pub latency_ms: Option<u64>,
    /// `sent` (no answer recorded), `cancelled`, `refused`, `rate_limited`, `needs_review`,
    /// `ambiguous` (its effect upstream is unknown), `transient` or `not_sent`.
    pub outcome: String,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The provider's answer as recorded (JSON, or a string when it was not JSON), secrets
    /// scrubbed.
    pub body: Option<serde_json::Value>,
    /// Why no answer came (timeout, connection reset…).
    pub error: Option<String>,
}

/// `GET /v1/cancellations/{id}/attempts`: oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptList {
    /// Always `list`.
    #[schema(value_type = String, pattern = "^list$", example = "list")]
    pub object: &'static str,
    pub data: Vec<AttemptView>,
}
