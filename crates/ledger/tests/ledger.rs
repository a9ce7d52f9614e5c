//! The ledger's contract, written once and run against both backends (see `support`).

// Test code: a failed unwrap is a failed test (clippy's test exemption misses helper fns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use cancelgate_ledger::{
    AMBIGUOUS, AttemptResult, Backend, Begin, Final, FinalStatus, Ledger, LedgerError, LedgerOptions, ListFilter,
    NewCancellation, Record, Resolve, Resolved, ResolvedStatus, Status,
};
use cancelgate_ledger::{BatchBegin, ItemEnd, NewBatch, StoredJson};
use serde_json::{Value, json};
use sqlx::Connection as _;
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

/// A request for `reference` by client `c1`, leased to [`A`] for 15 s from [`T0`].
fn new(id: &str, reference: &str) -> NewCancellation {
    NewCancellation {
        id: id.to_owned(),
        client: "c1".to_owned(),
        provider: "chargeapi".to_owned(),
        account: "default".to_owned(),
        reference: reference.to_owned(),
        idempotency_key: None,
        fingerprint: format!("fp-{reference}"),
        request: json!({"reason": "Customer changed plans", "language": "EN"}),
        metadata: json!({"order_id": "A-1001"}),
        owner: A.to_owned(),
        now: T0,
        lease_until: T0 + LEASE,
        batch_id: None,
    }
}

fn keyed(id: &str, reference: &str, key: &str) -> NewCancellation {
    NewCancellation { idempotency_key: Some(key.to_owned()), ..new(id, reference) }
}

fn at(mut n: NewCancellation, now: OffsetDateTime) -> NewCancellation {
    n.now = now;
    n.lease_until = now + LEASE;
    n
}

fn cancelled(now: OffsetDateTime) -> Final {
    Final {
        status: FinalStatus::Cancelled,
        cancelled_at: Some(now),
        error: None,
        upstream: Some(StoredJson::of_value(&json!({"status": 200, "body": {"status": "cancelled"}}))),
        http_status: 200,
        now,
        recheck_at: None,
    }
}

fn failed(now: OffsetDateTime) -> Final {
    Final {
        status: FinalStatus::Failed,
        cancelled_at: None,
        error: Some(json!({"type": "/errors/not_found", "code": "not_found", "status": 404})),
        upstream: Some(StoredJson::of_value(&json!({"status": 404, "body": null}))),
        http_status: 404,
        now,
        recheck_at: None,
    }
}

fn needs_review(now: OffsetDateTime) -> Final {
    Final {
        status: FinalStatus::NeedsReview,
        cancelled_at: None,
        error: Some(json!({"code": "upstream_timeout"})),
        upstream: None,
        http_status: 202,
        now,
        recheck_at: None,
    }
}

fn outcome(outcome: &str, finished_at: OffsetDateTime) -> AttemptResult {
    AttemptResult {
        finished_at,
        latency_ms: 120,
        outcome: outcome.to_owned(),
        http_status: None,
        body: None,
        error: Some("timed out".to_owned()),
    }
}

async fn fresh(ledger: &Ledger, n: NewCancellation) -> Record {
    match ledger.begin(n).await.unwrap() {
        Begin::Fresh(r) => r,
        other => panic!("expected Fresh, got {other:?}"),
    }
}

backend_tests!(
    migrate_twice_is_a_no_op,
    begin_fresh_stores_the_request,
    same_key_after_the_end_replays,
    same_key_in_flight_is_refused_and_stores_nothing,
    same_key_other_body_is_reused,
    busy_reference_is_refused_without_storing_the_key,
    reference_in_review_is_answered_with_its_record,
    cancelled_reference_is_answered_with_the_original,
    failed_reference_can_be_cancelled_again,
    keys_are_per_client,
    fifty_concurrent_begins_with_one_key_make_one_record,
    fifty_concurrent_begins_for_one_reference_make_one_record,
    begins_racing_the_end_of_the_first_request,
    only_the_lease_holder_drives_a_record,
    finish_is_idempotent_for_its_owner,
    attempts_are_counted_and_classified,
    unfinished_attempt_makes_the_record_ambiguous,
    claim_due_takes_only_expired_or_due_leases,
    concurrent_claimers_never_share_a_record,
    claim_all_processing_is_for_sqlite_start_up,
    list_is_newest_first_and_filtered,
    list_cursor_is_exact_across_equal_timestamps,
    sweep_keeps_young_keys_and_keys_in_flight,
    stats_count_the_backlog,
    count_by_status_counts_only_that_status,
    database_enforces_the_invariants,
    times_and_json_round_trip,
    begin_with_attempt_starts_the_first_attempt_with_the_record,
    finish_with_attempt_stores_the_answer_and_the_end_together,
    the_record_a_write_returns_is_the_record_read_back,
    concurrent_writes_that_fail_leave_the_others_stored,
    replays_are_answered_from_what_is_stored,
    batch_and_items_are_stored_before_any_item_is_recorded,
    batch_items_follow_their_records_and_their_ends,
    batch_key_replays_refuses_another_body_and_waits_while_recording,
    a_review_is_resolved_once_with_who_when_and_why,
    a_reference_resolved_failed_can_be_cancelled_again,
    a_retry_takes_a_review_back_to_processing_for_a_new_round,
    rechecks_are_claimed_when_due_and_once,
    the_database_allows_only_the_ways_out_of_review,
);

async fn migrate_twice_is_a_no_op(t: Env) {
    let l = &t.ledger;
    let r = fresh(l, new("can_1", "res_1")).await;
    l.migrate().await.unwrap();
    l.migrate().await.unwrap();
    assert!(l.is_migrated().await.unwrap());
    l.ping().await.unwrap();
    assert_eq!(l.get("can_1").await.unwrap(), Some(r), "data survives");
    // Another connection to the same database sees it migrated too.
    let again = Ledger::connect(&t.url, support::options()).await.unwrap();
    assert!(again.is_migrated().await.unwrap());
    again.migrate().await.unwrap();
    again.close().await;
}

async fn begin_fresh_stores_the_request(t: Env) {
    let l = &t.ledger;
    let r = fresh(l, keyed("can_1", "res_1", "k1")).await;
    assert_eq!(r.id, "can_1");
    assert_eq!(r.client, "c1");
    assert_eq!((r.provider.as_str(), r.account.as_str(), r.reference.as_str()), ("chargeapi", "default", "res_1"));
    assert_eq!(r.status, Status::Processing);
    assert_eq!(r.idempotency_key.as_deref(), Some("k1"));
    assert_eq!(r.fingerprint, "fp-res_1");
    assert_eq!(r.request, json!({"reason": "Customer changed plans", "language": "EN"}));
    assert_eq!(r.metadata, json!({"order_id": "A-1001"}));
    assert_eq!((r.attempts, r.ambiguous), (0, false));
    assert_eq!((r.cancelled_at, &r.error, &r.upstream, r.http_status), (None, &None, &None, None));
    assert_eq!(r.lease_owner.as_deref(), Some(A));
    assert_eq!(r.lease_until, Some(T0 + LEASE));
    assert_eq!((r.created_at, r.updated_at), (T0, T0));
    assert_eq!(l.get("can_1").await.unwrap(), Some(r));
    assert_eq!(l.get("can_unknown").await.unwrap(), None);
    assert!(l.attempts("can_1").await.unwrap().is_empty());
}

async fn same_key_after_the_end_replays(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "k1")).await;
    let failed = l.finish("can_1", A, failed(T0 + secs(1))).await.unwrap();
    assert_eq!(failed.status, Status::Failed);
    // A retry (new id, same key and body) gets the stored answer, and creates nothing.
    assert_eq!(l.begin(keyed("can_2", "res_1", "k1")).await.unwrap(), Begin::Replay(failed.clone()));
    assert_eq!(l.get("can_2").await.unwrap(), None);

    fresh(l, keyed("can_3", "res_3", "k3")).await;
    let done = l.finish("can_3", A, cancelled(T0 + secs(2))).await.unwrap();
    assert_eq!(l.begin(keyed("can_4", "res_3", "k3")).await.unwrap(), Begin::Replay(done));
    assert_eq!(l.get("can_4").await.unwrap(), None);
}

async fn same_key_in_flight_is_refused_and_stores_nothing(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "k1")).await;
    assert_eq!(l.begin(keyed("can_2", "res_1", "k1")).await.unwrap(), Begin::KeyInFlight);
    assert_eq!(l.get("can_2").await.unwrap(), None);
    // Once the first request ends, the same retry replays its final answer.
    let done = l.finish("can_1", A, cancelled(T0 + secs(1))).await.unwrap();
    assert_eq!(l.begin(keyed("can_2", "res_1", "k1")).await.unwrap(), Begin::Replay(done));
}

async fn same_key_other_body_is_reused(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "k1")).await;
    let other_body = NewCancellation { fingerprint: "fp-other".to_owned(), ..keyed("can_2", "res_1", "k1") };
    assert_eq!(l.begin(other_body.clone()).await.unwrap(), Begin::KeyReused, "while in flight");
    // Another reference under the same key is another body too.
    assert_eq!(l.begin(keyed("can_2", "res_2", "k1")).await.unwrap(), Begin::KeyReused);
    l.finish("can_1", A, failed(T0 + secs(1))).await.unwrap();
    assert_eq!(l.begin(other_body).await.unwrap(), Begin::KeyReused, "after the end");
    assert_eq!(l.get("can_2").await.unwrap(), None);
}

async fn busy_reference_is_refused_without_storing_the_key(t: Env) {
    let l = &t.ledger;
    let first = fresh(l, keyed("can_1", "res_1", "k1")).await;
    assert_eq!(l.begin(keyed("can_2", "res_1", "k2")).await.unwrap(), Begin::ReferenceBusy(first.clone()));
    assert_eq!(l.begin(new("can_3", "res_1")).await.unwrap(), Begin::ReferenceBusy(first));
    assert_eq!(l.get("can_2").await.unwrap(), None);
    // The first request fails; had the 409 been stored under k2, this would replay it.
    l.finish("can_1", A, failed(T0 + secs(1))).await.unwrap();
    let second = fresh(l, keyed("can_2", "res_1", "k2")).await;
    assert_eq!(second.idempotency_key.as_deref(), Some("k2"));
}

async fn reference_in_review_is_answered_with_its_record(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "k1")).await;
    let review = l.finish("can_1", A, needs_review(T0 + secs(1))).await.unwrap();
    assert_eq!(l.begin(keyed("can_2", "res_1", "k2")).await.unwrap(), Begin::ReferenceNeedsReview(review.clone()));
    assert_eq!(l.begin(new("can_3", "res_1")).await.unwrap(), Begin::ReferenceNeedsReview(review.clone()));
    // k2 was not stored: asking again is answered from the reference again, not replayed.
    assert_eq!(l.begin(keyed("can_2", "res_1", "k2")).await.unwrap(), Begin::ReferenceNeedsReview(review));
    assert_eq!(l.get("can_2").await.unwrap(), None);
}

async fn cancelled_reference_is_answered_with_the_original(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "k1")).await;
    let original = l.finish("can_1", A, cancelled(T0 + secs(1))).await.unwrap();
    let later = at(keyed("can_2", "res_1", "k2"), T0 + secs(3600));
    assert_eq!(l.begin(later.clone()).await.unwrap(), Begin::ReferenceCancelled(original.clone()));
    assert_eq!(l.begin(later).await.unwrap(), Begin::ReferenceCancelled(original.clone()), "k2 not stored");
    // Same reference, other provider or account: another reservation.
    let other_account = NewCancellation { account: "eu".to_owned(), ..new("can_3", "res_1") };
    fresh(l, other_account).await;
    let other_provider = NewCancellation { provider: "accommodation".to_owned(), ..new("can_4", "res_1") };
    fresh(l, other_provider).await;
    assert_eq!(l.get("can_1").await.unwrap(), Some(original));
}

async fn failed_reference_can_be_cancelled_again(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    l.finish("can_1", A, failed(T0 + secs(1))).await.unwrap();
    let second = fresh(l, at(new("can_2", "res_1"), T0 + secs(2))).await;
    assert_eq!(second.status, Status::Processing);
    l.finish("can_2", A, failed(T0 + secs(3))).await.unwrap();
    fresh(l, at(new("can_3", "res_1"), T0 + secs(4))).await;
    let filter = ListFilter { reference: Some("res_1".to_owned()), ..ListFilter::default() };
    let page = l.list(&filter, 10, None).await.unwrap();
    let ids: Vec<_> = page.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["can_3", "can_2", "can_1"]);
}

async fn keys_are_per_client(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_1", "res_1", "shared-key")).await;
    let other_client = NewCancellation { client: "c2".to_owned(), ..keyed("can_2", "res_2", "shared-key") };
    let r = fresh(l, other_client).await;
    assert_eq!(r.client, "c2");
    assert_eq!(l.begin(keyed("can_3", "res_1", "shared-key")).await.unwrap(), Begin::KeyInFlight);
}

/// Runs 50 begins at once; returns their results.
async fn race(l: &Ledger, make: impl Fn(usize) -> NewCancellation) -> Vec<Begin> {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let l = l.clone();
            let n = make(i);
            tokio::spawn(async move { l.begin(n).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results
}

async fn fifty_concurrent_begins_with_one_key_make_one_record(t: Env) {
    let l = &t.ledger;
    let results = race(l, |i| keyed(&format!("can_{i:02}"), "res_1", "k1")).await;
    let winners: Vec<_> = results.iter().filter_map(|b| if let Begin::Fresh(r) = b { Some(r) } else { None }).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let losers = results.iter().filter(|b| **b == Begin::KeyInFlight).count();
    assert_eq!(losers, 49, "{results:?}");
    let page = l.list(&ListFilter::default(), 100, None).await.unwrap();
    assert_eq!(page.records, vec![winners[0].clone()]);
}

async fn fifty_concurrent_begins_for_one_reference_make_one_record(t: Env) {
    let l = &t.ledger;
    let results = race(l, |i| keyed(&format!("can_{i:02}"), "res_1", &format!("k{i:02}"))).await;
    let winners: Vec<_> = results.iter().filter_map(|b| if let Begin::Fresh(r) = b { Some(r) } else { None }).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = winners[0].clone();
    for b in &results {
        match b {
            Begin::Fresh(_) => {}
            Begin::ReferenceBusy(r) => assert_eq!(*r, winner),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(l.list(&ListFilter::default(), 100, None).await.unwrap().records, vec![winner.clone()]);
    // No loser's key was stored: once the winner failed, a loser's retry starts afresh.
    l.finish(&winner.id, A, failed(T0 + secs(1))).await.unwrap();
    let loser = (0..50).find(|i| format!("can_{i:02}") != winner.id).unwrap();
    fresh(l, keyed(&format!("can_{loser:02}"), "res_1", &format!("k{loser:02}"))).await;
}

async fn begins_racing_the_end_of_the_first_request(t: Env) {
    let l = &t.ledger;
    fresh(l, keyed("can_first", "res_1", "k0")).await;
    let ending = {
        let l = l.clone();
        tokio::spawn(async move { l.finish("can_first", A, failed(T0 + secs(1))).await.unwrap() })
    };
    let results = race(l, |i| {
        if i % 2 == 0 {
            keyed(&format!("can_{i:02}"), "res_1", "k0")
        } else {
            keyed(&format!("can_{i:02}"), "res_1", &format!("k{i:02}"))
        }
    })
    .await;
    let first = ending.await.unwrap();
    let fresh: Vec<_> =
        results.iter().filter_map(|b| if let Begin::Fresh(r) = b { Some(r.clone()) } else { None }).collect();
    assert!(fresh.len() <= 1, "two live records: {fresh:?}");
    for (i, b) in results.iter().enumerate() {
        match b {
            // The same key: in flight, or the first request's end.
            Begin::KeyInFlight => assert_eq!(i % 2, 0),
            Begin::Replay(r) => assert_eq!((i % 2, r), (0, &first)),
            // Another key: the reference is busy (with the first request or the new one).
            Begin::ReferenceBusy(r) => {
                assert!(i % 2 == 1 && (r.id == "can_first" || Some(&r.id) == fresh.first().map(|f| &f.id)))
            }
            Begin::Fresh(r) => assert_eq!((i % 2, r.id.clone()), (1, format!("can_{i:02}"))),
            other => panic!("unexpected {other:?}"),
        }
    }
    let live = ListFilter { status: Some(Status::Processing), ..ListFilter::default() };
    assert_eq!(l.list(&live, 100, None).await.unwrap().records, fresh);
}

async fn only_the_lease_holder_drives_a_record(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    let now = T0 + secs(1);
    assert!(matches!(l.start_attempt("can_1", B, now).await, Err(LedgerError::LeaseLost { .. })));
    assert!(matches!(l.finish("can_1", B, cancelled(now)).await, Err(LedgerError::LeaseLost { .. })));
    assert!(!l.renew_lease("can_1", B, now + LEASE).await.unwrap());
    assert!(!l.release("can_1", B, now).await.unwrap());
    assert!(matches!(l.start_attempt("can_x", A, now).await, Err(LedgerError::NotFound { .. })));
    assert!(matches!(l.finish("can_x", A, cancelled(now)).await, Err(LedgerError::NotFound { .. })));
    assert!(!l.renew_lease("can_x", A, now).await.unwrap());

    // An expired lease does not allow a new attempt (another replica may be taking it over)…
    let late = T0 + LEASE + secs(1);
    assert!(matches!(l.start_attempt("can_1", A, late).await, Err(LedgerError::LeaseLost { .. })));
    // …a renewed one does.
    assert!(l.renew_lease("can_1", A, late + LEASE).await.unwrap());
    assert_eq!(l.start_attempt("can_1", A, late).await.unwrap(), 1);
    assert_eq!(l.get("can_1").await.unwrap().unwrap().lease_until, Some(late + LEASE));

    // Taken over by B once expired: A is out, B drives.
    let later = late + LEASE + secs(1);
    let claimed = l.claim_due(B, later, LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(matches!(l.start_attempt("can_1", A, later).await, Err(LedgerError::LeaseLost { .. })));
    assert!(matches!(l.finish("can_1", A, cancelled(later)).await, Err(LedgerError::LeaseLost { .. })));
    assert!(!l.renew_lease("can_1", A, later + LEASE).await.unwrap());
    assert_eq!(l.start_attempt("can_1", B, later).await.unwrap(), 2);
    let done = l.finish("can_1", B, cancelled(later)).await.unwrap();
    assert_eq!(done.status, Status::Cancelled);
    assert_eq!((done.lease_owner.as_deref(), done.lease_until), (Some(B), None));
    // Final: nobody holds a lease any more.
    assert!(matches!(l.start_attempt("can_1", B, later).await, Err(LedgerError::LeaseLost { .. })));
    assert!(!l.renew_lease("can_1", B, later + LEASE).await.unwrap());
    assert!(!l.release("can_1", B, later).await.unwrap());
}

async fn finish_is_idempotent_for_its_owner(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    let now = T0 + secs(2);
    let done = l.finish("can_1", A, cancelled(now)).await.unwrap();
    assert_eq!(done.status, Status::Cancelled);
    assert_eq!(done.cancelled_at, Some(now));
    assert_eq!(done.http_status, Some(200));
    assert_eq!(done.updated_at, now);
    assert_eq!(done.upstream, Some(StoredJson::of_value(&json!({"status": 200, "body": {"status": "cancelled"}}))));
    // The same call again (a lost acknowledgement) gets the stored record…
    assert_eq!(l.finish("can_1", A, cancelled(now + secs(5))).await.unwrap(), done);
    // …another end is refused, and the record stays as it was.
    assert!(matches!(l.finish("can_1", A, failed(now)).await, Err(LedgerError::LeaseLost { .. })));
    assert!(matches!(l.finish("can_1", B, cancelled(now)).await, Err(LedgerError::LeaseLost { .. })));
    assert_eq!(l.get("can_1").await.unwrap(), Some(done));
    // Inconsistent ends are refused before touching the database.
    fresh(l, new("can_2", "res_2")).await;
    let no_time = Final { cancelled_at: None, ..cancelled(now) };
    assert!(matches!(l.finish("can_2", A, no_time).await, Err(LedgerError::InvalidInput(_))));
    let failed_with_time = Final { cancelled_at: Some(now), ..failed(now) };
    assert!(matches!(l.finish("can_2", A, failed_with_time).await, Err(LedgerError::InvalidInput(_))));
    let review = l.finish("can_2", A, needs_review(now)).await.unwrap();
    assert_eq!((review.status, review.http_status), (Status::NeedsReview, Some(202)));
    assert_eq!(review.error, Some(json!({"code": "upstream_timeout"})));
}

async fn attempts_are_counted_and_classified(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    let t1 = T0 + secs(1);
    assert_eq!(l.start_attempt("can_1", A, t1).await.unwrap(), 1);
    let r = l.get("can_1").await.unwrap().unwrap();
    assert_eq!((r.attempts, r.ambiguous, r.updated_at), (1, true, t1), "in flight counts as ambiguous");

    let transient = AttemptResult {
        finished_at: t1 + secs(1),
        latency_ms: 1000,
        outcome: "transient".to_owned(),
        http_status: Some(503),
        body: Some(json!({"error": {"message": "try later"}})),
        error: None,
    };
    l.finish_attempt("can_1", 1, transient.clone()).await.unwrap();
    assert!(!l.get("can_1").await.unwrap().unwrap().ambiguous, "a transient answer did not reach the provider");
    l.finish_attempt("can_1", 1, transient.clone()).await.unwrap(); // repeated: no-op
    assert!(matches!(l.finish_attempt("can_1", 1, outcome("refused", t1)).await, Err(LedgerError::Conflict { .. })));
    assert!(matches!(l.finish_attempt("can_1", 9, outcome("refused", t1)).await, Err(LedgerError::NotFound { .. })));
    assert!(matches!(
        l.finish_attempt("can_1", 1, outcome(cancelgate_ledger::SENT, t1)).await,
        Err(LedgerError::InvalidInput(_))
    ));

    assert_eq!(l.start_attempt("can_1", A, t1 + secs(2)).await.unwrap(), 2);
    l.finish_attempt("can_1", 2, outcome(AMBIGUOUS, t1 + secs(7))).await.unwrap();
    assert!(l.get("can_1").await.unwrap().unwrap().ambiguous);
    assert!(l.renew_lease("can_1", A, t1 + secs(60)).await.unwrap());
    assert_eq!(l.start_attempt("can_1", A, t1 + secs(8)).await.unwrap(), 3);
    l.finish_attempt("can_1", 3, outcome("already_cancelled", t1 + secs(9))).await.unwrap();
    let r = l.get("can_1").await.unwrap().unwrap();
    assert_eq!((r.attempts, r.ambiguous), (3, true), "an earlier ambiguous attempt still counts");

    let rows = l.attempts("can_1").await.unwrap();
    assert_eq!(rows.iter().map(|a| a.n).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        rows.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
        ["transient", AMBIGUOUS, "already_cancelled"]
    );
    let first = &rows[0];
    assert_eq!(first.owner, A);
    assert_eq!((first.started_at, first.finished_at), (t1, Some(t1 + secs(1))));
    assert_eq!((first.latency_ms, first.http_status), (Some(1000), Some(503)));
    assert_eq!(first.body, transient.body);
    assert_eq!(first.error, None);
    assert_eq!(rows[1].error.as_deref(), Some("timed out"));
    assert!(rows.iter().all(|a| !a.is_unfinished()));
}

async fn unfinished_attempt_makes_the_record_ambiguous(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    assert_eq!(l.start_attempt("can_1", A, T0 + secs(1)).await.unwrap(), 1);
    // The process dies here. Once the lease expired, another replica resumes the record.
    let claimed = l.claim_due(B, T0 + LEASE + secs(1), LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let r = &claimed[0];
    assert_eq!((r.id.as_str(), r.attempts, r.ambiguous), ("can_1", 1, true));
    let rows = l.attempts("can_1").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_unfinished());
    assert_eq!(rows[0].outcome, cancelgate_ledger::SENT);
    // The dead process's attempt can still be closed by whoever learns its result.
    l.finish_attempt("can_1", 1, outcome("transient", T0 + secs(20))).await.unwrap();
    assert!(!l.get("can_1").await.unwrap().unwrap().ambiguous);
}

async fn claim_due_takes_only_expired_or_due_leases(t: Env) {
    let l = &t.ledger;
    let now = T0 + secs(100);
    // expired lease
    fresh(l, at(new("can_1", "res_1"), T0)).await;
    // live lease
    fresh(l, at(new("can_2", "res_2"), now - secs(5))).await;
    // released, due
    fresh(l, at(new("can_3", "res_3"), T0 + secs(1))).await;
    assert!(l.release("can_3", A, now - secs(1)).await.unwrap());
    // released, due later
    fresh(l, at(new("can_4", "res_4"), T0 + secs(2))).await;
    assert!(l.release("can_4", A, now + secs(30)).await.unwrap());
    let released = l.get("can_4").await.unwrap().unwrap();
    assert_eq!((released.lease_owner, released.lease_until), (None, Some(now + secs(30))));
    // final
    fresh(l, at(new("can_5", "res_5"), T0 + secs(3))).await;
    l.finish("can_5", A, failed(T0 + secs(4))).await.unwrap();
    // expired at exactly now
    fresh(l, at(new("can_6", "res_6"), now - LEASE)).await;

    let claimed = l.claim_due(B, now, LEASE, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_1", "can_3", "can_6"], "oldest first");
    for r in &claimed {
        assert_eq!((r.lease_owner.as_deref(), r.lease_until), (Some(B), Some(now + LEASE)));
        assert_eq!(r.status, Status::Processing);
    }
    assert!(l.claim_due(A, now, LEASE, 10).await.unwrap().is_empty(), "claimed leases are live");
    assert!(l.claim_due(A, now, LEASE, 0).await.unwrap().is_empty());

    // Later, the rest comes due; `limit` caps a claim.
    let later = now + LEASE + secs(60);
    let first = l.claim_due(A, later, LEASE, 2).await.unwrap();
    assert_eq!(first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_1", "can_3"]);
    let rest = l.claim_due(A, later, LEASE, 10).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_4", "can_6", "can_2"]);
}

async fn concurrent_claimers_never_share_a_record(t: Env) {
    let l = &t.ledger;
    for i in 0..40 {
        fresh(l, new(&format!("can_{i:02}"), &format!("res_{i:02}"))).await;
    }
    let now = T0 + LEASE + secs(1);
    let claimers: Vec<_> = (0..4)
        .map(|c| {
            let l = l.clone();
            tokio::spawn(async move {
                let owner = format!("claimer-{c}");
                let mut mine = Vec::new();
                loop {
                    let batch = l.claim_due(&owner, now, LEASE, 3).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    assert!(batch.iter().all(|r| r.lease_owner.as_deref() == Some(owner.as_str())));
                    mine.extend(batch.into_iter().map(|r| r.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (40, 40), "{all:?}");
}

async fn claim_all_processing_is_for_sqlite_start_up(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    fresh(l, new("can_2", "res_2")).await;
    l.finish("can_2", A, cancelled(T0 + secs(1))).await.unwrap();
    fresh(l, new("can_3", "res_3")).await;
    assert!(l.release("can_3", A, T0 + secs(3600)).await.unwrap());
    let now = T0 + secs(2); // leases still live
    match t.backend() {
        Backend::Sqlite => {
            let claimed = l.claim_all_processing(B, now, LEASE).await.unwrap();
            assert_eq!(claimed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_1", "can_3"]);
            assert!(claimed.iter().all(|r| r.lease_owner.as_deref() == Some(B) && r.lease_until == Some(now + LEASE)));
            assert!(matches!(l.start_attempt("can_1", A, now).await, Err(LedgerError::LeaseLost { .. })));
            assert_eq!(l.start_attempt("can_1", B, now).await.unwrap(), 1);
        }
        Backend::Postgres => {
            let refused = l.claim_all_processing(B, now, LEASE).await;
            assert!(matches!(refused, Err(LedgerError::Unsupported(_))), "{refused:?}");
            assert_eq!(l.get("can_1").await.unwrap().unwrap().lease_owner.as_deref(), Some(A));
        }
    }
}

/// Six records over three providers/statuses, one per second from T0.
async fn seed_for_list(l: &Ledger) {
    let specs = [
        ("can_1", "chargeapi", "default", "res_1"),
        ("can_2", "frontpayment", "default", "res_2"),
        ("can_3", "chargeapi", "eu", "res_3"),
        ("can_4", "chargeapi", "default", "res_4"),
        ("can_5", "accommodation", "default", "res_5"),
        ("can_6", "chargeapi", "default", "res_1"),
    ];
    for (i, (id, provider, account, reference)) in specs.into_iter().enumerate() {
        let n = NewCancellation {
            provider: provider.to_owned(),
            account: account.to_owned(),
            ..at(new(id, reference), T0 + secs(i as i64))
        };
        fresh(l, n).await;
        if id == "can_1" {
            l.finish(id, A, failed(T0 + secs(10))).await.unwrap();
        }
        if id == "can_4" {
            l.finish(id, A, cancelled(T0 + secs(10))).await.unwrap();
        }
    }
}

async fn ids(l: &Ledger, filter: ListFilter) -> Vec<String> {
    l.list(&filter, 100, None).await.unwrap().records.into_iter().map(|r| r.id).collect()
}

async fn list_is_newest_first_and_filtered(t: Env) {
    let l = &t.ledger;
    assert_eq!(l.list(&ListFilter::default(), 10, None).await.unwrap().records, vec![]);
    seed_for_list(l).await;
    let all = l.list(&ListFilter::default(), 100, None).await.unwrap();
    assert!(!all.has_more);
    assert_eq!(
        all.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["can_6", "can_5", "can_4", "can_3", "can_2", "can_1"]
    );
    assert_eq!(all.records[2], l.get("can_4").await.unwrap().unwrap());

    let f =
        |provider: Option<&str>, account: Option<&str>, reference: Option<&str>, status: Option<Status>| ListFilter {
            provider: provider.map(str::to_owned),
            account: account.map(str::to_owned),
            reference: reference.map(str::to_owned),
            status,
            ..ListFilter::default()
        };
    assert_eq!(ids(l, f(Some("chargeapi"), None, None, None)).await, ["can_6", "can_4", "can_3", "can_1"]);
    assert_eq!(ids(l, f(Some("chargeapi"), Some("default"), None, None)).await, ["can_6", "can_4", "can_1"]);
    assert_eq!(ids(l, f(None, None, Some("res_1"), None)).await, ["can_6", "can_1"]);
    assert_eq!(ids(l, f(None, None, None, Some(Status::Processing))).await, ["can_6", "can_5", "can_3", "can_2"]);
    assert_eq!(ids(l, f(None, None, None, Some(Status::Cancelled))).await, ["can_4"]);
    assert_eq!(ids(l, f(None, None, None, Some(Status::NeedsReview))).await, Vec::<String>::new());
    assert_eq!(ids(l, f(Some("chargeapi"), None, Some("res_1"), Some(Status::Failed))).await, ["can_1"]);
    let window =
        ListFilter { created_gte: Some(T0 + secs(1)), created_lt: Some(T0 + secs(4)), ..ListFilter::default() };
    assert_eq!(ids(l, window).await, ["can_4", "can_3", "can_2"]);
    // Bounds given with another offset mean the same instants.
    let offset = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let window = ListFilter { created_gte: Some((T0 + secs(3)).to_offset(offset)), ..ListFilter::default() };
    assert_eq!(ids(l, window).await, ["can_6", "can_5", "can_4"]);

    let page = l.list(&ListFilter::default(), 4, None).await.unwrap();
    assert!(page.has_more);
    assert_eq!(page.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_6", "can_5", "can_4", "can_3"]);
    let next = l.list(&ListFilter::default(), 4, Some("can_3")).await.unwrap();
    assert!(!next.has_more);
    assert_eq!(next.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_2", "can_1"]);
    let exact = l.list(&ListFilter::default(), 2, Some("can_3")).await.unwrap();
    assert!(!exact.has_more, "exactly `limit` left is not more");
    let filtered = l.list(&f(Some("chargeapi"), None, None, None), 2, Some("can_6")).await.unwrap();
    assert_eq!(filtered.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_4", "can_3"]);
    assert!(filtered.has_more);

    assert!(matches!(l.list(&ListFilter::default(), 10, Some("can_nope")).await, Err(LedgerError::UnknownCursor(_))));
    assert!(matches!(l.list(&ListFilter::default(), 0, None).await, Err(LedgerError::InvalidInput(_))));
}

async fn list_cursor_is_exact_across_equal_timestamps(t: Env) {
    let l = &t.ledger;
    // 7 records in the same microsecond, 3 a second earlier, 2 a second later; ids inserted in
    // scrambled order so insertion order cannot stand in for id order.
    let same = T0 + time::Duration::microseconds(123_456);
    let mut expected = Vec::new();
    for (i, offset) in
        [(5, 0), (1, 0), (9, 0), (3, 0), (7, 0), (2, 0), (8, 0), (4, -1), (6, -1), (0, -1), (10, 1), (11, 1)]
    {
        let id = format!("can_{i:02}");
        fresh(l, at(new(&id, &format!("res_{i}")), same + secs(offset))).await;
        expected.push((same + secs(offset), id));
    }
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    for limit in [1, 2, 3, 5, 12] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = l.list(&ListFilter::default(), limit, cursor.as_deref()).await.unwrap();
            seen.extend(page.records.iter().map(|r| r.id.clone()));
            assert!(seen.len() <= 12, "limit {limit}: {seen:?}");
            if !page.has_more {
                break;
            }
            cursor = page.records.last().map(|r| r.id.clone());
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
}

async fn sweep_keeps_young_keys_and_keys_in_flight(t: Env) {
    let l = &t.ledger;
    let now = T0 + secs(48 * 3600);
    let cutoff = now - secs(24 * 3600);
    // Old and ended, old and still processing, young and ended.
    fresh(l, at(keyed("can_1", "res_1", "old"), T0)).await;
    l.finish("can_1", A, failed(T0 + secs(1))).await.unwrap();
    fresh(l, at(keyed("can_2", "res_2", "old-in-flight"), T0)).await;
    fresh(l, at(keyed("can_3", "res_3", "young"), cutoff + secs(1))).await;
    let young = l.finish("can_3", A, failed(cutoff + secs(2))).await.unwrap();
    // Exactly at the cutoff: not older than it.
    fresh(l, at(keyed("can_4", "res_4", "edge"), cutoff)).await;
    let edge = l.finish("can_4", A, failed(cutoff + secs(2))).await.unwrap();

    assert_eq!(l.sweep_idempotency_keys(cutoff).await.unwrap(), 1);
    assert_eq!(l.sweep_idempotency_keys(cutoff).await.unwrap(), 0);
    // The old key is gone: the same request now starts afresh (its reference had failed).
    fresh(l, at(keyed("can_5", "res_1", "old"), now)).await;
    assert_eq!(l.begin(at(keyed("can_6", "res_2", "old-in-flight"), now)).await.unwrap(), Begin::KeyInFlight);
    assert_eq!(l.begin(at(keyed("can_7", "res_3", "young"), now)).await.unwrap(), Begin::Replay(young));
    assert_eq!(l.begin(at(keyed("can_8", "res_4", "edge"), now)).await.unwrap(), Begin::Replay(edge));
    // The records themselves are never swept.
    assert!(l.get("can_1").await.unwrap().is_some());
}

async fn stats_count_the_backlog(t: Env) {
    let l = &t.ledger;
    let stats = l.stats().await.unwrap();
    assert_eq!((stats.processing, stats.oldest_processing_created_at), (0, None));
    fresh(l, at(new("can_1", "res_1"), T0)).await;
    fresh(l, at(new("can_2", "res_2"), T0 + secs(5))).await;
    fresh(l, at(new("can_3", "res_3"), T0 + secs(9))).await;
    l.finish("can_1", A, cancelled(T0 + secs(10))).await.unwrap();
    let stats = l.stats().await.unwrap();
    assert_eq!((stats.processing, stats.oldest_processing_created_at), (2, Some(T0 + secs(5))));
}

async fn count_by_status_counts_only_that_status(t: Env) {
    let l = &t.ledger;
    assert_eq!(l.count(Status::NeedsReview).await.unwrap(), 0, "an empty ledger");
    for (id, reference) in [("can_1", "res_1"), ("can_2", "res_2"), ("can_3", "res_3"), ("can_4", "res_4")] {
        fresh(l, new(id, reference)).await;
    }
    l.finish("can_1", A, needs_review(T0 + secs(1))).await.unwrap();
    l.finish("can_2", A, needs_review(T0 + secs(2))).await.unwrap();
    l.finish("can_3", A, cancelled(T0 + secs(3))).await.unwrap();
    assert_eq!(l.count(Status::NeedsReview).await.unwrap(), 2);
    assert_eq!(l.count(Status::Processing).await.unwrap(), 1);
    assert_eq!(l.count(Status::Cancelled).await.unwrap(), 1);
    assert_eq!(l.count(Status::Failed).await.unwrap(), 0);
}

/// The invariants hold against any statement, not just the ledger's own.
async fn database_enforces_the_invariants(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_1", "res_1")).await;
    let done = l.finish("can_1", A, cancelled(T0 + secs(1))).await.unwrap();
    fresh(l, new("can_2", "res_2")).await;
    fresh(l, new("can_3", "res_3")).await;
    l.finish("can_3", A, failed(T0 + secs(1))).await.unwrap();
    let second_live = "INSERT INTO cancellations (id, client, provider, account, reference, status, fingerprint, \
                       request, metadata, created_at, updated_at) SELECT 'can_9', client, provider, account, \
                       reference, 'processing', fingerprint, request, metadata, created_at, updated_at \
                       FROM cancellations WHERE id = 'can_2'";
    let statements = [
        (second_live, "a second live record for one reference"),
        // Only the trigger stands in the way of these two (every CHECK would pass).
        ("UPDATE cancellations SET status = 'processing' WHERE id = 'can_3'", "a failed record resurrected"),
        ("UPDATE cancellations SET status = 'needs_review' WHERE id = 'can_3'", "a final status changed"),
        ("UPDATE cancellations SET status = 'bogus' WHERE id = 'can_2'", "an unknown status"),
        ("UPDATE cancellations SET status = 'cancelled' WHERE id = 'can_2'", "cancelled without cancelled_at"),
    ];
    match t.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            for (sql, what) in statements {
                assert!(sqlx::query(sql).execute(&mut conn).await.is_err(), "{what} was accepted");
            }
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
            assert_eq!(mode, "wal");
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
            for (sql, what) in statements {
                assert!(sqlx::query(sql).execute(&mut conn).await.is_err(), "{what} was accepted");
            }
            conn.close().await.unwrap();
        }
    }
    assert_eq!(l.get("can_1").await.unwrap(), Some(done));
}

async fn times_and_json_round_trip(t: Env) {
    let l = &t.ledger;
    let plus2 = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let local = datetime!(2026-04-01 12:00:00.123456789 +02:00);
    let metadata = json!({"order_id": "A-1001", "note": "çé ✓ \"quoted\"", "n": "1"});
    let n = NewCancellation {
        metadata: metadata.clone(),
        request: json!({"reason": null, "language": "EN"}),
        now: local,
        lease_until: (local + LEASE).to_offset(plus2),
        ..new("can_1", "res_1")
    };
    let r = fresh(l, n).await;
    let utc = datetime!(2026-04-01 10:00:00.123456 UTC);
    assert_eq!(r.created_at, utc, "UTC, microseconds");
    assert_eq!(r.created_at.offset(), time::UtcOffset::UTC);
    assert_eq!(r.lease_until, Some(utc + LEASE));
    assert_eq!(r.metadata, metadata);
    assert_eq!(r.request, json!({"reason": null, "language": "EN"}));
    let problem = json!({"type": "/errors/upstream_error", "status": 502, "upstream": {"body": [1, 2.5, {"x": true}]}});
    let fin = Final {
        error: Some(problem.clone()),
        upstream: Some(StoredJson::of_value(&json!(null))),
        ..failed(local + secs(1))
    };
    let done = l.finish("can_1", A, fin).await.unwrap();
    assert_eq!(done.error, Some(problem));
    assert_eq!(done.upstream, None, "JSON null is stored as absent");
    assert_eq!(l.get("can_1").await.unwrap(), Some(done));
}

async fn begin_with_attempt_starts_the_first_attempt_with_the_record(t: Env) {
    let l = &t.ledger;
    let Begin::Fresh(r) = l.begin_with_attempt(keyed("can_1", "res_1", "k1")).await.unwrap() else {
        panic!("expected Fresh")
    };
    assert_eq!((r.attempts, r.ambiguous, r.status), (1, true, Status::Processing), "in flight counts as ambiguous");
    assert_eq!(l.get("can_1").await.unwrap(), Some(r));
    let rows = l.attempts("can_1").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].n, rows[0].owner.as_str(), rows[0].started_at), (1, A, T0));
    assert!(rows[0].is_unfinished());
    // The next attempt is number 2; the same key and the same reference answer as with `begin`.
    assert_eq!(l.start_attempt("can_1", A, T0 + secs(1)).await.unwrap(), 2);
    assert_eq!(l.begin_with_attempt(keyed("can_2", "res_1", "k1")).await.unwrap(), Begin::KeyInFlight);
    assert!(
        matches!(l.begin_with_attempt(new("can_3", "res_1")).await.unwrap(), Begin::ReferenceBusy(b) if b.id == "can_1")
    );
    assert_eq!(l.get("can_2").await.unwrap(), None);
    assert!(l.attempts("can_3").await.unwrap().is_empty(), "nothing stored for a refused begin");
}

async fn finish_with_attempt_stores_the_answer_and_the_end_together(t: Env) {
    let l = &t.ledger;
    let Begin::Fresh(_) = l.begin_with_attempt(new("can_1", "res_1")).await.unwrap() else { panic!("expected Fresh") };
    let t1 = T0 + secs(1);
    let answer = AttemptResult {
        finished_at: t1,
        latency_ms: 80,
        outcome: "cancelled".to_owned(),
        http_status: Some(200),
        body: Some(json!({"status": "cancelled"})),
        error: None,
    };
    // Not the lease holder: refused, but what went over the wire is kept.
    let lost = l.finish_with_attempt("can_1", B, 1, answer.clone(), cancelled(t1)).await;
    assert!(matches!(lost, Err(LedgerError::LeaseLost { .. })), "{lost:?}");
    let r = l.get("can_1").await.unwrap().unwrap();
    assert_eq!((r.status, r.ambiguous), (Status::Processing, false));
    assert_eq!(l.attempts("can_1").await.unwrap()[0].outcome, "cancelled");
    // The holder ends it (the attempt, already finished the same way, is a no-op).
    let done = l.finish_with_attempt("can_1", A, 1, answer.clone(), cancelled(t1)).await.unwrap();
    assert_eq!((done.status, done.ambiguous, done.attempts), (Status::Cancelled, false, 1));
    assert_eq!(l.get("can_1").await.unwrap(), Some(done.clone()));
    // Repeated (a lost acknowledgement): the stored record.
    assert_eq!(l.finish_with_attempt("can_1", A, 1, answer.clone(), cancelled(t1)).await.unwrap(), done);

    // Another answer for a finished attempt is a conflict, and the record's end is not stored.
    let Begin::Fresh(_) = l.begin_with_attempt(new("can_2", "res_2")).await.unwrap() else { panic!("expected Fresh") };
    l.finish_attempt("can_2", 1, outcome("transient", t1)).await.unwrap();
    let conflict = l.finish_with_attempt("can_2", A, 1, answer.clone(), cancelled(t1)).await;
    assert!(matches!(conflict, Err(LedgerError::Conflict { .. })), "{conflict:?}");
    assert_eq!(l.get("can_2").await.unwrap().unwrap().status, Status::Processing);
    // An ambiguous answer ends as ambiguous.
    let Begin::Fresh(_) = l.begin_with_attempt(new("can_3", "res_3")).await.unwrap() else { panic!("expected Fresh") };
    let review = l.finish_with_attempt("can_3", A, 1, outcome(AMBIGUOUS, t1), needs_review(t1)).await.unwrap();
    assert_eq!((review.status, review.ambiguous), (Status::NeedsReview, true));
}

/// `begin_with_attempt` and `finish` answer with the JSON they wrote rather than parsing it back
/// from the row: what they return must be exactly what a read returns, whatever the provider said.
async fn the_record_a_write_returns_is_the_record_read_back(t: Env) {
    let l = &t.ledger;
    let body = json!({
        "status": "cancelled", "amount": 12.5, "tiny": 1e-7, "big": 18446744073709551615u64, "neg": -9007199254740993i64,
        "text": "caf\u{e9} \u{1f697} \"quoted\" \\ tab\t line\n", "empty": {}, "list": [null, true, 0, [], {"a": null}],
        "null": null
    });
    let mut n = new("can_1", "res_1");
    n.metadata = json!({"note": "\u{e9}t\u{e9} \u{1f600}", "k": "v"});
    let Begin::Fresh(begun) = l.begin_with_attempt(n).await.unwrap() else { panic!("expected Fresh") };
    assert_eq!(l.get("can_1").await.unwrap(), Some(begun));
    let t1 = T0 + secs(1);
    let answer = AttemptResult { body: Some(body.clone()), ..outcome("cancelled", t1) };
    let mut fin = cancelled(t1);
    fin.upstream = Some(StoredJson::of_value(&json!({"status": 200, "body": body})));
    let done = l.finish_with_attempt("can_1", A, 1, answer, fin).await.unwrap();
    assert_eq!(done.upstream.as_ref().map(|u| u.to_value()["body"].clone()), Some(body.clone()));
    assert_eq!(l.get("can_1").await.unwrap(), Some(done));
    // A JSON null written is no value read back, on the returned record as on the stored one.
    let Begin::Fresh(_) = l.begin_with_attempt(new("can_2", "res_2")).await.unwrap() else { panic!("expected Fresh") };
    let mut fin = failed(t1);
    fin.upstream = Some(StoredJson::of_value(&Value::Null));
    let done = l.finish_with_attempt("can_2", A, 1, outcome("refused", t1), fin).await.unwrap();
    assert_eq!(done.upstream, None);
    assert_eq!(l.get("can_2").await.unwrap(), Some(done));
}

/// Writes run together (on SQLite, grouped into one transaction): those that fail or undo
/// themselves take nothing of the others with them.
async fn concurrent_writes_that_fail_leave_the_others_stored(t: Env) {
    let l = &t.ledger;
    fresh(l, new("can_done", "res_done")).await;
    l.finish("can_done", A, cancelled(T0)).await.unwrap();
    fresh(l, new("can_att", "res_att")).await;
    assert_eq!(l.start_attempt("can_att", A, T0).await.unwrap(), 1);
    l.finish_attempt("can_att", 1, outcome("transient", T0)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..80 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                // Fresh records, each with its first attempt.
                0 => match l.begin_with_attempt(new(&format!("can_{i:02}"), &format!("res_{i:02}"))).await {
                    Ok(Begin::Fresh(_)) => "fresh",
                    other => panic!("{other:?}"),
                },
                // Refused: the record is final.
                1 => match l.start_attempt("can_done", A, T0).await {
                    Err(LedgerError::LeaseLost { .. }) => "refused",
                    other => panic!("{other:?}"),
                },
                // Repeated: nothing to change, undone.
                2 => match l.finish_attempt("can_att", 1, outcome("transient", T0)).await {
                    Ok(()) => "repeated",
                    other => panic!("{other:?}"),
                },
                // Contradicting what is stored: an error, after a statement ran.
                _ => match l.finish_attempt("can_att", 1, outcome("cancelled", T0)).await {
                    Err(LedgerError::Conflict { .. }) => "conflict",
                    other => panic!("{other:?}"),
                },
            }
        }));
    }
    let mut counts = std::collections::HashMap::new();
    for task in tasks {
        *counts.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    let want = [("fresh", 20), ("refused", 20), ("repeated", 20), ("conflict", 20)];
    assert_eq!(counts, want.into_iter().collect());
    let filter = ListFilter { status: Some(Status::Processing), ..ListFilter::default() };
    let stored = l.list(&filter, 100, None).await.unwrap().records;
    assert_eq!(stored.len(), 21);
    assert_eq!(stored.iter().filter(|r| r.attempts == 1 && r.ambiguous).count(), 20);
    assert_eq!(l.attempts("can_att").await.unwrap()[0].outcome, "transient");
    assert_eq!(l.get("can_done").await.unwrap().unwrap().status, Status::Cancelled);
}

/// A replay reads what is stored and answers; it needs no turn at the writer, so on SQLite it is
/// answered even while another connection holds the file's write lock.
async fn replays_are_answered_from_what_is_stored(t: Env) {
    let l = &t.ledger;
    let original = fresh(l, keyed("can_1", "res_1", "k1")).await;
    let done = l.finish("can_1", A, cancelled(T0 + secs(1))).await.unwrap();
    assert_ne!(original, done);
    let review = fresh(l, new("can_2", "res_2")).await;
    let review = l.finish(&review.id, A, needs_review(T0 + secs(1))).await.unwrap();
    let busy = fresh(l, new("can_3", "res_3")).await;

    let locker = match t.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
            Some(conn)
        }
        Backend::Postgres => None,
    };
    // A fresh begin has to wait for the lock…
    let waiting = {
        let l = l.clone();
        tokio::spawn(async move { l.begin(new("can_4", "res_4")).await })
    };
    // …the replays do not.
    let replays = async {
        assert_eq!(l.begin(keyed("can_9", "res_1", "k1")).await.unwrap(), Begin::Replay(done.clone()));
        assert_eq!(l.begin(keyed("can_9", "res_1", "k1")).await.unwrap(), Begin::Replay(done.clone()));
        assert_eq!(l.begin(keyed("can_9", "res_9", "k1")).await.unwrap(), Begin::KeyReused);
        assert_eq!(l.begin(new("can_9", "res_1")).await.unwrap(), Begin::ReferenceCancelled(done.clone()));
        assert_eq!(l.begin(keyed("can_9", "res_1", "k9")).await.unwrap(), Begin::ReferenceCancelled(done.clone()));
        assert_eq!(l.begin(new("can_9", "res_2")).await.unwrap(), Begin::ReferenceNeedsReview(review.clone()));
        assert_eq!(l.begin(new("can_9", "res_3")).await.unwrap(), Begin::ReferenceBusy(busy.clone()));
    };
    tokio::time::timeout(Duration::from_secs(5), replays).await.expect("replays waited for the writer");
    if let Some(mut conn) = locker {
        assert!(!waiting.is_finished(), "the fresh begin did not wait for the write lock");
        sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    assert!(matches!(waiting.await.unwrap().unwrap(), Begin::Fresh(r) if r.id == "can_4"));
    assert_eq!(l.get("can_9").await.unwrap(), None, "no replay stored anything");
}

// ---- not per backend ---------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_creates_missing_directories_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/ledger.db");
    let ledger = Ledger::connect(&format!("sqlite://{}", path.display()), LedgerOptions::default()).await.unwrap();
    assert_eq!(ledger.backend(), Backend::Sqlite);
    assert!(path.exists());
    ledger.migrate().await.unwrap();
    ledger.close().await;
    // Reopened: the data and the migrations are there.
    let again = Ledger::connect(&format!("sqlite://{}", path.display()), LedgerOptions::default()).await.unwrap();
    assert!(again.is_migrated().await.unwrap());
    again.close().await;
}

/// After `close`, every read and write is answered "closed" at once, however it races the close:
/// none is left waiting for a connection that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sqlite_ledger_answers_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        Ledger::connect(&format!("sqlite://{}/l.db", dir.path().display()), LedgerOptions::default()).await.unwrap();
    ledger.migrate().await.unwrap();
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let l = ledger.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    l.get("can_1").await.map(drop)
                } else {
                    l.begin(new(&format!("can_{i}"), &format!("res_{i}"))).await.map(drop)
                }
            })
        })
        .collect();
    ledger.close().await;
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut closed = 0;
        for call in calls {
            match call.await.unwrap() {
                Ok(()) => {}
                Err(LedgerError::Closed) => closed += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        closed
    })
    .await
    .expect("a call was left waiting after close");
    assert!(answered <= 200);
    assert!(matches!(ledger.get("can_1").await, Err(LedgerError::Closed)));
    assert!(matches!(ledger.begin(new("can_x", "res_x")).await, Err(LedgerError::Closed)));
}

/// The log is copied back into the database file while the ledger is open, by the
/// checkpointer's thread (the writer's `COMMIT` no longer does it), a log of a few commits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ledgers_log_is_checkpointed_while_it_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.db");
    let ledger = Ledger::connect(&format!("sqlite://{}", file.display()), LedgerOptions::default()).await.unwrap();
    ledger.migrate().await.unwrap();
    let size = || std::fs::metadata(&file).unwrap().len();
    let before = size();
    for i in 0..50 {
        ledger.begin(new(&format!("can_{i}"), &format!("res_{i}"))).await.unwrap();
    }
    let grew = tokio::time::timeout(Duration::from_secs(10), async {
        while size() <= before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(grew.is_ok(), "the database file stayed at {before} bytes: nothing was checkpointed");
    // What was checkpointed is what was committed.
    assert!(ledger.get("can_49").await.unwrap().is_some());
    ledger.close().await;
}

#[tokio::test]
async fn bad_urls_are_refused_without_leaking_secrets() {
    let e = Ledger::connect("mysql://u:s3cret@db/x", LedgerOptions::default()).await.unwrap_err();
    assert!(matches!(e, LedgerError::InvalidUrl { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");

    // Nothing listens on port 1.
    let options = LedgerOptions { acquire_timeout: Duration::from_millis(300), ..LedgerOptions::default() };
    let e = Ledger::connect("postgres://u:s3cret@127.0.0.1:1/x", options).await.unwrap_err();
    assert!(matches!(e, LedgerError::Connect { .. }), "{e:?}");
    assert!(e.is_transient());
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("u:***@127.0.0.1:1"), "{shown}");
}

#[tokio::test]
async fn ledger_debug_shows_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/l.db?password=s3cret", dir.path().display());
    // SQLite refuses the unknown parameter; the error must not echo it.
    let e = Ledger::connect(&url, LedgerOptions::default()).await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
    let ledger =
        Ledger::connect(&format!("sqlite://{}/l.db", dir.path().display()), LedgerOptions::default()).await.unwrap();
    assert!(format!("{ledger:?}").contains("Sqlite"));
    ledger.close().await;
}

fn new_batch(id: &str, key: Option<&str>, items: &[&str]) -> NewBatch {
    NewBatch {
        id: id.to_owned(),
        client: "c1".to_owned(),
        idempotency_key: key.map(str::to_owned),
        fingerprint: format!("fp-{}", items.join(",")),
        metadata: json!({"trip_id": "T-9"}),
        item_ids: items.iter().map(|i| (*i).to_owned()).collect(),
        owner: A.to_owned(),
        now: T0,
        recording_until: T0 + LEASE,
    }
}

fn item_of(batch: &str, id: &str, reference: &str) -> NewCancellation {
    NewCancellation { batch_id: Some(batch.to_owned()), ..new(id, reference) }
}

async fn batch_and_items_are_stored_before_any_item_is_recorded(t: Env) {
    let l = &t.ledger;
    let BatchBegin::Fresh(b) = l.begin_batch(new_batch("cb_1", None, &["can_1", "can_2"])).await.unwrap() else {
        panic!("expected a fresh batch");
    };
    assert_eq!((b.id.as_str(), b.client.as_str(), &b.metadata), ("cb_1", "c1", &json!({"trip_id": "T-9"})));
    assert_eq!(b.recording_until, Some(T0 + LEASE));
    assert!(b.is_recording(T0) && !b.is_recording(T0 + LEASE));
    let planned: Vec<_> = b.items.iter().map(|i| (i.index, i.cancellation_id.as_deref(), i.record.is_none())).collect();
    assert_eq!(planned, [(0, Some("can_1"), true), (1, Some("can_2"), true)]);
    // The batch survives another connection (a restart) as stored.
    let again = Ledger::connect(&t.url, support::options()).await.unwrap();
    assert_eq!(again.get_batch("cb_1").await.unwrap(), Some(b));
    assert_eq!(l.get_batch("cb_nope").await.unwrap(), None);
    // An empty or oversized batch is refused, storing nothing.
    assert!(matches!(l.begin_batch(new_batch("cb_2", None, &[])).await, Err(LedgerError::InvalidInput(_))));
    let many: Vec<String> = (0..51).map(|i| format!("can_x{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(l.begin_batch(new_batch("cb_3", None, &many)).await, Err(LedgerError::InvalidInput(_))));
    assert_eq!(l.get_batch("cb_3").await.unwrap(), None);
}

async fn batch_items_follow_their_records_and_their_ends(t: Env) {
    let l = &t.ledger;
    // An earlier single cancel of res_3, already cancelled: item 2 is answered by it.
    fresh(l, new("can_old", "res_3")).await;
    l.finish("can_old", A, cancelled(T0)).await.unwrap();
    l.begin_batch(new_batch("cb_1", None, &["can_1", "can_2", "can_3"])).await.unwrap();
    let r1 = fresh(l, item_of("cb_1", "can_1", "res_1")).await;
    assert_eq!(r1.batch_id.as_deref(), Some("cb_1"));
    assert!(matches!(l.begin(item_of("cb_1", "can_3", "res_3")).await.unwrap(), Begin::ReferenceCancelled(_)));
    let shed = json!({"code": "rate_limited", "status": 429});
    let ends = vec![
        (1, ItemEnd::Refused { error: shed.clone(), http_status: 429 }),
        (2, ItemEnd::Cancellation("can_old".to_owned())),
    ];
    l.seal_batch("cb_1", A, ends, T0 + secs(1)).await.unwrap();
    let b = l.get_batch("cb_1").await.unwrap().unwrap();
    assert_eq!(b.recording_until, None, "sealed");
    assert_eq!(b.items[0].record.as_ref().map(|r| (r.id.as_str(), r.status)), Some(("can_1", Status::Processing)));
    assert_eq!((b.items[1].cancellation_id.as_deref(), &b.items[1].error), (None, &Some(shed)));
    assert_eq!(b.items[1].http_status, Some(429));
    let old = b.items[2].record.as_ref().unwrap();
    assert_eq!((old.id.as_str(), old.status, old.batch_id.as_deref()), ("can_old", Status::Cancelled, None));
    // The item follows its record: nothing about the batch is written when the record ends.
    l.finish("can_1", A, cancelled(T0 + secs(2))).await.unwrap();
    let b = l.get_batch("cb_1").await.unwrap().unwrap();
    assert_eq!(b.items[0].record.as_ref().map(|r| r.status), Some(Status::Cancelled));
    // Sealing again (a lost acknowledgement) changes nothing.
    l.seal_batch("cb_1", A, Vec::new(), T0 + secs(3)).await.unwrap();
    assert_eq!(l.get_batch("cb_1").await.unwrap().unwrap().items, b.items);
}

async fn batch_key_replays_refuses_another_body_and_waits_while_recording(t: Env) {
    let l = &t.ledger;
    let first = new_batch("cb_1", Some("k1"), &["can_1"]);
    assert!(matches!(l.begin_batch(first.clone()).await.unwrap(), BatchBegin::Fresh(_)));
    // While the first request records its items: in flight, and nothing new stored.
    let retry = NewBatch { id: "cb_2".to_owned(), item_ids: vec!["can_9".to_owned()], ..first.clone() };
    assert_eq!(l.begin_batch(retry.clone()).await.unwrap(), BatchBegin::KeyInFlight);
    let other = NewBatch { fingerprint: "fp-other".to_owned(), ..retry.clone() };
    assert_eq!(l.begin_batch(other.clone()).await.unwrap(), BatchBegin::KeyReused);
    assert_eq!(l.get_batch("cb_2").await.unwrap(), None);
    // Sealed: the same body replays the first batch.
    l.seal_batch("cb_1", A, Vec::new(), T0).await.unwrap();
    let BatchBegin::Replay(b) = l.begin_batch(retry.clone()).await.unwrap() else { panic!("expected a replay") };
    assert_eq!(b.id, "cb_1");
    assert_eq!(l.begin_batch(other).await.unwrap(), BatchBegin::KeyReused);
    // A batch whose recording was cut short (its process died) replays once its time is up.
    l.begin_batch(new_batch("cb_3", Some("k3"), &["can_3"])).await.unwrap();
    let late = NewBatch { id: "cb_4".to_owned(), now: T0 + LEASE, ..new_batch("cb_3", Some("k3"), &["can_3"]) };
    let BatchBegin::Replay(b) = l.begin_batch(late).await.unwrap() else { panic!("expected a replay") };
    assert_eq!((b.id.as_str(), b.items[0].record.is_none()), ("cb_3", true));
    // Keys are per client.
    let c2 = NewBatch { id: "cb_5".to_owned(), client: "c2".to_owned(), ..first };
    assert!(matches!(l.begin_batch(c2).await.unwrap(), BatchBegin::Fresh(_)));
}

fn resolve(status: ResolvedStatus, note: &str, now: OffsetDateTime) -> Resolve {
    let error = (status == ResolvedStatus::Failed)
        .then(|| json!({"code": "not_cancellable", "reason": "resolved_by_operator", "detail": note}));
    let http_status = if status == ResolvedStatus::Failed { 409 } else { 200 };
    Resolve { by: "ops".to_owned(), note: note.to_owned(), status, error, http_status, now }
}

/// A record of `reference` that ended in review after two attempts.
async fn in_review(l: &Ledger, id: &str, reference: &str, recheck_at: Option<OffsetDateTime>) -> Record {
    fresh(l, new(id, reference)).await;
    for _ in 0..2 {
        let n = l.start_attempt(id, A, T0).await.unwrap();
        l.finish_attempt(id, n, outcome(AMBIGUOUS, T0 + secs(1))).await.unwrap();
    }
    l.finish(id, A, Final { recheck_at, ..needs_review(T0 + secs(2)) }).await.unwrap()
}

async fn a_review_is_resolved_once_with_who_when_and_why(t: Env) {
    let l = &t.ledger;
    let review = in_review(l, "can_1", "res_1", None).await;
    let at = T0 + secs(60);
    let Resolved::Fresh(done) =
        l.resolve("can_1", resolve(ResolvedStatus::Cancelled, "seen at the provider", at)).await.unwrap()
    else {
        panic!("not resolved")
    };
    assert_eq!((done.status, done.cancelled_at, done.http_status), (Status::Cancelled, Some(at), Some(200)));
    assert_eq!((done.attempts, done.error.as_ref()), (review.attempts, None), "a resolution sends nothing");
    let resolution = done.resolution.clone().unwrap();
    assert_eq!((resolution.by.as_str(), resolution.at, resolution.note.as_str()), ("ops", at, "seen at the provider"));
    assert_eq!(resolution.status, Status::Cancelled);
    assert_eq!(l.get("can_1").await.unwrap(), Some(done.clone()));
    assert_eq!(l.attempts("can_1").await.unwrap().len(), 2);

    // The same resolution again is a replay of the stored record; any other is refused, unchanged.
    let again = l.resolve("can_1", resolve(ResolvedStatus::Cancelled, "seen at the provider", at + secs(5))).await;
    assert_eq!(again.unwrap(), Resolved::Replay(done.clone()));
    let other_note = l.resolve("can_1", resolve(ResolvedStatus::Cancelled, "another note", at)).await.unwrap();
    assert_eq!(other_note, Resolved::NotInReview(done.clone()));
    let other_status = l.resolve("can_1", resolve(ResolvedStatus::Failed, "seen at the provider", at)).await.unwrap();
    assert_eq!(other_status, Resolved::NotInReview(done.clone()));
    assert_eq!(l.get("can_1").await.unwrap(), Some(done));

    // Never from processing, nor from a final status reached without review.
    let processing = fresh(l, new("can_2", "res_2")).await;
    let refused = l.resolve("can_2", resolve(ResolvedStatus::Failed, "x", at)).await.unwrap();
    assert_eq!(refused, Resolved::NotInReview(processing.clone()));
    assert_eq!(l.get("can_2").await.unwrap(), Some(processing));
    fresh(l, new("can_3", "res_3")).await;
    let cancelled = l.finish("can_3", A, cancelled(T0 + secs(1))).await.unwrap();
    let refused = l.resolve("can_3", resolve(ResolvedStatus::Cancelled, "x", at)).await.unwrap();
    assert_eq!(refused, Resolved::NotInReview(cancelled));
    assert!(matches!(
        l.resolve("can_unknown", resolve(ResolvedStatus::Cancelled, "x", at)).await,
        Err(LedgerError::NotFound { .. })
    ));
    // A resolution says who and why; a failed one carries its error, a cancelled one none.
    let no_note = Resolve { note: String::new(), ..resolve(ResolvedStatus::Cancelled, "x", at) };
    assert!(matches!(l.resolve("can_2", no_note).await, Err(LedgerError::InvalidInput(_))));
    let no_error = Resolve { error: None, ..resolve(ResolvedStatus::Failed, "x", at) };
    assert!(matches!(l.resolve("can_2", no_error).await, Err(LedgerError::InvalidInput(_))));
}

async fn a_reference_resolved_failed_can_be_cancelled_again(t: Env) {
    let l = &t.ledger;
    in_review(l, "can_1", "res_1", None).await;
    // In review, the reference is answered with its record.
    assert!(matches!(l.begin(new("can_2", "res_1")).await.unwrap(), Begin::ReferenceNeedsReview(_)));
    let Resolved::Fresh(failed) =
        l.resolve("can_1", resolve(ResolvedStatus::Failed, "refused by phone", T0 + secs(9))).await.unwrap()
    else {
        panic!("not resolved")
    };
    assert_eq!((failed.status, failed.http_status, failed.cancelled_at), (Status::Failed, Some(409), None));
    assert_eq!(failed.error.as_ref().unwrap()["detail"], "refused by phone");
    let again = fresh(l, new("can_3", "res_1")).await;
    assert_eq!((again.status, again.resolution.clone()), (Status::Processing, None));
}

async fn a_retry_takes_a_review_back_to_processing_for_a_new_round(t: Env) {
    let l = &t.ledger;
    let review = in_review(l, "can_1", "res_1", Some(T0 + secs(60))).await;
    assert_eq!((review.recheck_at, review.round_start), (Some(T0 + secs(60)), 0));
    let now = T0 + secs(30);
    let retried = l.retry("can_1", B, now).await.unwrap().unwrap();
    assert_eq!(retried.status, Status::Processing);
    assert_eq!((retried.lease_owner.as_deref(), retried.lease_until), (Some(B), Some(now + LEASE)));
    assert_eq!((retried.attempts, retried.round_start, retried.rechecks), (2, 2, 0));
    assert_eq!(
        (&retried.error, &retried.upstream, retried.http_status, retried.recheck_at),
        (&None, &None, None, None)
    );
    assert!(retried.ambiguous, "its history still says an attempt may have reached the provider");
    // Once only: it is processing now, driven by B alone (single flight).
    assert_eq!(l.retry("can_1", A, now).await.unwrap(), None);
    assert!(matches!(l.start_attempt("can_1", A, now).await, Err(LedgerError::LeaseLost { .. })));
    assert!(matches!(l.begin(new("can_2", "res_1")).await.unwrap(), Begin::ReferenceBusy(_)));
    assert_eq!(l.start_attempt("can_1", B, now).await.unwrap(), 3);
    let done = l.finish("can_1", B, cancelled(now + secs(1))).await.unwrap();
    assert_eq!((done.status, done.attempts, done.resolution), (Status::Cancelled, 3, None));
    // Never from a record not in review.
    assert_eq!(l.retry("can_1", B, now).await.unwrap(), None);
    fresh(l, new("can_3", "res_3")).await;
    assert_eq!(l.retry("can_3", B, now).await.unwrap(), None);
    assert_eq!(l.retry("can_unknown", B, now).await.unwrap(), None);
}

async fn rechecks_are_claimed_when_due_and_once(t: Env) {
    let l = &t.ledger;
    in_review(l, "can_1", "res_1", Some(T0 + secs(60))).await;
    in_review(l, "can_2", "res_2", None).await;
    in_review(l, "can_3", "res_3", Some(T0 + secs(120))).await;
    assert!(l.claim_rechecks(A, T0 + secs(59), 10).await.unwrap().is_empty());
    let due = l.claim_rechecks(B, T0 + secs(60), 10).await.unwrap();
    assert_eq!(due.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["can_1"]);
    let r = &due[0];
    assert_eq!((r.status, r.lease_owner.as_deref(), r.rechecks, r.round_start), (Status::Processing, Some(B), 1, 2));
    assert_eq!(r.recheck_at, None);
    assert!(l.claim_rechecks(A, T0 + secs(61), 10).await.unwrap().is_empty(), "claimed once");
    // Still unsure: back in review, with the next re-check scheduled by the driver.
    let n = l.start_attempt("can_1", B, T0 + secs(61)).await.unwrap();
    let fin = Final { recheck_at: Some(T0 + secs(600)), ..needs_review(T0 + secs(62)) };
    let again = l.finish_with_attempt("can_1", B, n, outcome(AMBIGUOUS, T0 + secs(62)), fin).await.unwrap();
    assert_eq!((again.status, again.rechecks, again.recheck_at), (Status::NeedsReview, 1, Some(T0 + secs(600))));
    // A resolution cancels any re-check.
    let Resolved::Fresh(resolved) =
        l.resolve("can_3", resolve(ResolvedStatus::Cancelled, "ok", T0 + secs(70))).await.unwrap()
    else {
        panic!("not resolved")
    };
    assert_eq!(resolved.recheck_at, None);
    assert!(l.claim_rechecks(A, T0 + secs(599), 10).await.unwrap().is_empty());
    assert_eq!(l.claim_rechecks(A, T0 + secs(600), 10).await.unwrap().len(), 1);
    // Only a review is re-checked.
    fresh(l, new("can_4", "res_4")).await;
    let wrong = Final { recheck_at: Some(T0), ..failed(T0) };
    assert!(matches!(l.finish("can_4", A, wrong).await, Err(LedgerError::InvalidInput(_))));
}

async fn the_database_allows_only_the_ways_out_of_review(t: Env) {
    let l = &t.ledger;
    in_review(l, "can_1", "res_1", None).await;
    fresh(l, new("can_2", "res_2")).await;
    in_review(l, "can_3", "res_3", None).await;
    let Resolved::Fresh(resolved) =
        l.resolve("can_3", resolve(ResolvedStatus::Failed, "no", T0 + secs(9))).await.unwrap()
    else {
        panic!("not resolved")
    };
    let when = "'2026-04-01T10:00:05.000000Z'";
    let resolution =
        format!("resolution_by = 'x', resolution_at = {when}, resolution_note = 'n', resolution_status = 'cancelled'");
    let refused = [
        (
            format!("UPDATE cancellations SET status = 'cancelled', cancelled_at = {when} WHERE id = 'can_1'"),
            "a review cancelled without a resolution",
        ),
        (
            "UPDATE cancellations SET status = 'failed' WHERE id = 'can_1'".to_owned(),
            "a review failed without a resolution",
        ),
        (
            "UPDATE cancellations SET status = 'processing' WHERE id = 'can_1'".to_owned(),
            "a review driven again without a lease",
        ),
        (format!("UPDATE cancellations SET {resolution} WHERE id = 'can_1'"), "a resolution without leaving review"),
        (
            format!(
                "UPDATE cancellations SET status = 'cancelled', cancelled_at = {when}, {resolution} WHERE id = 'can_2'"
            ),
            "a processing record resolved",
        ),
        (
            format!(
                "UPDATE cancellations SET status = 'cancelled', cancelled_at = {when}, resolution_status = 'cancelled' WHERE id = 'can_1'"
            ),
            "a partial resolution",
        ),
        (
            "UPDATE cancellations SET resolution_note = 'rewritten' WHERE id = 'can_3'".to_owned(),
            "a resolution changed",
        ),
        (
            format!(
                "UPDATE cancellations SET status = 'processing', lease_owner = 'x', lease_until = {when}, \
                  resolution_by = NULL, resolution_at = NULL, resolution_note = NULL, resolution_status = NULL \
                  WHERE id = 'can_3'"
            ),
            "a resolved record driven again",
        ),
        (
            "UPDATE cancellations SET status = 'needs_review' WHERE id = 'can_3'".to_owned(),
            "a resolved record back in review",
        ),
    ];
    let allowed = format!(
        "UPDATE cancellations SET status = 'cancelled', cancelled_at = {when}, http_status = 200, {resolution} WHERE id = 'can_1'"
    );
    macro_rules! check {
        ($conn:expr) => {{
            let conn = &mut $conn;
            for (sql, what) in &refused {
                assert!(sqlx::query(sql).execute(&mut *conn).await.is_err(), "{what} was accepted");
            }
            sqlx::query(&allowed).execute(&mut *conn).await.unwrap();
        }};
    }
    match t.backend() {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
            check!(conn);
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
            check!(conn);
            conn.close().await.unwrap();
        }
    }
    assert_eq!(l.get("can_3").await.unwrap(), Some(resolved));
    assert_eq!(l.get("can_1").await.unwrap().unwrap().resolution.unwrap().by, "x");
}
