//! What an attempt comes to for its record, as pure functions: its outcome and the ledger's
//! view of it, the provider's health it shows, the final state a verdict gives, and the verdict
//! a resumed record's recorded attempts already hold.

use std::time::Duration;

use cancelgate_core::{AttemptContext, ErrorCode, HttpResponse, TransportErrorKind};
use cancelgate_ledger::{AttemptResult as AttemptRecord, AttemptRow, Final, FinalStatus, StoredJson};
use serde_json::Value;
use time::OffsetDateTime;

use super::Job;
use crate::attempt_outcome::AttemptOutcome;
use crate::failure::{Failure, UpstreamInfo};
use crate::resilience::Health;
use crate::verdict::{AttemptResult, Unsettled, Verdict, exhausted, no_answer_code};

/// What an attempt says about the provider's health (SPEC §4: only timeouts, resets and
/// 5xx/510 count against it), and how long a provider 429 asks us to stay away.
pub(super) fn health_of(result: &AttemptResult) -> (Health, Option<Duration>) {
    use cancelgate_core::Outcome;
    match result {
        AttemptResult::NoAnswer(_) => (Health::Failure, None),
        AttemptResult::Answered { outcome: Outcome::RateLimited { retry_after, .. }, .. } => {
            (Health::Neutral, Some(retry_after.unwrap_or(Duration::from_secs(1))))
        }
        AttemptResult::Answered { response, .. } if response.status.is_server_error() => (Health::Failure, None),
        AttemptResult::Answered { outcome: Outcome::Fault(_), .. } => (Health::Neutral, None),
        AttemptResult::Answered { .. } => (Health::Success, None),
    }
}

/// The verdict of the record's last attempt when its answer was recorded and was final
/// (re-classified from the stored status and body, in the context of the attempts before it).
/// Resumed after a crash between recording that answer and ending the record, the answer settles
/// it: sending again would repeat a confirmed cancel (SPEC §6), and the provider's "already
/// cancelled" would then read as a refusal.
pub(super) fn recorded_verdict(job: &Job, attempts: &[AttemptRow]) -> Option<Verdict> {
    // Only an answer of this round: the one that put the record in review does not settle it again.
    let settles = |a: &AttemptRow| AttemptOutcome::parse(&a.outcome).is_some_and(AttemptOutcome::settles);
    let last = attempts.last().filter(|a| a.n > job.round_start && settles(a))?;
    let status = last.http_status.and_then(|s| http::StatusCode::from_u16(s).ok())?;
    let body = match &last.body {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(json) => json.to_string(),
    };
    let response = HttpResponse::new(status, body);
    // `ambiguous` is recomputed from every attempt; the last one, settled, adds nothing to it.
    let context = AttemptContext { after_ambiguous: job.ambiguous };
    let outcome = job.prepared.entry.adapter.classify_cancel(&response, context);
    match Verdict::of(AttemptResult::answered(outcome, response)) {
        Verdict::Unsettled(_) => None,
        settled => Some(settled),
    }
}

/// A resumed record whose attempts ran out (SPEC §12: `retry.max_attempts` bounds a record's
/// attempts across restarts, whoever sent them), or whose repetition is unsafe after an ambiguous
/// attempt: settled by the same policy as in [`Driver::run`], from the last recorded attempt,
/// without sending.
pub(super) fn out_of_attempts(job: &Job, attempts: &[AttemptRow]) -> Option<Verdict> {
    let entry = &job.prepared.entry;
    let repeat_unsafe = job.ambiguous && !entry.adapter.capabilities().repeat_cancel_is_safe;
    if job.round_attempts() < entry.settings.retry.max_attempts && !repeat_unsafe {
        return None;
    }
    Some(exhausted(recorded_unsettled(attempts.last()), job.ambiguous))
}

/// What a recorded, unsettled attempt says, as the evidence of the verdict it leads to.
pub(super) fn recorded_unsettled(last: Option<&AttemptRow>) -> Unsettled {
    let Some(last) = last else {
        return Unsettled {
            ambiguous: true,
            code: ErrorCode::UpstreamError,
            detail: "no attempt of this cancellation is recorded".to_owned(),
            upstream: None,
            retry_after: None,
        };
    };
    if last.is_unfinished() {
        // Sent, and the process that sent it stopped before an answer: nothing came in time.
        return Unsettled {
            ambiguous: true,
            code: ErrorCode::UpstreamTimeout,
            detail: format!("attempt {} was sent and no answer was recorded before the gateway stopped", last.n),
            upstream: None,
            retry_after: None,
        };
    }
    let ambiguous = AttemptOutcome::parse(&last.outcome) == Some(AttemptOutcome::Ambiguous);
    match last.http_status {
        Some(status) => Unsettled {
            ambiguous,
            code: ErrorCode::UpstreamError,
            detail: format!("attempt {} was answered HTTP {status}", last.n),
            upstream: Some(UpstreamInfo {
                status,
                code: None,
                message: None,
                body: last.body.clone().unwrap_or(Value::Null),
            }),
            retry_after: None,
        },
        None => {
            let error = last.error.as_deref().unwrap_or("no answer");
            // The stored text is the `TransportError`'s display, "upstream <kind>: <detail>".
            let timeout = format!("upstream {}:", TransportErrorKind::Timeout.as_str());
            let code = if error.starts_with(&timeout) {
                no_answer_code(TransportErrorKind::Timeout)
            } else {
                ErrorCode::UpstreamError
            };
            Unsettled {
                ambiguous,
                code,
                detail: format!("attempt {}: {error}", last.n),
                upstream: None,
                retry_after: None,
            }
        }
    }
}

/// What one attempt came to.
pub(super) fn outcome_of(result: &AttemptResult) -> AttemptOutcome {
    use cancelgate_core::{Effect, Outcome};
    match result {
        AttemptResult::NoAnswer(e) if e.kind.is_ambiguous() => AttemptOutcome::Ambiguous,
        AttemptResult::NoAnswer(_) => AttemptOutcome::NotSent,
        AttemptResult::Answered { outcome, .. } => match outcome {
            Outcome::Cancelled(_) => AttemptOutcome::Cancelled,
            Outcome::Refused(_) => AttemptOutcome::Refused,
            Outcome::RateLimited { .. } => AttemptOutcome::RateLimited,
            Outcome::NeedsReview { .. } => AttemptOutcome::NeedsReview,
            Outcome::Fault(f) if f.effect == Effect::Unknown => AttemptOutcome::Ambiguous,
            Outcome::Fault(_) => AttemptOutcome::Transient,
        },
    }
}

/// The ledger's view of one attempt: its outcome, and the bounded answer.
pub(super) fn attempt_record(result: &AttemptResult, latency: Duration) -> AttemptRecord {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    let finished_at = OffsetDateTime::now_utc();
    match result {
        AttemptResult::NoAnswer(e) => AttemptRecord {
            finished_at,
            latency_ms,
            outcome: outcome_of(result).as_str().to_owned(),
            http_status: None,
            body: None,
            error: Some(e.to_string()),
        },
        AttemptResult::Answered { response, body, .. } => AttemptRecord {
            finished_at,
            latency_ms,
            outcome: outcome_of(result).as_str().to_owned(),
            http_status: Some(response.status.as_u16()),
            body: Some(body.clone()),
            error: None,
        },
    }
}

/// The record's `upstream`: `{"status", "body"}` of the provider's answer (and, for a rate
/// limit, `retry_after_s`), serialized once: written as this text, answered as this text.
pub(super) fn snapshot(upstream: Option<&UpstreamInfo>, retry_after_s: Option<u64>) -> Option<StoredJson> {
    #[derive(serde::Serialize)]
    struct Snapshot<'a> {
        status: u16,
        body: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    }
    // Infallible for these fields (a `Value`'s keys are strings); were it not, the record would
    // keep no snapshot rather than a wrong one, and its `error` still holds the answer.
    upstream.and_then(|u| StoredJson::of(&Snapshot { status: u.status, body: &u.body, retry_after_s }).ok())
}

/// The final state a verdict gives.
pub(super) fn finish(job: &Job, verdict: Verdict) -> Final {
    let now = OffsetDateTime::now_utc();
    match verdict {
        Verdict::Cancelled { cancelled_at, upstream } => Final {
            status: FinalStatus::Cancelled,
            cancelled_at: Some(cancelled_at.unwrap_or(now)),
            error: None,
            upstream: snapshot(upstream.as_ref(), None),
            http_status: 200,
            now,
            recheck_at: None,
        },
        Verdict::NeedsReview(failure) => {
            tracing::warn!(cancellation_id = %job.record_id, code = %failure.code, detail = %failure.detail,
                "cancellation needs review");
            Final {
                status: FinalStatus::NeedsReview,
                cancelled_at: None,
                upstream: snapshot(failure.upstream.as_ref(), None),
                error: Some(failure.to_stored()),
                http_status: 202,
                now,
                recheck_at: None,
            }
        }
        Verdict::RateLimited { retry_after, upstream } => {
            // Kept beside the answer so every answer of the record sends the provider's `Retry-After`.
            let retry_after_s = retry_after.map_or(1, |d| d.as_secs().max(1));
            let snapshot = snapshot(Some(&upstream), Some(retry_after_s));
            let failure = Failure::new(ErrorCode::RateLimited, "The provider's quota is exhausted.")
                .with_upstream(Some(upstream));
            Final {
                status: FinalStatus::Failed,
                cancelled_at: None,
                http_status: 429,
                error: Some(failure.to_stored()),
                upstream: snapshot,
                now,
                recheck_at: None,
            }
        }
        Verdict::Refused(failure) => Final {
            status: FinalStatus::Failed,
            cancelled_at: None,
            http_status: failure.code.http_status(),
            upstream: snapshot(failure.upstream.as_ref(), None),
            error: Some(failure.to_stored()),
            now,
            recheck_at: None,
        },
        // `run` never finishes an unsettled verdict; were it to, the honest state is review.
        Verdict::Unsettled(unsettled) => finish(job, exhausted(unsettled, true)),
    }
}
