//! Checking a request before anything is recorded, and sending one attempt.

use std::sync::Arc;
use std::time::Duration;

use cancelgate_core::{Account, AttemptContext, CancelRequest};

use crate::registry::{Lookup, ProviderEntry, Registry};
use crate::verdict::AttemptResult;

pub const DEFAULT_ACCOUNT: &str = "default";

/// What a caller asks: cancel `reference` at `provider`, with `account` (else the default one).
#[derive(Debug, Clone, Copy)]
pub struct CancelCommand<'a> {
    pub provider: &'a str,
    pub account: Option<&'a str>,
    pub reference: &'a str,
    pub reason: Option<&'a str>,
    pub language: Option<&'a str>,
}

/// Which provider accounts a caller may use (the facade's authenticated client answers it).
pub trait Grants {
    fn may_use(&self, provider: &str, account: &str) -> bool;
}

impl<T: Grants + ?Sized> Grants for Arc<T> {
    fn may_use(&self, provider: &str, account: &str) -> bool {
        T::may_use(self, provider, account)
    }
}

/// Why a command cannot be sent; found before anything is recorded or sent. The facade turns
/// it into its answer (`gateway/src/edge.rs`); the messages are the answer's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("This provider is disabled on this gateway.")]
    ProviderUnavailable,
    #[error("Unknown provider.")]
    UnknownProvider,
    #[error("Unknown account for this provider.")]
    UnknownAccount,
    #[error("This client may not use this provider account.")]
    Forbidden,
    #[error("The reference does not have the provider's format: {message}.")]
    BadReference { provider: &'static str, message: String },
}

/// A request that passed every check and may be sent upstream.
#[derive(Debug)]
pub struct Prepared {
    pub entry: Arc<ProviderEntry>,
    pub account: Account,
    pub request: CancelRequest,
}

/// Every check that can be made before anything is recorded or sent (SPEC §2, §3).
pub fn prepare<'a>(
    registry: &Registry,
    caller: &impl Grants,
    command: impl Into<CancelCommand<'a>>,
) -> Result<Prepared, PrepareError> {
    let command = command.into();
    let entry = match registry.lookup(command.provider) {
        Lookup::Ready(entry) => entry.clone(),
        Lookup::Unavailable => return Err(PrepareError::ProviderUnavailable),
        Lookup::Unknown => return Err(PrepareError::UnknownProvider),
    };
    let account_name = command.account.unwrap_or(DEFAULT_ACCOUNT);
    let Some(account) = entry.accounts.get(account_name) else {
        return Err(PrepareError::UnknownAccount);
    };
    if !caller.may_use(entry.id(), account_name) {
        return Err(PrepareError::Forbidden);
    }
    let reference = entry
        .adapter
        .parse_reference(command.reference)
        .map_err(|e| PrepareError::BadReference { provider: entry.id(), message: e.to_string() })?;
    let request = CancelRequest {
        reference,
        reason: command.reason.map(str::to_owned),
        language: command.language.map(str::to_owned),
    };
    Ok(Prepared { entry: entry.clone(), account: account.clone(), request })
}

/// One attempt: build, send, classify; the raw response is kept for the record.
pub(crate) async fn attempt(
    prepared: &Prepared,
    context: AttemptContext,
) -> Result<AttemptResult, cancelgate_core::BuildError> {
    let entry = &prepared.entry;
    let http = entry.adapter.build_cancel(&prepared.request, &prepared.account)?;
    match entry.executor.send(entry.adapter.id(), http).await {
        Ok(mut response) => {
            response.body = scrub(response.body, prepared.account.secret_values());
            Ok(AttemptResult::answered(entry.adapter.classify_cancel(&response, context), response))
        }
        Err(error) => Ok(AttemptResult::NoAnswer(error)),
    }
}

/// An upstream that echoes our request would hand our credentials back; they must never reach
/// a record, an answer or a log, so every occurrence is replaced before anything reads the body.
pub fn scrub<'a>(body: bytes::Bytes, secrets: impl Iterator<Item = &'a str>) -> bytes::Bytes {
    const MASK: &[u8] = b"[REDACTED]";
    let mut out: Option<Vec<u8>> = None;
    for secret in secrets.map(str::as_bytes).filter(|s| s.len() >= 4) {
        let current = out.as_deref().unwrap_or(&body);
        if !current.windows(secret.len()).any(|w| w == secret) {
            continue;
        }
        let mut replaced = Vec::with_capacity(current.len());
        let mut i = 0;
        while i < current.len() {
            if current[i..].starts_with(secret) {
                replaced.extend_from_slice(MASK);
                i += secret.len();
            } else {
                replaced.push(current[i]);
                i += 1;
            }
        }
        out = Some(replaced);
    }
    out.map_or(body, bytes::Bytes::from)
}

/// Exponential backoff with full jitter, capped; an upstream `Retry-After` is honoured as a floor.
pub fn backoff(base_ms: u64, max_ms: u64, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let ceiling = base_ms.saturating_mul(1u64 << attempt.min(20)).min(max_ms).max(1);
    let jittered = Duration::from_millis(fastrand::u64(0..=ceiling));
    retry_after.map_or(jittered, |floor| jittered.max(floor.min(Duration::from_millis(max_ms))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_occurrence_of_every_secret() {
        let body = bytes::Bytes::from_static(b"{\"h\":\"Bearer sk_live_1\",\"c\":\"sk_live_1 code42x\"}");
        let out = scrub(body, ["sk_live_1", "code42x"].into_iter());
        assert_eq!(&out[..], b"{\"h\":\"Bearer [REDACTED]\",\"c\":\"[REDACTED] [REDACTED]\"}");
        let clean = bytes::Bytes::from_static(b"nothing here");
        assert_eq!(scrub(clean.clone(), ["sk_live_1"].into_iter()), clean);
    }

    #[test]
    fn backoff_is_capped_and_honours_retry_after() {
        for attempt in 0..40 {
            assert!(backoff(100, 5_000, attempt, None) <= Duration::from_millis(5_000));
        }
        assert!(backoff(100, 5_000, 1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        assert_eq!(backoff(100, 1_000, 1, Some(Duration::from_secs(60))), Duration::from_millis(1_000));
    }
}
