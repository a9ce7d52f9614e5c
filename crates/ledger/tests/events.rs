//! The outbox of SPEC §8, on both backends: events stored in the transaction that ends a record
//! (or completes a batch), deliveries claimed FIFO per reference, attempts and their outcomes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cancelgate_ledger::{
    Batch, BatchBegin, Begin, DeliveryAttempt, DeliveryOutcome, DeliveryStatus, EventFilter, EventRule, Final,
    FinalStatus, ItemEnd, Ledger, NewBatch, NewCancellation, NewEvent, Record, Resolve, Resolved, ResolvedStatus,
    Status,
};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use support::Env;

const T0: OffsetDateTime = datetime!(2026-04-01 10:00:00 UTC);
const LEASE: Duration = Duration::from_secs(15);
const A: &str = "replica-a";
const B: &str = "replica-b";

fn secs(s: i64) -> time::Duration {
    time::Duration::seconds(s)
}

/// A rule sending every event to `endpoints`, its payload a small JSON naming the record.
#[derive(Debug, Default)]
struct Rule {
    endpoints: Vec<String>,
    stored: AtomicUsize,
}

impl Rule {
    fn to(endpoints: &[&str]) -> Arc<Rule> {
        Arc::new(Rule { endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(), stored: AtomicUsize::new(0) })
    }
}

impl EventRule for Rule {
    fn for_record(&self, r: &Record) -> Option<NewEvent> {
        let kind = match r.status {
            Status::Cancelled => "cancellation.cancelled",
            Status::Failed => "cancellation.failed",
            Status::NeedsReview => "cancellation.needs_review",
            Status::Processing => return None,
        };
        Some(NewEvent {
            id: format!("evt_{}_{}", r.id, r.status),
            kind: kind.to_owned(),
            cancellation_id: Some(r.id.clone()),
            batch_id: None,
            order_key: format!("{}/{}/{}", r.provider, r.account, r.reference),
            payload: json!({"id": r.id, "status": r.status.as_str()}).to_string(),
            created_at: r.updated_at,
            endpoints: self.endpoints.clone(),
        })
    }

    fn for_batch(&self, b: &Batch) -> Option<NewEvent> {
        Some(NewEvent {
            id: format!("evt_{}", b.id),
            kind: "cancellation_batch.completed".to_owned(),
            cancellation_id: None,
            batch_id: Some(b.id.clone()),
            order_key: b.id.clone(),
            payload: json!({"id": b.id, "items": b.items.len()}).to_string(),
            created_at: b.items.iter().filter_map(|i| i.record.as_ref()).map(|r| r.updated_at).max()?,
            endpoints: self.endpoints.clone(),
        })
    }

    fn stored(&self) {
        self.stored.fetch_add(1, Ordering::SeqCst);
    }
}

fn new(id: &str, reference: &str) -> NewCancellation {
    NewCancellation {
        id: id.to_owned(),
        client: "c1".to_owned(),
        provider: "chargeapi".to_owned(),
        account: "default".to_owned(),
        reference: reference.to_owned(),
        idempotency_key: None,
        fingerprint: format!("fp-{reference}"),
        request: json!({}),
        metadata: json!({}),
        owner: A.to_owned(),
        now: T0,
        lease_until: T0 + LEASE,
        batch_id: None,
    }
}

fn fin(status: FinalStatus, now: OffsetDateTime) -> Final {
    Final {
        status,
        cancelled_at: (status == FinalStatus::Cancelled).then_some(now),
        error: (status != FinalStatus::Cancelled).then(|| json!({"code": "x"})),
        upstream: None,
        http_status: if status == FinalStatus::Cancelled { 200 } else { 202 },
        now,
        recheck_at: None,
    }
}

async fn fresh(l: &Ledger, n: NewCancellation) -> Record {
    match l.begin(n).await.unwrap() {
        Begin::Fresh(r) => r,
        other => panic!("expected Fresh, got {other:?}"),
    }
}

fn attempt(at: OffsetDateTime, status: Option<u16>, error: Option<&str>) -> DeliveryAttempt {
    DeliveryAttempt {
        n: 0,
        at,
        http_status: status,
        latency_ms: 12,
        error: error.map(str::to_owned),
        answer: Some("ok".to_owned()),
    }
}

backend_tests!(
    a_final_record_stores_its_event_and_deliveries_with_it,
    without_an_endpoint_nothing_is_written,
    deliveries_are_fifo_per_reference_and_concurrent_across_references,
    leases_are_exclusive_and_taken_over_when_expired,
    gone_disables_the_endpoint_and_failed_frees_the_queue,
    redeliver_list_and_pending_stats,
    a_batch_completes_once_when_no_item_is_processing,
);

async fn a_final_record_stores_its_event_and_deliveries_with_it(t: Env) {
    let rule = Rule::to(&["a", "b"]);
    let l = t.ledger.clone().with_events(rule.clone());
    fresh(&l, new("can_1", "res_1")).await;
    // Processing emits nothing.
    assert!(l.list_events(&EventFilter::default(), 10, None).await.unwrap().events.is_empty());
    let done = l.finish("can_1", A, fin(FinalStatus::Cancelled, T0 + secs(1))).await.unwrap();
    assert_eq!(rule.stored.load(Ordering::SeqCst), 1, "the dispatcher is woken after the commit");
    let event = l.get_event("evt_can_1_cancelled").await.unwrap().expect("stored with the record");
    assert_eq!(event.kind, "cancellation.cancelled");
    assert_eq!(event.cancellation_id.as_deref(), Some("can_1"));
    assert_eq!(event.payload, json!({"id": "can_1", "status": "cancelled"}).to_string());
    assert_eq!(event.created_at, done.updated_at);
    let deliveries: Vec<_> = event.deliveries.iter().map(|d| (d.endpoint.as_str(), d.status)).collect();
    assert_eq!(deliveries, [("a", DeliveryStatus::Pending), ("b", DeliveryStatus::Pending)]);
    assert_eq!(event.deliveries[0].next_attempt_at, Some(done.updated_at), "due at once");
    // A repeated finish (a lost acknowledgement) is a replay: nothing more.
    l.finish("can_1", A, fin(FinalStatus::Cancelled, T0 + secs(1))).await.unwrap();
    assert_eq!(l.list_events(&EventFilter::default(), 10, None).await.unwrap().events.len(), 1);
    assert_eq!(rule.stored.load(Ordering::SeqCst), 1);
    // finish_with_attempt and a resolution emit too; a resolve replay does not.
    fresh(&l, new("can_2", "res_2")).await;
    let n = l.start_attempt("can_2", A, T0).await.unwrap();
    let answer = cancelgate_ledger::AttemptResult {
        finished_at: T0 + secs(1),
        latency_ms: 5,
        outcome: "ambiguous".to_owned(),
        http_status: None,
        body: None,
        error: None,
    };
    l.finish_with_attempt("can_2", A, n, answer, fin(FinalStatus::NeedsReview, T0 + secs(1))).await.unwrap();
    assert!(l.get_event("evt_can_2_needs_review").await.unwrap().is_some());
    let resolve = Resolve {
        by: "ops".to_owned(),
        note: "seen".to_owned(),
        status: ResolvedStatus::Cancelled,
        error: None,
        http_status: 200,
        now: T0 + secs(5),
    };
    assert!(matches!(l.resolve("can_2", resolve.clone()).await.unwrap(), Resolved::Fresh(_)));
    assert!(matches!(l.resolve("can_2", resolve).await.unwrap(), Resolved::Replay(_)));
    let all = l.list_events(&EventFilter::default(), 10, None).await.unwrap().events;
    let ids: Vec<_> = all.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["evt_can_2_cancelled", "evt_can_2_needs_review", "evt_can_1_cancelled"], "newest first");
}

async fn without_an_endpoint_nothing_is_written(t: Env) {
    let rule = Rule::to(&[]);
    let l = t.ledger.clone().with_events(rule.clone());
    fresh(&l, new("can_1", "res_1")).await;
    l.finish("can_1", A, fin(FinalStatus::Failed, T0)).await.unwrap();
    assert!(l.list_events(&EventFilter::default(), 10, None).await.unwrap().events.is_empty());
    assert_eq!(rule.stored.load(Ordering::SeqCst), 0);
    // A ledger without a rule emits nothing either.
    fresh(&t.ledger, new("can_2", "res_2")).await;
    t.ledger.finish("can_2", A, fin(FinalStatus::Cancelled, T0)).await.unwrap();
    assert!(t.ledger.list_events(&EventFilter::default(), 10, None).await.unwrap().events.is_empty());
}

/// Two events of res_1 (review, then resolved) and one of res_2, all to endpoint `a`.
async fn three_events(l: &Ledger) {
    fresh(l, new("can_1", "res_1")).await;
    l.finish("can_1", A, fin(FinalStatus::NeedsReview, T0 + secs(1))).await.unwrap();
    fresh(l, new("can_2", "res_2")).await;
    l.finish("can_2", A, fin(FinalStatus::Cancelled, T0 + secs(2))).await.unwrap();
    let resolve = Resolve {
        by: "ops".to_owned(),
        note: "seen".to_owned(),
        status: ResolvedStatus::Cancelled,
        error: None,
        http_status: 200,
        now: T0 + secs(3),
    };
    l.resolve("can_1", resolve).await.unwrap();
}

async fn deliveries_are_fifo_per_reference_and_concurrent_across_references(t: Env) {
    let l = t.ledger.clone().with_events(Rule::to(&["a"]));
    three_events(&l).await;
    let now = T0 + secs(10);
    // An endpoint the configuration does not name is never claimed for.
    assert!(l.claim_deliveries(A, now, LEASE, 10, None).await.unwrap().is_empty());
    l.sync_endpoints(vec![("a".to_owned(), true)], now).await.unwrap();
    let first = l.claim_deliveries(A, now, LEASE, 10, None).await.unwrap();
    let events: Vec<_> = first.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(events, ["evt_can_1_needs_review", "evt_can_2_cancelled"], "the head of each reference only");
    assert_eq!(first[0].payload, json!({"id": "can_1", "status": "needs_review"}).to_string());
    // res_1's head fails and is retried later: its second event still waits; res_2 is not held.
    let retry_at = now + secs(60);
    let head = &first[0];
    assert!(
        l.record_delivery(
            head.id,
            A,
            "a",
            attempt(now, Some(500), Some("HTTP 500")),
            DeliveryOutcome::RetryAt(retry_at)
        )
        .await
        .unwrap()
    );
    assert!(
        l.record_delivery(first[1].id, A, "a", attempt(now, Some(200), None), DeliveryOutcome::Delivered)
            .await
            .unwrap()
    );
    assert!(l.claim_deliveries(A, now + secs(1), LEASE, 10, None).await.unwrap().is_empty(), "res_1's second waits");
    let again = l.claim_deliveries(A, retry_at, LEASE, 10, None).await.unwrap();
    assert_eq!(again.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["evt_can_1_needs_review"]);
    assert_eq!(again[0].attempts, 1);
    l.record_delivery(again[0].id, A, "a", attempt(retry_at, Some(204), None), DeliveryOutcome::Delivered)
        .await
        .unwrap();
    let next = l.claim_deliveries(A, retry_at, LEASE, 10, None).await.unwrap();
    assert_eq!(next.iter().map(|c| c.event_id.as_str()).collect::<Vec<_>>(), ["evt_can_1_cancelled"]);
    // Every attempt is recorded.
    let event = l.get_event("evt_can_1_needs_review").await.unwrap().unwrap();
    let d = &event.deliveries[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.next_attempt_at, None);
    let attempts: Vec<_> = d.attempts.iter().map(|a| (a.n, a.http_status, a.error.as_deref())).collect();
    assert_eq!(attempts, [(1, Some(500), Some("HTTP 500")), (2, Some(204), None)]);
    assert_eq!(d.attempts[0].answer.as_deref(), Some("ok"));
}

async fn leases_are_exclusive_and_taken_over_when_expired(t: Env) {
    let l = t.ledger.clone().with_events(Rule::to(&["a"]));
    fresh(&l, new("can_1", "res_1")).await;
    l.finish("can_1", A, fin(FinalStatus::Cancelled, T0)).await.unwrap();
    l.sync_endpoints(vec![("a".to_owned(), true)], T0).await.unwrap();
    let now = T0 + secs(1);
    // Concurrent claimers: exactly one gets it.
    let (x, y) = tokio::join!(l.claim_deliveries(A, now, LEASE, 10, None), l.claim_deliveries(B, now, LEASE, 10, None));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 1, "{x:?} {y:?}");
    let (holder, taker) = if x.is_empty() { (B, A) } else { (A, B) };
    let id = x.first().or(y.first()).unwrap().id;
    assert!(l.claim_deliveries(taker, now + secs(14), LEASE, 10, None).await.unwrap().is_empty(), "leased");
    // The holder died: once its lease expired, another takes the delivery over.
    let taken = l.claim_deliveries(taker, now + secs(15), LEASE, 10, None).await.unwrap();
    assert_eq!(taken.iter().map(|c| c.id).collect::<Vec<_>>(), [id]);
    // The late first holder records nothing.
    let late = l.record_delivery(id, holder, "a", attempt(now, Some(200), None), DeliveryOutcome::Delivered);
    assert!(!late.await.unwrap());
    assert!(l.get_event("evt_can_1_cancelled").await.unwrap().unwrap().deliveries[0].attempts.is_empty());
}

async fn gone_disables_the_endpoint_and_failed_frees_the_queue(t: Env) {
    let l = t.ledger.clone().with_events(Rule::to(&["a", "b"]));
    three_events(&l).await;
    let now = T0 + secs(10);
    l.sync_endpoints(vec![("a".to_owned(), true), ("b".to_owned(), true)], now).await.unwrap();
    let only_b = l.claim_deliveries(A, now, LEASE, 10, Some("b")).await.unwrap();
    assert!(only_b.iter().all(|c| c.endpoint == "b") && only_b.len() == 2, "{only_b:?}");
    let rest = l.claim_deliveries(A, now, LEASE, 10, None).await.unwrap();
    let claimed: Vec<_> = only_b.into_iter().chain(rest).collect();
    assert_eq!(claimed.len(), 4, "two heads for each of two endpoints");
    for c in &claimed {
        let (outcome, status) = match c.endpoint.as_str() {
            "a" => (DeliveryOutcome::EndpointGone, 410),
            _ => (DeliveryOutcome::Failed, 500),
        };
        l.record_delivery(c.id, A, &c.endpoint, attempt(now, Some(status), Some("no")), outcome).await.unwrap();
    }
    // `a` is disabled: its deliveries stay pending, none is claimed; `b` gave up on the heads,
    // so res_1's second event is next there.
    let next = l.claim_deliveries(A, now, LEASE, 10, None).await.unwrap();
    let next: Vec<_> = next.iter().map(|c| (c.endpoint.as_str(), c.event_id.as_str())).collect();
    assert_eq!(next, [("b", "evt_can_1_cancelled")]);
    let event = l.get_event("evt_can_2_cancelled").await.unwrap().unwrap();
    let states: Vec<_> =
        event.deliveries.iter().map(|d| (d.endpoint.as_str(), d.status, d.endpoint_disabled)).collect();
    assert_eq!(states, [("a", DeliveryStatus::Pending, true), ("b", DeliveryStatus::Failed, false)]);
    // Enabled again at a restart: `a`'s pending deliveries go out.
    l.sync_endpoints(vec![("a".to_owned(), true), ("b".to_owned(), true)], now).await.unwrap();
    let resumed = l.claim_deliveries(A, now, LEASE, 10, None).await.unwrap();
    assert_eq!(resumed.iter().filter(|c| c.endpoint == "a").count(), 2);
    // An endpoint dropped from the configuration is disabled.
    l.sync_endpoints(vec![("b".to_owned(), true)], now).await.unwrap();
    let event = l.get_event("evt_can_2_cancelled").await.unwrap().unwrap();
    assert!(event.deliveries[0].endpoint_disabled);
}

async fn redeliver_list_and_pending_stats(t: Env) {
    let l = t.ledger.clone().with_events(Rule::to(&["a"]));
    three_events(&l).await;
    let stats = l.pending_deliveries().await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].endpoint.as_str(), stats[0].pending, stats[0].oldest), ("a", 3, Some(T0 + secs(1))));
    // Filters and the cursor.
    let f = EventFilter { kind: Some("cancellation.cancelled".to_owned()), ..EventFilter::default() };
    let page = l.list_events(&f, 1, None).await.unwrap();
    assert_eq!((page.events[0].id.as_str(), page.has_more), ("evt_can_1_cancelled", true));
    let page = l.list_events(&f, 1, Some("evt_can_1_cancelled")).await.unwrap();
    assert_eq!((page.events[0].id.as_str(), page.has_more), ("evt_can_2_cancelled", false));
    let f = EventFilter { cancellation_id: Some("can_2".to_owned()), ..EventFilter::default() };
    assert_eq!(l.list_events(&f, 10, None).await.unwrap().events.len(), 1);
    let f = EventFilter { delivery_status: Some(DeliveryStatus::Delivered), ..EventFilter::default() };
    assert!(l.list_events(&f, 10, None).await.unwrap().events.is_empty());
    assert!(matches!(
        l.list_events(&EventFilter::default(), 10, Some("evt_nope")).await,
        Err(cancelgate_ledger::LedgerError::UnknownCursor(_))
    ));
    // Redeliver: a new pending delivery of the same event.
    let event = l.redeliver("evt_can_2_cancelled", vec!["a".to_owned()], T0 + secs(20)).await.unwrap().unwrap();
    assert_eq!(event.deliveries.len(), 2);
    assert_eq!(event.deliveries[1].next_attempt_at, Some(T0 + secs(20)));
    assert_eq!(l.redeliver("evt_nope", vec!["a".to_owned()], T0).await.unwrap(), None);
    assert_eq!(l.pending_deliveries().await.unwrap()[0].pending, 4);
}

async fn a_batch_completes_once_when_no_item_is_processing(t: Env) {
    let l = t.ledger.clone().with_events(Rule::to(&["a"]));
    let batch = |id: &str, items: &[&str]| NewBatch {
        id: id.to_owned(),
        client: "c1".to_owned(),
        idempotency_key: None,
        fingerprint: format!("fp-{id}"),
        metadata: json!({}),
        item_ids: items.iter().map(|i| (*i).to_owned()).collect(),
        owner: A.to_owned(),
        now: T0,
        recording_until: T0 + LEASE,
    };
    let item = |batch: &str, id: &str, reference: &str| NewCancellation {
        batch_id: Some(batch.to_owned()),
        ..new(id, reference)
    };
    let completed = |l: &Ledger| {
        let l = l.clone();
        async move {
            let f = EventFilter { kind: Some("cancellation_batch.completed".to_owned()), ..EventFilter::default() };
            l.list_events(&f, 10, None).await.unwrap().events.into_iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    // Items end before the seal: the seal completes the batch.
    assert!(matches!(l.begin_batch(batch("cb_1", &["can_1", "can_2"])).await.unwrap(), BatchBegin::Fresh(_)));
    fresh(&l, item("cb_1", "can_1", "res_1")).await;
    l.finish("can_1", A, fin(FinalStatus::Cancelled, T0 + secs(1))).await.unwrap();
    let shed = ItemEnd::Refused { error: json!({"code": "rate_limited"}), http_status: 429 };
    assert!(completed(&l).await.is_empty());
    l.seal_batch("cb_1", A, vec![(1, shed)], T0 + secs(2)).await.unwrap();
    assert_eq!(completed(&l).await, ["evt_cb_1"]);
    l.seal_batch("cb_1", A, Vec::new(), T0 + secs(3)).await.unwrap();
    assert_eq!(completed(&l).await, ["evt_cb_1"], "once");
    // Sealed while an item is processing: its end completes the batch, once.
    l.begin_batch(batch("cb_2", &["can_3", "can_4"])).await.unwrap();
    fresh(&l, item("cb_2", "can_3", "res_3")).await;
    fresh(&l, item("cb_2", "can_4", "res_4")).await;
    l.seal_batch("cb_2", A, Vec::new(), T0 + secs(1)).await.unwrap();
    l.finish("can_3", A, fin(FinalStatus::NeedsReview, T0 + secs(2))).await.unwrap();
    assert_eq!(completed(&l).await, ["evt_cb_1"]);
    l.finish("can_4", A, fin(FinalStatus::Failed, T0 + secs(3))).await.unwrap();
    let mut all = completed(&l).await;
    all.sort();
    assert_eq!(all, ["evt_cb_1", "evt_cb_2"]);
    let resolve = Resolve {
        by: "ops".to_owned(),
        note: "seen".to_owned(),
        status: ResolvedStatus::Cancelled,
        error: None,
        http_status: 200,
        now: T0 + secs(5),
    };
    l.resolve("can_3", resolve).await.unwrap();
    assert_eq!(completed(&l).await.len(), 2, "a batch completes once");
}
