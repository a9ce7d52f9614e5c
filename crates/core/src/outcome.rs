//! What one upstream answer means. Produced by a provider's pure classifier; a refusal is data.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{ErrorCode, RefusalReason};

/// What the gateway knows about earlier attempts of the same cancellation when it reads an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptContext {
    /// An earlier attempt of ours may have reached the provider and cancelled (timeout or reset
    /// after the request was sent, or an unreadable success). "Already cancelled" now is then
    /// most likely our own doing.
    pub after_ambiguous: bool,
}

/// The provider confirmed the cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The provider's own time of cancellation, when its answer carries one; otherwise the
    /// gateway uses its time of the confirming answer.
    pub cancelled_at: Option<OffsetDateTime>,
}

/// A final refusal, in unified terms, with what the provider said kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub reason: Option<RefusalReason>,
    /// A human explanation in the gateway's words.
    pub detail: String,
    /// The provider's own error code, where it has one (e.g. Front Payment's `message`).
    pub upstream_code: Option<String>,
    /// The provider's own message, verbatim.
    pub upstream_message: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, reason: None, detail: detail.into(), upstream_code: None, upstream_message: None }
    }

    pub fn not_cancellable(reason: RefusalReason, detail: impl Into<String>) -> Self {
        Self { reason: Some(reason), ..Self::new(ErrorCode::NotCancellable, detail) }
    }

    pub fn with_upstream(mut self, code: Option<String>, message: Option<String>) -> Self {
        self.upstream_code = code;
        self.upstream_message = message;
        self
    }
}

/// Whether an answer that is neither a confirmation nor a refusal may have cancelled upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The provider failed before acting (5xx/510): repeating the call is as if it never happened.
    NotApplied,
    /// The provider may have cancelled (e.g. a success status with an unreadable body).
    Unknown,
}

/// An answer that is a fault of the upstream, not a business decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFault {
    pub effect: Effect,
    pub detail: String,
    pub upstream_code: Option<String>,
    pub upstream_message: Option<String>,
}

impl UpstreamFault {
    pub fn transient(detail: impl Into<String>) -> Self {
        Self { effect: Effect::NotApplied, detail: detail.into(), upstream_code: None, upstream_message: None }
    }

    pub fn unknown_effect(detail: impl Into<String>) -> Self {
        Self { effect: Effect::Unknown, ..Self::transient(detail) }
    }

    pub fn with_upstream(mut self, code: Option<String>, message: Option<String>) -> Self {
        self.upstream_code = code;
        self.upstream_message = message;
        self
    }
}

/// The meaning of one upstream answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Cancelled(Confirmation),
    /// Final: the provider refused, or the request was wrong (not found, misconfigured, ...).
    Refused(Refusal),
    /// The provider's quota is exhausted (HTTP 429); never retried in the background.
    RateLimited {
        retry_after: Option<Duration>,
        upstream_message: Option<String>,
    },
    /// The provider failed to give a usable answer.
    Fault(UpstreamFault),
    /// The answer cannot tell, on its own, whether the reservation was cancelled by us
    /// (e.g. "already completed" after an ambiguous attempt of ours). Listed for operators.
    NeedsReview {
        detail: String,
        upstream_code: Option<String>,
        upstream_message: Option<String>,
    },
}

impl Outcome {
    pub fn cancelled_at(at: Option<OffsetDateTime>) -> Self {
        Self::Cancelled(Confirmation { cancelled_at: at })
    }
}
