use std::fmt;
use std::str::FromStr;

/// The unified error taxonomy (SPEC §3). Every error the gateway answers carries one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyCancelled,
    NotCancellable,
    RequestInProgress,
    NotResolvable,
    PayloadTooLarge,
    MethodNotAllowed,
    IdempotencyKeyReused,
    UpstreamRejected,
    RateLimited,
    Internal,
    UpstreamError,
    ProviderMisconfigured,
    ProviderUnavailable,
    LedgerUnavailable,
    UpstreamTimeout,
}

/// Documentation of one code: what `/errors/{code}` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeDoc {
    pub title: &'static str,
    pub meaning: &'static str,
    pub what_to_do: &'static str,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 19] = [
        Self::InvalidRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::AlreadyCancelled,
        Self::NotCancellable,
        Self::RequestInProgress,
        Self::NotResolvable,
        Self::PayloadTooLarge,
        Self::MethodNotAllowed,
        Self::IdempotencyKeyReused,
        Self::UpstreamRejected,
        Self::RateLimited,
        Self::Internal,
        Self::UpstreamError,
        Self::ProviderMisconfigured,
        Self::ProviderUnavailable,
        Self::LedgerUnavailable,
        Self::UpstreamTimeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::AlreadyCancelled => "already_cancelled",
            Self::NotCancellable => "not_cancellable",
            Self::RequestInProgress => "request_in_progress",
            Self::NotResolvable => "not_resolvable",
            Self::PayloadTooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::UpstreamRejected => "upstream_rejected",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::UpstreamError => "upstream_error",
            Self::ProviderMisconfigured => "provider_misconfigured",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::LedgerUnavailable => "ledger_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::AlreadyCancelled | Self::NotCancellable | Self::RequestInProgress | Self::NotResolvable => 409,
            Self::PayloadTooLarge => 413,
            Self::IdempotencyKeyReused | Self::UpstreamRejected => 422,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::UpstreamError | Self::ProviderMisconfigured => 502,
            Self::ProviderUnavailable | Self::LedgerUnavailable => 503,
            Self::UpstreamTimeout => 504,
        }
    }

    /// Whether the same request may succeed if sent again later, unchanged.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Self::RequestInProgress
                | Self::RateLimited
                | Self::UpstreamError
                | Self::ProviderUnavailable
                | Self::LedgerUnavailable
                | Self::UpstreamTimeout
                | Self::Internal
        )
    }

    pub const fn doc(self) -> CodeDoc {
        let (title, meaning, what_to_do) = match self {
            Self::InvalidRequest => (
                "Invalid request",
                "The request is malformed: bad JSON, a missing or unknown field, an unknown provider or account, or a reference that does not have the provider's format. `param` names the field.",
                "Fix the request; sending it again unchanged will fail the same way.",
            ),
            Self::Unauthorized => (
                "Unauthorized",
                "The `Authorization: Bearer <client key>` header is missing or the key is not known.",
                "Send a valid client key.",
            ),
            Self::Forbidden => (
                "Forbidden",
                "This client may not use that provider or account, or the provider says the booking belongs to another partner.",
                "Use a client key allowed for this provider/account, or check who owns the booking.",
            ),
            Self::NotFound => (
                "Not found",
                "The provider does not know the reference, or there is no such route or cancellation id.",
                "Check the reference and the provider.",
            ),
            Self::AlreadyCancelled => (
                "Already cancelled",
                "The provider says the reservation is already cancelled, and no earlier attempt of this gateway explains it.",
                "Nothing to do: the reservation is cancelled. Find out who cancelled it if that is unexpected.",
            ),
            Self::NotCancellable => (
                "Reservation cannot be cancelled",
                "The provider refuses the cancellation because of the reservation's state, time or policy. `reason` is one of completed, expired, past_check_in, non_refundable, no_cancellation_policy, invalid_state; or resolved_by_operator when an operator settled a cancellation that needed review as failed (`detail` is the operator's note).",
                "Do not retry: the refusal is final. Handle the reservation through the provider's own process.",
            ),
            Self::RequestInProgress => (
                "Request in progress",
                "A request with the same idempotency key, or a cancellation of the same reference, is being processed right now.",
                "Retry later with the same idempotency key: once the first request ends, its final answer is replayed.",
            ),
            Self::NotResolvable => (
                "Not resolvable",
                "This cancellation is not awaiting review: an operator action (resolve, retry) applies only to a cancellation in `needs_review`, and a retry only where the provider allows a repeated cancel.",
                "Read the cancellation: it is already settled (its `resolution` says by whom), still processing, or its provider does not allow a retry; then resolve it instead.",
            ),
            Self::PayloadTooLarge => {
                ("Payload too large", "The request body is over the configured limit.", "Send a smaller body.")
            }
            Self::MethodNotAllowed => (
                "Method not allowed",
                "The route exists but does not accept this method. The `Allow` header lists the methods it does accept.",
                "Use one of the methods in `Allow`.",
            ),
            Self::IdempotencyKeyReused => (
                "Idempotency key reused",
                "This idempotency key was already used by this client with a different request body.",
                "Use a new idempotency key for a different request.",
            ),
            Self::UpstreamRejected => (
                "Rejected by the provider",
                "The provider rejected the request payload as invalid.",
                "Check the request fields sent to the provider (e.g. the reason/note); `upstream` has the provider's answer.",
            ),
            Self::RateLimited => (
                "Rate limited",
                "The client's quota or the provider's quota is exhausted.",
                "Retry after the number of seconds in `Retry-After`.",
            ),
            Self::Internal => (
                "Internal error",
                "A bug in the gateway. Nothing a caller or a provider does should cause it.",
                "Retry later with the same idempotency key and report the `request_id` to the gateway's operators.",
            ),
            Self::UpstreamError => (
                "Upstream error",
                "The provider answered with a server error, or with something the gateway could not understand.",
                "Retry later with the same idempotency key; `upstream` has what the provider answered.",
            ),
            Self::ProviderMisconfigured => (
                "Provider misconfigured",
                "The provider refused the gateway's own credentials (bad API key, invalid connection code).",
                "Tell the gateway's operators: the account's credentials need fixing. Retrying will not help.",
            ),
            Self::ProviderUnavailable => (
                "Provider unavailable",
                "The provider is disabled or its circuit breaker is open after sustained failures, or it is at its concurrency limit.",
                "Retry after the number of seconds in `Retry-After`.",
            ),
            Self::LedgerUnavailable => (
                "Ledger unavailable",
                "The gateway cannot record the request right now (its database is down or unreachable, or its disk is full). Nothing was sent to the provider: a cancellation is never sent before it is recorded.",
                "Retry after the number of seconds in `Retry-After`, with the same idempotency key. The gateway's operators see the cause in its logs and in `/readyz`.",
            ),
            Self::UpstreamTimeout => (
                "Upstream timeout",
                "The provider did not answer in time and the gateway could not keep the cancellation going in the background.",
                "Retry with the same idempotency key; the gateway never sends a second cancel for one request.",
            ),
        };
        CodeDoc { title, meaning, what_to_do }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown error code string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code")]
pub struct UnknownCode;

impl FromStr for ErrorCode {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or(UnknownCode)
    }
}

/// Why a provider refuses to cancel (`reason` of `not_cancellable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    Completed,
    Expired,
    PastCheckIn,
    NonRefundable,
    NoCancellationPolicy,
    InvalidState,
    /// Not the provider's word: an operator resolved a `needs_review` cancellation as failed
    /// (SPEC §9); `detail` is the operator's note.
    ResolvedByOperator,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; 7] = [
        Self::Completed,
        Self::Expired,
        Self::PastCheckIn,
        Self::NonRefundable,
        Self::NoCancellationPolicy,
        Self::InvalidState,
        Self::ResolvedByOperator,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::PastCheckIn => "past_check_in",
            Self::NonRefundable => "non_refundable",
            Self::NoCancellationPolicy => "no_cancellation_policy",
            Self::InvalidState => "invalid_state",
            Self::ResolvedByOperator => "resolved_by_operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_a_doc() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            assert!(!code.doc().title.is_empty());
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(ErrorCode::NotCancellable.http_status(), 409);
        assert_eq!(ErrorCode::UpstreamRejected.http_status(), 422);
        assert_eq!(ErrorCode::ProviderMisconfigured.http_status(), 502);
        assert_eq!(ErrorCode::UpstreamTimeout.http_status(), 504);
        assert_eq!(ErrorCode::LedgerUnavailable.http_status(), 503);
        assert!(ErrorCode::LedgerUnavailable.retryable());
    }
}
