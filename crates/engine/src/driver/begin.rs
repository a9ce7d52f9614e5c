//! A cancel command's start, the same for the single cancel and for every item of a batch:
//! admission (load is shed before anything is recorded or sent), the record and its first attempt
//! stored together on the driver's task (which then sends it), and a wait for the ledger bounded
//! by the caller's deadline. Then, for a fresh record, [`Driver::settle`]: its final state if the
//! first attempt settled it in time, else the record as stored (a `202` is honest: it exists).
//! Domain values only: the facade turns a [`BeginError`] into its problem document.

use cancelgate_ledger::{Begin, LedgerError, NewCancellation, Record};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Driver, Early, stored_request};
use crate::cancel::Prepared;
use crate::context::RequestId;
use crate::resilience::Shed;

/// What the caller says about a cancellation beyond its prepared request.
#[derive(Debug, Clone)]
pub struct BeginCommand {
    /// The id the record is stored under (chosen by the caller: a batch stores its items' ids
    /// before any item is begun).
    pub id: String,
    pub client: String,
    pub idempotency_key: Option<String>,
    /// The request's fingerprint: a key used again with another body is refused.
    pub fingerprint: String,
    pub metadata: Value,
    pub batch_id: Option<String>,
}

/// A cancellation once its record is begun.
#[derive(Debug)]
pub enum Begun {
    /// Recorded now, its first attempt on its way: [`Driver::settle`] waits for its early word.
    /// Boxed, as `settle` takes it: the record (~0.5 KB) is kept for the whole wait, and an async
    /// fn keeps an argument twice (the argument and its local).
    Fresh { record: Box<Record>, early: oneshot::Receiver<Early> },
    /// Answered by a record stored before (a replay of the key, a reference already cancelled
    /// or in review): nothing was sent.
    Found(Box<Record>),
}

impl Begun {
    pub fn id(&self) -> &str {
        match self {
            Begun::Fresh { record, .. } => &record.id,
            Begun::Found(record) => &record.id,
        }
    }
}

/// Why a command was not begun. Nothing was sent in any of these cases.
#[derive(Debug)]
pub enum BeginError {
    /// Shed by the provider's quota, breaker or bulkhead before anything was recorded.
    Shed(Shed),
    /// The ledger could not take the record.
    Ledger(LedgerError),
    /// The task recording the request ended without a word (it panicked).
    Lost,
    /// Not known to be recorded by the deadline: a `202` would promise a record that may not exist.
    TooSlow,
    /// A request with this idempotency key is still being processed.
    KeyInFlight,
    /// The idempotency key was used with another request body.
    KeyReused,
    /// A cancellation of this reference is in flight: its record.
    ReferenceBusy(Box<Record>),
}

impl Driver {
    /// Admits, records and starts `command` for `prepared`, waiting for the ledger until
    /// `deadline`.
    pub async fn begin(
        &self,
        prepared: Prepared,
        command: BeginCommand,
        request_id: &RequestId,
        deadline: Instant,
    ) -> Result<Begun, BeginError> {
        // Load is shed before anything is recorded or sent: nothing was attempted, and under
        // overload the ledger must not be the next thing to fall over.
        let admission = prepared.entry.guard.admit_now().await.map_err(BeginError::Shed)?;
        let now = OffsetDateTime::now_utc();
        let new = NewCancellation {
            id: command.id,
            client: command.client,
            provider: prepared.entry.id().to_owned(),
            account: prepared.account.name().to_owned(),
            reference: prepared.request.reference.as_str().to_owned(),
            idempotency_key: command.idempotency_key,
            fingerprint: command.fingerprint,
            request: stored_request(&prepared.request, request_id),
            metadata: command.metadata,
            owner: self.owner.to_string(),
            now,
            lease_until: now + self.ledger.lease(),
            batch_id: command.batch_id,
        };
        // The record and its first attempt are stored together (the attempt is sent right after),
        // on the driver's task: this waits for it only until the deadline.
        let started = self.begin_and_drive(new, prepared, admission, request_id.clone());
        let begin = match tokio::time::timeout_at(deadline, started.begun).await {
            Ok(Ok(begun)) => begun.map_err(BeginError::Ledger)?,
            Ok(Err(_)) => return Err(BeginError::Lost),
            Err(_) => return Err(BeginError::TooSlow),
        };
        match begin {
            Begin::Fresh(record) => Ok(Begun::Fresh { record: Box::new(record), early: started.early }),
            Begin::Replay(record) | Begin::ReferenceNeedsReview(record) | Begin::ReferenceCancelled(record) => {
                Ok(Begun::Found(Box::new(record)))
            }
            Begin::KeyInFlight => Err(BeginError::KeyInFlight),
            Begin::KeyReused => Err(BeginError::KeyReused),
            Begin::ReferenceBusy(record) => Err(BeginError::ReferenceBusy(Box::new(record))),
        }
    }

    /// The record to answer a fresh cancellation with, by `deadline`: final if the first attempt
    /// settled it in time, else as stored now (a 202 is honest: the record exists durably).
    pub async fn settle(&self, fresh: Box<Record>, early: oneshot::Receiver<Early>, deadline: Instant) -> Record {
        let record = match tokio::time::timeout_at(deadline, early).await {
            Ok(Ok(Early::Final(record))) => return *record,
            // Going on in the background (or the driver lost the ledger): the record as stored
            // now, if the ledger says so in time.
            Ok(Ok(Early::Background)) | Ok(Err(_)) => {
                // Boxed: inline, this read would size the wait for the first attempt's answer.
                Box::pin(tokio::time::timeout_at(deadline, self.ledger.get(&fresh.id)))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
            }
            // Still in its first attempt, or waiting on the ledger to store its answer: nothing
            // newer than the record as begun is stored.
            Err(_) => None,
        };
        record.unwrap_or(*fresh)
    }
}
