//! The background side of the driver: records left `processing` (a crashed or restarted
//! process, an expired lease) and re-checks that came due are claimed and driven again; records
//! that can no longer be driven are ended; old idempotency keys are swept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_core::{CancelRequest, ErrorCode};
use cancelgate_ledger::{Backend, Final, FinalStatus, Record};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Driver, Job};
use crate::cancel::Prepared;
use crate::context::RequestId;
use crate::failure::Failure;
use crate::registry::Registry;

impl Driver {
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
                    self.spawn(Box::new(Job::of(prepared, &record)), request_id, None);
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
