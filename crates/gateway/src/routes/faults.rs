//! What goes wrong around a handler's own job, answered alike by every route: a ledger that is
//! down or too slow. (A body that cannot be read or is not JSON is `extract::JsonBody`'s.)

use std::time::Duration;

use cancelgate_core::ErrorCode;
use cancelgate_ledger::LedgerError;

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
