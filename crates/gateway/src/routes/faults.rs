//! What goes wrong around a handler's own job, answered alike by every route: a body that cannot
//! be read, is over the size limit or is not JSON, and a ledger that is down or too slow.

use std::time::Duration;

use axum::extract::rejection::BytesRejection;
use cancelgate_core::ErrorCode;
use cancelgate_ledger::LedgerError;
use http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;

/// The record was not stored by the caller's deadline: the ledger hangs or crawls. Whether it will
/// still be stored is unknown (the write may yet commit), so the detail promises nothing more than
/// what is true now; a retry with the key finds the record if it was stored meanwhile.
pub(crate) fn ledger_too_slow(within: Duration) -> ApiError {
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

pub(crate) fn body_rejection(rejection: BytesRejection) -> ApiError {
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
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(ct) if ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(_) => Err(ApiError::invalid("Content-Type", "Send the body as `application/json`.")),
    }
}
