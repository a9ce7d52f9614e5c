//! Drives one cancellation to a final state through the ledger: every attempt is recorded
//! BEFORE it is sent, every answer after; the lease says who may drive; nothing is guessed.
//!
//! The same code serves a caller's request (which may answer 202 and leave it running) and the
//! background loop that resumes records left `processing` by a crashed or restarted process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_core::{AttemptContext, CancelRequest, ErrorCode, HttpResponse, TransportErrorKind};
use cancelgate_ledger::{
    AttemptNo, AttemptResult as AttemptRecord, AttemptRow, Backend, Begin, Final, FinalStatus, Ledger, LedgerError,
    NewCancellation, Record,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::attempt_outcome::AttemptOutcome;
use crate::cancel::{Prepared, attempt, backoff};
use crate::failure::{Failure, UpstreamInfo};
use crate::registry::Registry;
use crate::request_id::{self, RequestId};
use crate::resilience::{Admission, Health};
use crate::verdict::{AttemptResult, Unsettled, Verdict, exhausted, no_answer_code};

/// Who this process is, as a lease holder.
pub fn new_owner_id() -> Arc<str> {
    Arc::from(format!("gw_{}", ulid::Ulid::new()))
}

/// What the driver tells the request that started it, at most once.
#[derive(Debug)]
pub enum Early {
    /// Final: answer with this record.
    Final(Box<Record>),
    /// Another attempt will follow later: answer 202 now, the driver goes on in the background.
    Background,
}

/// What the request that began a record hears from [`Driver::begin_and_drive`].
#[derive(Debug)]
pub struct Started {
    /// What the ledger decided for the new request (or why it could not), once it did.
    pub begun: oneshot::Receiver<Result<Begin, LedgerError>>,
    /// For a fresh record: the driver's early word. Dropped unsent when the ledger fails.
    pub early: oneshot::Receiver<Early>,
}

/// One record to drive.
#[derive(Debug)]
pub struct Job {
    pub prepared: Prepared,
    pub record_id: String,
    /// Attempts already sent for this record (by any process).
    pub attempts: u32,
    /// Whether an earlier attempt may have reached the provider.
    pub ambiguous: bool,
    /// Leave for the first attempt, taken by the request that admitted it (fail-fast path).
    pub admission: Option<Admission>,
    /// The attempt [`Ledger::begin_with_attempt`] started with the record: the first one sent,
    /// with no `start_attempt` of its own.
    pub started: Option<AttemptNo>,
    /// Attempts sent before this round ([`Record::round_start`]): a record driven again out of
    /// review has a round of `retry.max_attempts` of its own, and the earlier attempts' answers
    /// do not settle it.
    pub round_start: u32,
    /// Automatic re-checks already taken ([`Record::rechecks`]): which delay of
    /// `review_recheck_s` schedules the next.
    pub rechecks: u32,
}

impl Job {
    /// The job of a record claimed from the ledger (resumed, retried or re-checked).
    fn of(prepared: Prepared, record: &Record) -> Job {
        Job {
            prepared,
            record_id: record.id.clone(),
            attempts: record.attempts,
            ambiguous: record.ambiguous,
            admission: None,
            started: None,
            round_start: record.round_start,
            rechecks: record.rechecks,
        }
    }

    /// Attempts sent in this round.
    fn round_attempts(&self) -> u32 {
        self.attempts.saturating_sub(self.round_start)
    }
}

#[derive(Debug, Clone)]
pub struct Driver {
    pub ledger: Ledger,
    pub owner: Arc<str>,
}

impl Driver {
    /// Drive `job` until it is final, telling `early` (if any) as soon as the caller can be answered.
    pub async fn run(&self, mut job: Job, mut early: Option<oneshot::Sender<Early>>) -> Result<Record, LedgerError> {
        let entry = job.prepared.entry.clone();
        let policy = &entry.settings.retry;
        let lease = self.ledger.lease();
        // Resumed (after a crash, a stop, or a lease taken over) with attempts already sent, by
        // this process or another: what the ledger holds may settle it without sending again.
        if job.started.is_none() && job.round_attempts() > 0 {
            let attempts = self.ledger.attempts(&job.record_id).await?;
            let settled = recorded_verdict(&job, &attempts)
                .map(|verdict| finish(&job, verdict))
                .or_else(|| out_of_attempts(&job, &attempts).map(|verdict| self.finish_exhausted(&job, verdict)));
            if let Some(fin) = settled {
                let record = self.ledger.finish(&job.record_id, &self.owner, fin).await?;
                if let Some(tx) = early.take() {
                    let _ = tx.send(Early::Final(Box::new(record.clone())));
                }
                return Ok(record);
            }
        }
        loop {
            let (admission, n) = match (job.admission.take(), job.started.take()) {
                // The request that began the record started its first attempt with it: send it.
                (Some(admission), Some(n)) => (admission, n),
                (admission, _) => {
                    let just_admitted = admission.is_some();
                    let admission = match admission {
                        Some(admission) => admission,
                        None => entry.guard.admit_patiently().await,
                    };
                    // Renewed once admitted: waiting for room may have taken a while.
                    let now = OffsetDateTime::now_utc();
                    if !just_admitted && !self.ledger.renew_lease(&job.record_id, &self.owner, now + lease).await? {
                        // Someone else drives it now (or it is final): never two drivers for one record.
                        return Err(LedgerError::LeaseLost { id: job.record_id });
                    }
                    (admission, self.ledger.start_attempt(&job.record_id, &self.owner, now).await?)
                }
            };
            job.attempts = n;
            let started = Instant::now();
            let context = AttemptContext { after_ambiguous: job.ambiguous };
            let (answer, verdict) = match attempt(&job.prepared, context).await {
                Ok(result) => {
                    let latency = started.elapsed();
                    let (health, provider_429) = health_of(&result);
                    admission.record(health, Some(latency), provider_429);
                    let answer = attempt_record(&result, latency);
                    let answer = crate::telemetry::upstream_attempt(entry.id(), &job.record_id, n, latency, answer);
                    (answer, Verdict::of(result))
                }
                Err(build_error) => {
                    // Nothing was sent: the account cannot be used. Final, not ambiguous.
                    let answer = AttemptRecord {
                        finished_at: OffsetDateTime::now_utc(),
                        latency_ms: 0,
                        outcome: AttemptOutcome::NotSent.as_str().to_owned(),
                        http_status: None,
                        body: None,
                        error: Some(build_error.to_string()),
                    };
                    let failure = Failure::new(
                        ErrorCode::ProviderMisconfigured,
                        format!("The provider account cannot be used: {build_error}."),
                    );
                    (answer, Verdict::Refused(failure))
                }
            };
            let verdict = match verdict {
                Verdict::Unsettled(unsettled) => {
                    job.ambiguous |= unsettled.ambiguous;
                    let repeat_unsafe = job.ambiguous && !entry.adapter.capabilities().repeat_cancel_is_safe;
                    if job.round_attempts() >= policy.max_attempts || repeat_unsafe {
                        let fin = self.finish_exhausted(&job, exhausted(unsettled, job.ambiguous));
                        let record =
                            self.ledger.finish_with_attempt(&job.record_id, &self.owner, n, answer, fin).await?;
                        if let Some(tx) = early.take() {
                            let _ = tx.send(Early::Final(Box::new(record.clone())));
                        }
                        return Ok(record);
                    } else {
                        self.ledger.finish_attempt(&job.record_id, n, answer).await?;
                        if let Some(tx) = early.take() {
                            let _ = tx.send(Early::Background);
                        }
                        self.pause(&job, &unsettled).await;
                        // The budget is asked when the retry is due, and only then: it is spent only
                        // by a retry that happens. A refusal defers the retry, it never ends the record.
                        self.await_retry_budget(&job).await?;
                        continue;
                    }
                }
                final_verdict => final_verdict,
            };
            // The answer that settles the record and the record's end: one commit.
            let fin = finish(&job, verdict);
            let record = self.ledger.finish_with_attempt(&job.record_id, &self.owner, n, answer, fin).await?;
            if let Some(tx) = early.take() {
                let _ = tx.send(Early::Final(Box::new(record.clone())));
            }
            return Ok(record);
        }
    }

    /// The end a verdict of exhausted attempts gives: a review after an ambiguous attempt is
    /// re-checked on `review_recheck_s` where repeating the cancel is safe (SPEC §9). The schedule
    /// is stored with the record (`recheck_at`), so it survives a restart, and the background
    /// loop of any replica takes it when due.
    fn finish_exhausted(&self, job: &Job, verdict: Verdict) -> Final {
        let mut fin = finish(job, verdict);
        let entry = &job.prepared.entry;
        let capabilities = entry.adapter.capabilities();
        let recheckable = capabilities.repeat_cancel_is_safe && capabilities.repeat_settles_review;
        if fin.status == FinalStatus::NeedsReview && recheckable {
            let delay = usize::try_from(job.rechecks).ok().and_then(|i| entry.settings.review_recheck_s.get(i));
            fin.recheck_at = delay
                .and_then(|s| time::Duration::try_from(Duration::from_secs(*s)).ok())
                .and_then(|d| fin.now.checked_add(d));
            if let Some(at) = fin.recheck_at {
                tracing::info!(cancellation_id = %job.record_id, recheck_at = %crate::api::rfc3339(at),
                    "needs review; an automatic re-check is scheduled");
            }
        }
        fin
    }

    /// An operator's retry of a record the ledger put back to `processing` for this process
    /// ([`Ledger::retry`]): driven on its own task, like any resumed record.
    pub fn drive_again(&self, prepared: Prepared, record: &Record, request_id: RequestId) {
        self.spawn(Job::of(prepared, record), request_id, None);
    }

    async fn pause(&self, job: &Job, unsettled: &Unsettled) {
        let policy = &job.prepared.entry.settings.retry;
        let wait = backoff(policy.backoff_base_ms, policy.backoff_max_ms, job.attempts, unsettled.retry_after);
        tracing::info!(cancellation_id = %job.record_id, attempts = job.attempts, wait_ms = wait.as_millis() as u64,
            ambiguous = unsettled.ambiguous, detail = %unsettled.detail, "attempt unsettled; retrying in the background");
        tokio::time::sleep(wait).await;
    }

    /// Waits until the retry budget allows the retry (SPEC §12: deferred, not dropped).
    ///
    /// The wait is here, in the task that drives the record, rather than a release of the record
    /// to the background loop with a next-attempt time: that loop resumes records without asking
    /// the budget (a resumed record after a crash must not wait on a fresh process's budget), so a
    /// released retry would either skip the budget or be claimed and released again on every poll,
    /// a ledger write per deferred record and second during an outage, when the ledger has the
    /// least to spare. Waiting costs a sleeping task and a timer: no bulkhead permit, no
    /// connection. The lease is renewed meanwhile, so no other replica takes the record over;
    /// should this process die, the record is resumed like any other.
    async fn await_retry_budget(&self, job: &Job) -> Result<(), LedgerError> {
        let guard = &job.prepared.entry.guard;
        if guard.withdraw_retry() {
            return Ok(());
        }
        tracing::info!(cancellation_id = %job.record_id, attempts = job.attempts,
            "the retry budget is spent; the retry waits for it (the cancellation stays processing)");
        let lease = self.ledger.lease();
        let renew = || async {
            let until = OffsetDateTime::now_utc() + lease;
            match self.ledger.renew_lease(&job.record_id, &self.owner, until).await? {
                true => Ok(Instant::now()),
                false => Err(LedgerError::LeaseLost { id: job.record_id.clone() }),
            }
        };
        // At once: the attempt and the backoff behind us used most of the lease taken before them.
        let mut renewed = renew().await?;
        let mut wait = BUDGET_RECHECK_FIRST;
        loop {
            // Jittered, so deferred retries do not all ask at the same instant.
            tokio::time::sleep(wait.mul_f64(0.5 + fastrand::f64() / 2.0)).await;
            if guard.withdraw_retry() {
                return Ok(());
            }
            wait = (wait * 2).min(BUDGET_RECHECK_MAX);
            if renewed.elapsed() >= lease / 3 {
                renewed = renew().await?;
            }
        }
    }

    /// Spawn `run` on its own task, in the request id's scope, logging how it ends.
    pub fn spawn(&self, job: Job, request_id: RequestId, early: Option<oneshot::Sender<Early>>) {
        let driver = self.clone();
        tokio::spawn(request_id::scope(request_id, async move { driver.run_logged(job, early).await }));
    }

    /// Records a new request with its first attempt (`begin_with_attempt`) and, when the record
    /// is fresh, drives it, all on a task of its own: the request waits on the channels of
    /// [`Started`] and can stop at its deadline whatever the ledger does (SPEC §12), instead of
    /// awaiting a ledger call that may hang.
    ///
    /// `admission` is the leave the request took for the first attempt; `deposit`ed into the
    /// retry budget only when the record is fresh (a replay calls nobody).
    ///
    /// A begin that completes after the request stopped waiting (it answered `503
    /// ledger_unavailable`, or the caller hung up) is driven all the same: the record exists
    /// durably, `processing`, under the caller's idempotency key, so it must reach an end (a
    /// retry with the key then replays it); failing it instead would store a `503` under the key
    /// for good.
    pub fn begin_and_drive(
        &self,
        new: NewCancellation,
        prepared: Prepared,
        admission: Admission,
        request_id: RequestId,
    ) -> Started {
        let (begun_tx, begun) = oneshot::channel();
        let (early_tx, early) = oneshot::channel();
        let driver = self.clone();
        tokio::spawn(request_id::scope(request_id, async move {
            let fresh = match driver.ledger.begin_with_attempt(new).await {
                Ok(Begin::Fresh(record)) => record,
                // Nothing to drive; the admission is dropped unused (nothing was sent).
                other => {
                    let _ = begun_tx.send(other);
                    return;
                }
            };
            prepared.entry.guard.deposit();
            let job = Job {
                prepared,
                record_id: fresh.id.clone(),
                attempts: fresh.attempts,
                // The attempt just started is the first: nothing before it may have reached the provider.
                ambiguous: false,
                admission: Some(admission),
                started: Some(fresh.attempts),
                round_start: 0,
                rechecks: 0,
            };
            let waiting = begun_tx.send(Ok(Begin::Fresh(fresh))).is_ok();
            if !waiting {
                tracing::warn!(cancellation_id = %job.record_id,
                    "recorded after the request stopped waiting for the ledger; driving it all the same");
            }
            driver.run_logged(job, waiting.then_some(early_tx)).await;
        }));
        Started { begun, early }
    }

    async fn run_logged(&self, job: Job, early: Option<oneshot::Sender<Early>>) {
        let id = job.record_id.clone();
        match self.run(job, early).await {
            Ok(record) => tracing::info!(cancellation_id = %id, status = %record.status, "cancellation final"),
            Err(LedgerError::LeaseLost { .. }) => {
                tracing::info!(cancellation_id = %id, "another driver holds this cancellation")
            }
            Err(e) => tracing::error!(cancellation_id = %id, error = %e,
                "ledger failed while driving; the cancellation stays processing and is resumed once its lease expires"),
        }
    }

    /// Resume records left `processing`: at start on SQLite (one process owns the file, so every
    /// processing record is orphaned), and every `poll` for expired leases (several replicas).
    pub fn spawn_background(&self, registry: Arc<Registry>, poll: Duration) {
        let driver = self.clone();
        tokio::spawn(async move {
            if driver.ledger.backend() == Backend::Sqlite {
                let now = OffsetDateTime::now_utc();
                match driver.ledger.claim_all_processing(&driver.owner, now, driver.ledger.lease()).await {
                    Ok(records) => driver.resume_all(&registry, records).await,
                    Err(e) => tracing::error!(error = %e, "cannot resume processing cancellations at start"),
                }
            }
            let mut sweep_at = Instant::now();
            loop {
                tokio::time::sleep(poll).await;
                let now = OffsetDateTime::now_utc();
                match driver.ledger.claim_due(&driver.owner, now, driver.ledger.lease(), 64).await {
                    Ok(records) => driver.resume_all(&registry, records).await,
                    Err(e) => tracing::warn!(error = %e, "cannot look for cancellations to resume"),
                }
                // Re-checks due: back to processing, leased to this process, and driven like a
                // resumed record (a round of attempts of their own).
                match driver.ledger.claim_rechecks(&driver.owner, now, 64).await {
                    Ok(records) => {
                        for record in &records {
                            tracing::info!(cancellation_id = %record.id, rechecks = record.rechecks,
                                "re-checking a cancellation in review");
                        }
                        driver.resume_all(&registry, records).await
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot look for cancellations to re-check"),
                }
                if sweep_at.elapsed() >= KEY_SWEEP_EVERY {
                    sweep_at = Instant::now();
                    let cutoff = now - KEY_RETENTION;
                    match driver.ledger.sweep_idempotency_keys(cutoff).await {
                        Ok(n) if n > 0 => tracing::info!(swept = n, "idempotency keys older than 24 h removed"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot sweep idempotency keys"),
                    }
                }
            }
        });
    }

    async fn resume_all(&self, registry: &Registry, records: Vec<Record>) {
        for record in records {
            let request_id = record
                .request
                .get("request_id")
                .and_then(Value::as_str)
                .and_then(RequestId::parse)
                .unwrap_or_else(RequestId::generate);
            match rebuild(registry, &record) {
                Ok(prepared) => {
                    tracing::info!(cancellation_id = %record.id, attempts = record.attempts, ambiguous = record.ambiguous,
                        "resuming a processing cancellation");
                    self.spawn(Job::of(prepared, &record), request_id, None);
                }
                Err(error) => self.abandon(&record, *error).await,
            }
        }
    }

    /// A record whose provider or account is gone from the configuration cannot be driven.
    async fn abandon(&self, record: &Record, failure: Failure) {
        // After an ambiguous attempt the provider may have cancelled: review, with why it cannot
        // be driven as its evidence. Otherwise nothing happened upstream: failed.
        let (status, http_status) = if record.ambiguous {
            (FinalStatus::NeedsReview, 202)
        } else {
            (FinalStatus::Failed, failure.code.http_status())
        };
        let fin = Final {
            status,
            cancelled_at: None,
            error: Some(failure.to_stored()),
            upstream: None,
            http_status,
            now: OffsetDateTime::now_utc(),
            recheck_at: None,
        };
        if let Err(e) = self.ledger.finish(&record.id, &self.owner, fin).await {
            tracing::error!(cancellation_id = %record.id, error = %e, "cannot finish an undrivable cancellation");
        }
    }
}

/// How soon a retry the budget refused asks again, and the longest it waits between two asks:
/// the budget's window moves on by the second, so asking more often finds nothing new.
const BUDGET_RECHECK_FIRST: Duration = Duration::from_millis(100);
const BUDGET_RECHECK_MAX: Duration = Duration::from_secs(1);

/// Idempotency keys are kept at least this long (SPEC §2).
pub const KEY_RETENTION: time::Duration = time::Duration::hours(24);
const KEY_SWEEP_EVERY: Duration = Duration::from_secs(600);

/// What is stored to rebuild the upstream request after a crash.
pub fn stored_request(request: &CancelRequest, request_id: &RequestId) -> Value {
    json!({"reason": request.reason, "language": request.language, "request_id": request_id.as_str()})
}

pub fn rebuild(registry: &Registry, record: &Record) -> Result<Prepared, Box<Failure>> {
    let unavailable = |what: &str| {
        Box::new(Failure::new(
            ErrorCode::ProviderMisconfigured,
            format!("The {what} of this cancellation is no longer configured."),
        ))
    };
    let entry = registry.get(&record.provider).ok_or_else(|| unavailable("provider"))?.clone();
    let account = entry.accounts.get(&record.account).ok_or_else(|| unavailable("account"))?.clone();
    let reference = entry.adapter.parse_reference(&record.reference).map_err(|_| unavailable("reference format"))?;
    let text = |k: &str| record.request.get(k).and_then(Value::as_str).map(str::to_owned);
    let request = CancelRequest { reference, reason: text("reason"), language: text("language") };
    Ok(Prepared { entry, account, request })
}

/// What an attempt says about the provider's health (SPEC §4: only timeouts, resets and
/// 5xx/510 count against it), and how long a provider 429 asks us to stay away.
fn health_of(result: &AttemptResult) -> (Health, Option<Duration>) {
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
fn recorded_verdict(job: &Job, attempts: &[AttemptRow]) -> Option<Verdict> {
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
    match Verdict::of(AttemptResult::Answered { outcome, response }) {
        Verdict::Unsettled(_) => None,
        settled => Some(settled),
    }
}

/// A resumed record whose attempts ran out (SPEC §12: `retry.max_attempts` bounds a record's
/// attempts across restarts, whoever sent them), or whose repetition is unsafe after an ambiguous
/// attempt: settled by the same policy as in [`Driver::run`], from the last recorded attempt,
/// without sending.
fn out_of_attempts(job: &Job, attempts: &[AttemptRow]) -> Option<Verdict> {
    let entry = &job.prepared.entry;
    let repeat_unsafe = job.ambiguous && !entry.adapter.capabilities().repeat_cancel_is_safe;
    if job.round_attempts() < entry.settings.retry.max_attempts && !repeat_unsafe {
        return None;
    }
    Some(exhausted(recorded_unsettled(attempts.last()), job.ambiguous))
}

/// What a recorded, unsettled attempt says, as the evidence of the verdict it leads to.
fn recorded_unsettled(last: Option<&AttemptRow>) -> Unsettled {
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
fn outcome_of(result: &AttemptResult) -> AttemptOutcome {
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
fn attempt_record(result: &AttemptResult, latency: Duration) -> AttemptRecord {
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
        AttemptResult::Answered { response, .. } => AttemptRecord {
            finished_at,
            latency_ms,
            outcome: outcome_of(result).as_str().to_owned(),
            http_status: Some(response.status.as_u16()),
            body: Some(response.body_for_record()),
            error: None,
        },
    }
}

fn snapshot(upstream: &Option<UpstreamInfo>) -> Option<Value> {
    upstream.as_ref().map(|u| json!({"status": u.status, "body": u.body}))
}

/// The final state a verdict gives.
fn finish(job: &Job, verdict: Verdict) -> Final {
    let now = OffsetDateTime::now_utc();
    match verdict {
        Verdict::Cancelled { cancelled_at, upstream } => Final {
            status: FinalStatus::Cancelled,
            cancelled_at: Some(cancelled_at.unwrap_or(now)),
            error: None,
            upstream: snapshot(&upstream),
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
                upstream: snapshot(&failure.upstream),
                error: Some(failure.to_stored()),
                http_status: 202,
                now,
                recheck_at: None,
            }
        }
        Verdict::RateLimited { retry_after, upstream } => {
            // Kept beside the answer so every answer of the record sends the provider's `Retry-After`.
            let retry_after_s = retry_after.map_or(1, |d| d.as_secs().max(1));
            let snapshot = json!({"status": upstream.status, "body": upstream.body, "retry_after_s": retry_after_s});
            let failure = Failure::new(ErrorCode::RateLimited, "The provider's quota is exhausted.")
                .with_upstream(Some(upstream));
            Final {
                status: FinalStatus::Failed,
                cancelled_at: None,
                http_status: 429,
                error: Some(failure.to_stored()),
                upstream: Some(snapshot),
                now,
                recheck_at: None,
            }
        }
        Verdict::Refused(failure) => Final {
            status: FinalStatus::Failed,
            cancelled_at: None,
            http_status: failure.code.http_status(),
            upstream: snapshot(&failure.upstream),
            error: Some(failure.to_stored()),
            now,
            recheck_at: None,
        },
        // `run` never finishes an unsettled verdict; were it to, the honest state is review.
        Verdict::Unsettled(unsettled) => finish(job, exhausted(unsettled, true)),
    }
}
