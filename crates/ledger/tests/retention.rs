//! Retention (`ledger.retain_days`), on both backends: final records older than the cutoff go
//! with their attempts, keys, events and deliveries; nothing live, in review, young, of a batch
//! or with a pending delivery is touched.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use cancelgate_ledger::{
    AttemptResult, Batch, BatchBegin, Begin, DeliveryAttempt, DeliveryOutcome, EventFilter, EventRule, Final,
    FinalStatus, Ledger, NewBatch, NewCancellation, NewEvent, Record, Status,
};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use support::Env;

const T0: OffsetDateTime = datetime!(2026-04-01 10:00:00 UTC);
const LEASE: Duration = Duration::from_secs(15);
const A: &str = "replica-a";

fn secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}

/// Every record's end is an event for endpoint `hook`.
#[derive(Debug)]
struct Rule;

impl EventRule for Rule {
    fn for_record(&self, r: &Record) -> Option<NewEvent> {
        (r.status != Status::Processing).then(|| NewEvent {
            id: format!("evt_{}", r.id),
            kind: if r.status == Status::Cancelled { "cancellation.cancelled" } else { "cancellation.failed" }
                .to_owned(),
            cancellation_id: Some(r.id.clone()),
            batch_id: None,
            order_key: r.reference.clone(),
            payload: json!({"id": r.id}).to_string(),
            created_at: r.updated_at,
            endpoints: vec!["hook".to_owned()],
        })
    }

    fn for_batch(&self, _: &Batch) -> Option<NewEvent> {
        None
    }

    fn stored(&self) {}
}

fn new(id: &str, now: OffsetDateTime) -> NewCancellation {
    NewCancellation {
        id: id.to_owned(),
        client: "c1".to_owned(),
        provider: "chargeapi".to_owned(),
        account: "default".to_owned(),
        reference: format!("res_{id}"),
        idempotency_key: Some(format!("key_{id}")),
        fingerprint: format!("fp-{id}"),
        request: json!({"reason": "x"}),
        metadata: json!({}),
        owner: A.to_owned(),
        now,
        lease_until: now + LEASE,
        batch_id: None,
    }
}

fn end(status: FinalStatus, now: OffsetDateTime) -> Final {
    Final {
        status,
        cancelled_at: (status == FinalStatus::Cancelled).then_some(now),
        error: (status != FinalStatus::Cancelled).then(|| json!({"code": "x"})),
        upstream: None,
        http_status: if status == FinalStatus::Cancelled { 200 } else { 502 },
        now,
        recheck_at: None,
    }
}

/// A record begun at `now` with its first attempt, answered and ended as `status` one second later.
async fn ended(l: &Ledger, id: &str, now: OffsetDateTime, status: FinalStatus) -> Record {
    let Begin::Fresh(r) = l.begin_with_attempt(new(id, now)).await.unwrap() else { panic!("not fresh") };
    let answer = AttemptResult {
        finished_at: now + secs(1),
        latency_ms: 5,
        outcome: "cancelled".to_owned(),
        http_status: Some(200),
        body: Some(json!({"ok": true})),
        error: None,
    };
    l.finish_with_attempt(id, A, r.attempts, answer, end(status, now + secs(1))).await.unwrap()
}

/// Delivers every pending delivery of `hook` once.
async fn deliver_all(l: &Ledger, now: OffsetDateTime) {
    let claimed = l.claim_deliveries("d", now, LEASE, 100, None).await.unwrap();
    for d in claimed {
        let attempt =
            DeliveryAttempt { n: 1, at: now, http_status: Some(200), latency_ms: 3, error: None, answer: None };
        assert!(l.record_delivery(d.id, "d", &d.endpoint, attempt, DeliveryOutcome::Delivered).await.unwrap());
    }
}

backend_tests!(
    purge_takes_old_final_records_with_everything_they_own,
    purge_keeps_live_reviewed_young_batched_and_undelivered_records,
    purge_works_in_batches,
);

async fn purge_takes_old_final_records_with_everything_they_own(t: Env) {
    let l = t.ledger.clone().with_events(Arc::new(Rule));
    l.sync_endpoints(vec![("hook".to_owned(), true)], T0).await.unwrap();
    ended(&l, "can_old_1", T0, FinalStatus::Cancelled).await;
    ended(&l, "can_old_2", T0 + secs(10), FinalStatus::Failed).await;
    deliver_all(&l, T0 + secs(20)).await;
    let young = ended(&l, "can_young", T0 + secs(3600), FinalStatus::Cancelled).await;
    deliver_all(&l, T0 + secs(3700)).await;

    assert_eq!(l.purge_final_before(T0 + secs(600), 500).await.unwrap(), 2);
    for id in ["can_old_1", "can_old_2"] {
        assert_eq!(l.get(id).await.unwrap(), None, "{id} purged");
        assert!(l.attempts(id).await.unwrap().is_empty(), "{id}'s attempts purged");
        assert_eq!(l.get_event(&format!("evt_{id}")).await.unwrap(), None, "{id}'s event purged");
    }
    // Its key went with it: the same key and body start afresh instead of replaying a record
    // that no longer exists.
    assert!(matches!(l.begin(new("can_old_1", T0 + secs(7200))).await.unwrap(), Begin::Fresh(_)));
    // The young one, its attempt and its delivered event stay; a second purge finds nothing.
    assert_eq!(l.get("can_young").await.unwrap(), Some(young));
    assert_eq!(l.attempts("can_young").await.unwrap().len(), 1);
    let event = l.get_event("evt_can_young").await.unwrap().expect("young event kept");
    assert_eq!(event.deliveries.len(), 1);
    assert_eq!(event.deliveries[0].attempts.len(), 1);
    assert_eq!(l.purge_final_before(T0 + secs(600), 500).await.unwrap(), 0);
    let filter = EventFilter::default();
    assert_eq!(l.list_events(&filter, 10, None).await.unwrap().events.len(), 1);
}

async fn purge_keeps_live_reviewed_young_batched_and_undelivered_records(t: Env) {
    let l = t.ledger.clone().with_events(Arc::new(Rule));
    l.sync_endpoints(vec![("hook".to_owned(), true)], T0).await.unwrap();
    // Old but processing.
    let Begin::Fresh(live) = l.begin(new("can_live", T0)).await.unwrap() else { panic!() };
    // Old but in review.
    let Begin::Fresh(_) = l.begin(new("can_review", T0)).await.unwrap() else { panic!() };
    let review = Final { recheck_at: None, ..end(FinalStatus::NeedsReview, T0 + secs(1)) };
    let review = l.finish("can_review", A, Final { http_status: 202, ..review }).await.unwrap();
    // Old, final, but its event was never delivered.
    let undelivered = ended(&l, "can_undelivered", T0, FinalStatus::Cancelled).await;
    // Old, final, delivered, but ended after the cutoff.
    let Begin::Fresh(_) = l.begin(new("can_late_end", T0)).await.unwrap() else { panic!() };
    let late = l.finish("can_late_end", A, end(FinalStatus::Failed, T0 + secs(900))).await.unwrap();
    // Old, final, delivered, of a batch.
    let batch = NewBatch {
        id: "bat_1".to_owned(),
        client: "c1".to_owned(),
        idempotency_key: None,
        fingerprint: "fp-b".to_owned(),
        metadata: json!({}),
        owner: A.to_owned(),
        item_ids: vec!["can_item".to_owned()],
        now: T0,
        recording_until: T0 + LEASE,
    };
    assert!(matches!(l.begin_batch(batch).await.unwrap(), BatchBegin::Fresh(_)));
    let Begin::Fresh(_) =
        l.begin(NewCancellation { batch_id: Some("bat_1".to_owned()), ..new("can_item", T0) }).await.unwrap()
    else {
        panic!()
    };
    let item = l.finish("can_item", A, end(FinalStatus::Cancelled, T0 + secs(1))).await.unwrap();

    let cutoff = T0 + secs(600);
    assert_eq!(l.purge_final_before(cutoff, 500).await.unwrap(), 0);
    assert_eq!(l.get("can_live").await.unwrap(), Some(live));
    assert_eq!(l.get("can_review").await.unwrap(), Some(review));
    assert_eq!(l.get("can_undelivered").await.unwrap(), Some(undelivered.clone()));
    assert!(l.get_event("evt_can_undelivered").await.unwrap().is_some());
    assert_eq!(l.get("can_late_end").await.unwrap(), Some(late));
    assert_eq!(l.get("can_item").await.unwrap(), Some(item));
    // Delivered at last: now it goes (its delivery failed for good counts as settled too).
    let pending = l.claim_deliveries("d", T0 + secs(1000), LEASE, 100, None).await.unwrap();
    for d in pending {
        let attempt =
            DeliveryAttempt { n: 1, at: T0, http_status: Some(500), latency_ms: 3, error: None, answer: None };
        l.record_delivery(d.id, "d", &d.endpoint, attempt, DeliveryOutcome::Failed).await.unwrap();
    }
    assert_eq!(l.purge_final_before(cutoff, 500).await.unwrap(), 1);
    assert_eq!(l.get("can_undelivered").await.unwrap(), None);
}

async fn purge_works_in_batches(t: Env) {
    let l = &t.ledger;
    for n in 0..23 {
        ended(l, &format!("can_{n:02}"), T0 + secs(n), FinalStatus::Cancelled).await;
    }
    let kept = ended(l, "can_kept", T0 + secs(3600), FinalStatus::Cancelled).await;
    assert_eq!(l.purge_final_before(T0 + secs(600), 5).await.unwrap(), 23);
    let page = l.list(&Default::default(), 100, None).await.unwrap();
    assert_eq!(page.records, vec![kept]);
    assert!(l.size_bytes().await.unwrap() > 0);
}
