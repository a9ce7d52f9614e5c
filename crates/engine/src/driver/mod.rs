//! Drives one cancellation to a final state through the ledger: every attempt is recorded
//! BEFORE it is sent, every answer after; the lease says who may drive; nothing is guessed.
//!
//! The same code serves a caller's request (which may answer 202 and leave it running) and the
//! background loop that resumes records left `processing` by a crashed or restarted process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_core::{AttemptContext, ErrorCode};
use cancelgate_ledger::{
    AttemptNo, AttemptResult as AttemptRecord, Begin, Final, FinalStatus, Ledger, LedgerError, NewCancellation, Record,
    Status,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::attempt_outcome::AttemptOutcome;
use crate::cancel::{Prepared, attempt, backoff};
use crate::context::{self, RequestId};
use crate::failure::Failure;
use crate::resilience::Admission;
use crate::verdict::{Unsettled, Verdict, exhausted};

mod background;
mod begin;
mod settle;

pub use background::{KEY_RETENTION, rebuild, stored_request};
pub use begin::{BeginCommand, BeginError, Begun};
use settle::{attempt_record, finish, health_of, out_of_attempts, recorded_verdict};

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
    /// Drive `job` until it is final, telling `early` (if any) as soon as the caller can be answered;
    /// the status it ended in.
    ///
    /// `job` is boxed: an async fn keeps its arguments in its future beside the futures it awaits,
    /// which keep their own copies (each layer, `run_logged` and the task's block, one more), and
    /// the task lives as long as the cancel, mostly waiting on the provider: ~1.1 KB of copies per
    /// cancel in flight, against 8 bytes each boxed.
    pub async fn run(
        &self,
        mut job: Box<Job>,
        mut early: Option<oneshot::Sender<Early>>,
    ) -> Result<Status, LedgerError> {
        let entry = job.prepared.entry.clone();
        let policy = &entry.settings.retry;
        let lease = self.ledger.lease();
        // Resumed (after a crash, a stop, or a lease taken over) with attempts already sent, by
        // this process or another: what the ledger holds may settle it without sending again.
        if job.started.is_none() && job.round_attempts() > 0 {
            let attempts = Box::pin(self.ledger.attempts(&job.record_id)).await?;
            let settled = recorded_verdict(&job, &attempts)
                .map(|verdict| finish(&job, verdict))
                .or_else(|| out_of_attempts(&job, &attempts).map(|verdict| self.finish_exhausted(&job, verdict)));
            if let Some(fin) = settled {
                let record = Box::pin(self.ledger.finish(&job.record_id, &self.owner, fin)).await?;
                return Ok(hand_over(early, record));
            }
        }
        loop {
            let (admission, n) = match (job.admission.take(), job.started.take()) {
                // The request that began the record started its first attempt with it: send it.
                (Some(admission), Some(n)) => (admission, n),
                (admission, _) => {
                    let just_admitted = admission.is_some();
                    // The waits of a resumed record and of a retry, boxed (as the retry path's below):
                    // inline, the largest would size this future for every first attempt too,
                    // which waits on its provider with none of them (`bench/future-sizes`).
                    let admission = match admission {
                        Some(admission) => admission,
                        None => Box::pin(entry.guard.admit_patiently()).await,
                    };
                    // Renewed once admitted: waiting for room may have taken a while.
                    let now = OffsetDateTime::now_utc();
                    if !just_admitted
                        && !Box::pin(self.ledger.renew_lease(&job.record_id, &self.owner, now + lease)).await?
                    {
                        // Someone else drives it now (or it is final): never two drivers for one record.
                        return Err(LedgerError::LeaseLost { id: job.record_id });
                    }
                    (admission, Box::pin(self.ledger.start_attempt(&job.record_id, &self.owner, now)).await?)
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
                            Box::pin(self.ledger.finish_with_attempt(&job.record_id, &self.owner, n, answer, fin))
                                .await?;
                        return Ok(hand_over(early, record));
                    } else {
                        Box::pin(self.ledger.finish_attempt(&job.record_id, n, answer)).await?;
                        if let Some(tx) = early.take() {
                            let _ = tx.send(Early::Background);
                        }
                        self.pause(&job, &unsettled).await;
                        // The budget is asked when the retry is due, and only then: it is spent only
                        // by a retry that happens. A refusal defers the retry, it never ends the record.
                        Box::pin(self.await_retry_budget(&job)).await?;
                        continue;
                    }
                }
                final_verdict => final_verdict,
            };
            // The answer that settles the record and the record's end: one commit.
            let fin = finish(&job, verdict);
            // Boxed: the answer and the end it stores make this the largest of `run`'s waits, and
            // inline it would size this future (alive for the whole cancel, mostly waiting on the
            // provider) by it.
            let record = Box::pin(self.ledger.finish_with_attempt(&job.record_id, &self.owner, n, answer, fin)).await?;
            return Ok(hand_over(early, record));
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
                tracing::info!(cancellation_id = %job.record_id, recheck_at = %crate::rfc3339(at),
                    "needs review; an automatic re-check is scheduled");
            }
        }
        fin
    }

    /// An operator's retry of a record the ledger put back to `processing` for this process
    /// ([`Ledger::retry`]): driven on its own task, like any resumed record.
    pub fn drive_again(&self, prepared: Prepared, record: &Record, request_id: RequestId) {
        self.spawn(Box::new(Job::of(prepared, record)), request_id, None);
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
    pub fn spawn(&self, job: Box<Job>, request_id: RequestId, early: Option<oneshot::Sender<Early>>) {
        let driver = self.clone();
        tokio::spawn(context::follow(request_id, async move { driver.run_logged(job, early).await }));
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
        // Boxed: the task keeps what it captured for its whole life, a cancel's wait on its
        // provider included.
        let (new, kept) = (Box::new(new), Box::new((prepared, admission)));
        tokio::spawn(context::follow(request_id, async move {
            // In a block of its own, so the begun record (~0.5 KB) is not kept across the drive.
            let (job, waiting) = {
                let fresh = match driver.ledger.begin_with_attempt(*new).await {
                    Ok(Begin::Fresh(record)) => record,
                    // Nothing to drive; the admission is dropped unused (nothing was sent).
                    other => {
                        let _ = begun_tx.send(other);
                        return;
                    }
                };
                let (prepared, admission) = *kept;
                prepared.entry.guard.deposit();
                let job = Box::new(Job {
                    prepared,
                    record_id: fresh.id.clone(),
                    attempts: fresh.attempts,
                    // The attempt just started is the first: nothing before it may have reached the provider.
                    ambiguous: false,
                    admission: Some(admission),
                    started: Some(fresh.attempts),
                    round_start: 0,
                    rechecks: 0,
                });
                (job, begun_tx.send(Ok(Begin::Fresh(fresh))).is_ok())
            };
            if !waiting {
                tracing::warn!(cancellation_id = %job.record_id,
                    "recorded after the request stopped waiting for the ledger; driving it all the same");
            }
            driver.run_logged(job, waiting.then_some(early_tx)).await;
        }));
        Started { begun, early }
    }

    async fn run_logged(&self, job: Box<Job>, early: Option<oneshot::Sender<Early>>) {
        let id = job.record_id.clone();
        match self.run(job, early).await {
            Ok(status) => tracing::info!(cancellation_id = %id, %status, "cancellation final"),
            Err(LedgerError::LeaseLost { .. }) => {
                tracing::info!(cancellation_id = %id, "another driver holds this cancellation")
            }
            Err(e) => tracing::error!(cancellation_id = %id, error = %e,
                "ledger failed while driving; the cancellation stays processing and is resumed once its lease expires"),
        }
    }
}

/// The final record to the request waiting for it, if one still is (moved, not copied); its status.
fn hand_over(early: Option<oneshot::Sender<Early>>, record: Record) -> Status {
    let status = record.status;
    if let Some(tx) = early {
        let _ = tx.send(Early::Final(Box::new(record)));
    }
    status
}

/// How soon a retry the budget refused asks again, and the longest it waits between two asks:
/// the budget's window moves on by the second, so asking more often finds nothing new.
const BUDGET_RECHECK_FIRST: Duration = Duration::from_millis(100);
const BUDGET_RECHECK_MAX: Duration = Duration::from_secs(1);
