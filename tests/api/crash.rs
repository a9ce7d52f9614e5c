//! SPEC §6: a crash (kill -9) at any moment loses no accepted cancellation, and nothing
//! confirmed is sent again. The real binary on a SQLite ledger file, the sandbox in this
//! process; the gateway is killed (a) while the provider holds the request without having
//! cancelled, (b) while the provider is still working on it, (c) after the provider cancelled but
//! before the gateway heard, (d) between recording the provider's answer and ending the record,
//! (e) after the gateway recorded the cancellation. A restart on the
//! same ledger resumes at once (SQLite, SPEC §5) and ends every record.

use std::path::Path;
use std::time::{Duration, Instant};

use cancelgate_ledger::{AttemptResult, Begin, Ledger, LedgerOptions, NewCancellation};
use cancelgate_sandbox::{CallCount, Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, seeds};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::process::{Gateway, sandbox_env, until};

/// How long a restarted gateway may take to drive a resumed record to its end: far less than the
/// lease (60 s here), so only the start-up resume can explain it.
const RESUME_WITHIN: Duration = Duration::from_secs(10);

/// Overrides for a crash test: the ledger in `dir`, providers at the sandbox, a caller answered
/// 202 after 1 s (short, yet long enough for a record to be stored on a loaded machine: a record
/// not stored by then is a 503 `ledger_unavailable`, SPEC §12), upstream attempts that outlive the
/// kill, a lease far longer than the test.
fn crash_env(sandbox: &Sandbox, dir: &Path) -> Vec<(String, String)> {
    let mut env = sandbox_env(sandbox);
    env.extend(
        [
            ("CANCELGATE__LEDGER__URL", format!("sqlite://{}/ledger.db", dir.display())),
            ("CANCELGATE__LEDGER__LEASE_MS", "60000".to_owned()),
            ("CANCELGATE__LIMITS__RESPOND_WITHIN_MS", "1000".to_owned()),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "20000".to_owned()),
            ("CANCELGATE__PROVIDERS__FRONTPAYMENT__TIMEOUT_MS", "20000".to_owned()),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__BACKOFF_BASE_MS", "10".to_owned()),
            ("CANCELGATE__PROVIDERS__FRONTPAYMENT__RETRY__BACKOFF_BASE_MS", "10".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

fn calls(sandbox: &Sandbox, provider: SimulatedProvider, reference: &str) -> CallCount {
    sandbox.calls(provider, reference)
}

/// Starts a gateway, asks it to cancel, waits until the provider holds the request, and
/// kills the gateway -9. Returns the cancellation id.
async fn cancel_then_crash(sandbox: &Sandbox, dir: &Path, provider: SimulatedProvider, reference: &str) -> String {
    let env = crash_env(sandbox, dir);
    let gateway = Gateway::start(dir, &env).await;
    let (status, headers, body) =
        gateway.cancel(&json!({"provider": provider.id(), "reference": reference}), None).await;
    assert_eq!(status, 202, "answered before the provider did: {body:#}");
    assert_eq!(body["status"], "processing");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], format!("/v1/cancellations/{id}"));
    // Counted as it arrives, before any fault (`received` counts once the provider handles it).
    until("the provider holds the request", || sandbox.total_cancel_requests(provider) == 1).await;
    let stored = gateway.get(&id).await;
    assert_eq!((stored["status"].as_str(), &stored["attempts"]), (Some("processing"), &json!(1)));
    gateway.kill();
    id
}

/// Restarts on the same ledger and waits for the resumed record's final state.
async fn restart_until_final(sandbox: &Sandbox, dir: &Path, id: &str) -> (Gateway, Value) {
    let started = Instant::now();
    let gateway = Gateway::start(dir, &crash_env(sandbox, dir)).await;
    let record = gateway.wait_final(id, RESUME_WITHIN).await;
    assert!(started.elapsed() < RESUME_WITHIN, "resumed at start, not after the lease");
    (gateway, record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_provider_holds_the_request_uncancelled_it_is_cancelled_once_after_restart() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sandbox.inject(provider, FaultRule::reference(reference, Fault::hang()));

    let id = cancel_then_crash(&sandbox, dir.path(), provider, reference).await;
    assert_eq!(calls(&sandbox, provider, reference).committed, 0, "the provider did not cancel");
    sandbox.clear_faults();
    let (_gateway, record) = restart_until_final(&sandbox, dir.path(), &id).await;

    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert_eq!(record["attempts"], 2, "the lost attempt counts");
    assert_eq!(record["upstream"]["status"], 200);
    let calls = calls(&sandbox, provider, reference);
    assert_eq!((calls.received, calls.committed), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_provider_is_working_it_is_cancelled_once_after_restart() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The provider works for 4 s (well past the caller's 1 s), then cancels and answers (if
    // anyone still listens).
    sandbox.inject(provider, FaultRule::reference(reference, Fault::latency(Duration::from_secs(4))).times(1));

    let id = cancel_then_crash(&sandbox, dir.path(), provider, reference).await;
    let (_gateway, record) = restart_until_final(&sandbox, dir.path(), &id).await;

    // Whether the abandoned request still cancelled or not, the retry settles it: cancelled, once.
    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert_eq!(record["attempts"], 2);
    assert_eq!(sandbox.total_cancel_requests(provider), 2);
    assert_eq!(calls(&sandbox, provider, reference).committed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_provider_cancelled_unheard_it_is_cancelled_without_a_second_cancel() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The provider cancels, then never answers.
    sandbox.inject(provider, FaultRule::reference(reference, Fault::hang()).times(1).commit_then_fail());

    let id = cancel_then_crash(&sandbox, dir.path(), provider, reference).await;
    assert_eq!(calls(&sandbox, provider, reference).committed, 1, "the provider cancelled");
    let (_gateway, record) = restart_until_final(&sandbox, dir.path(), &id).await;

    // "Already cancelled" after our own ambiguous attempt is our cancellation.
    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert!(record["cancelled_at"].is_string());
    assert_eq!(record["error"], Value::Null);
    let calls = calls(&sandbox, provider, reference);
    assert_eq!((calls.received, calls.committed), (2, 1), "never a second committed cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_payment_killed_after_it_cancelled_unheard_needs_review() {
    let (provider, reference) = (SimulatedProvider::FrontPayment, seeds::FRONTPAYMENT_RESERVED);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sandbox.inject(provider, FaultRule::reference(reference, Fault::hang()).times(1).commit_then_fail());

    let id = cancel_then_crash(&sandbox, dir.path(), provider, reference).await;
    let (gateway, record) = restart_until_final(&sandbox, dir.path(), &id).await;

    // Front Payment says "already completed" for cancelled and captured alike: never guessed.
    assert_eq!(record["status"], "needs_review", "{record:#}");
    assert_eq!(record["cancelled_at"], Value::Null);
    assert_eq!(record["upstream"]["body"]["message"], "reservationStatusAlreadyCompleted", "{record:#}");
    assert_eq!(record["error"]["code"], "upstream_error", "the evidence is the answer that decides nothing");
    let calls = calls(&sandbox, provider, reference);
    assert_eq!((calls.received, calls.committed), (2, 1));
    // The reference stays answered by that record: no further cancel is sent.
    let (status, _, again) = gateway.cancel(&json!({"provider": provider.id(), "reference": reference}), None).await;
    assert_eq!(
        (status, again["id"].as_str(), again["status"].as_str()),
        (202, Some(id.as_str()), Some("needs_review"))
    );
    assert_eq!(sandbox.calls(provider, reference).received, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_ledger_recorded_the_cancellation_nothing_is_sent_again() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = crash_env(&sandbox, dir.path());
    let body = json!({"provider": provider.id(), "reference": reference});

    let gateway = Gateway::start(dir.path(), &env).await;
    let (status, _, original) = gateway.cancel(&body, Some("crash-key")).await;
    assert_eq!(status, 200, "{original:#}");
    gateway.kill();
    let gateway = Gateway::start(dir.path(), &env).await;

    let stored = gateway.get(original["id"].as_str().unwrap()).await;
    assert_eq!(stored, original, "the record survived the crash as it was answered");
    for key in [Some("crash-key"), None] {
        let (status, _, again) = gateway.cancel(&body, key).await;
        assert_eq!((status, &again["id"], &again["replayed"]), (200, &original["id"], &json!(true)));
    }
    let calls = calls(&sandbox, provider, reference);
    assert_eq!((calls.received, calls.committed), (1, 1));
}

/// What a gateway killed between its two ledger writes after an answer leaves on disk, written
/// as it did: the attempt and the provider's answer recorded, the record still `processing`.
async fn leave_an_answered_attempt(
    ledger_url: &str,
    id: &str,
    reference: &str,
    outcome: &str,
    status: u16,
    body: &Value,
) {
    let (dead, now) = ("gw_dead", OffsetDateTime::now_utc());
    let ledger = Ledger::connect(ledger_url, LedgerOptions::default()).await.unwrap();
    ledger.migrate().await.unwrap();
    let new = NewCancellation {
        id: id.to_owned(),
        client: "demo".to_owned(),
        provider: "chargeapi".to_owned(),
        account: "default".to_owned(),
        reference: reference.to_owned(),
        idempotency_key: None,
        fingerprint: "fp".to_owned(),
        request: json!({"reason": null, "language": null}),
        metadata: json!({}),
        owner: dead.to_owned(),
        now,
        lease_until: now + time::Duration::minutes(1),
        batch_id: None,
    };
    assert!(matches!(ledger.begin(new).await.unwrap(), Begin::Fresh(_)));
    let n = ledger.start_attempt(id, dead, now).await.unwrap();
    let result = AttemptResult {
        finished_at: now,
        latency_ms: 40,
        outcome: outcome.to_owned(),
        http_status: Some(status),
        body: Some(body.clone()),
        error: None,
    };
    ledger.finish_attempt(id, n, result).await.unwrap();
    ledger.close().await;
}

fn ledger_url(env: &[(String, String)]) -> &str {
    &env.iter().find(|(k, _)| k == "CANCELGATE__LEDGER__URL").unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_recording_the_answer_and_ending_the_record_it_is_cancelled_without_sending_again() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, "res_crashWindow01");
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    // The dead gateway's attempt cancelled it at the provider.
    sandbox.create(provider, &json!({"id": reference, "status": "cancelled"})).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = crash_env(&sandbox, dir.path());
    let id = "can_01JDKILLEDBETWEENWRITES00";
    let answer =
        json!({"id": reference, "object": "reservation", "status": "cancelled", "updated": "2026-04-01T01:38:06.924Z"});
    leave_an_answered_attempt(ledger_url(&env), id, reference, "cancelled", 200, &answer).await;

    let (_gateway, record) = restart_until_final(&sandbox, dir.path(), id).await;

    // Not sent again: a resend would hear "already cancelled", and with no ambiguous attempt
    // before it, that would read as a refusal of a cancellation we made.
    assert_eq!(record["status"], "cancelled", "{record:#}");
    assert_eq!(record["cancelled_at"], "2026-04-01T01:38:06.924Z", "the provider's time, from the recorded answer");
    assert_eq!(record["attempts"], 1);
    assert_eq!(record["upstream"], json!({"status": 200, "body": answer}));
    assert_eq!(sandbox.total_cancel_requests(provider), 0, "a confirmed cancel is never sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_recording_a_refusal_and_ending_the_record_it_fails_without_sending_again() {
    let (provider, reference) = (SimulatedProvider::ChargeApi, seeds::CHARGEAPI_UNKNOWN);
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = crash_env(&sandbox, dir.path());
    let id = "can_01JDKILLEDBETWEENWRITES01";
    let answer = json!({"error": {"type": "invalid_request_error", "code": "resource_missing"}});
    leave_an_answered_attempt(ledger_url(&env), id, reference, "refused", 404, &answer).await;

    let (_gateway, record) = restart_until_final(&sandbox, dir.path(), id).await;

    assert_eq!(record["status"], "failed", "{record:#}");
    assert_eq!(record["error"]["code"], "not_found");
    assert_eq!(record["error"]["cancellation_id"], id);
    assert_eq!(record["attempts"], 1);
    assert_eq!(sandbox.total_cancel_requests(provider), 0, "a final answer is never asked for again");
}
