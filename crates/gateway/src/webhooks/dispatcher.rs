//! The dispatcher: claims due deliveries from the ledger's outbox and sends them, signed.
//!
//! Bounded in concurrency (`webhooks.max_in_flight` deliveries at once PER ENDPOINT, a semaphore
//! each, and claims only for an endpoint with a free slot: a receiver that never answers fills
//! its own slots, never another endpoint's) and in
//! memory (a receiver's answer is read up to [`SNIPPET_BYTES`], never whole; the whole exchange
//! is bounded by the endpoint's `timeout_ms`). It claims right after a commit stored an event
//! (the rule's wake-up) and after each delivery ends (the next event of that reference may be
//! due), and polls every `webhooks.poll_ms` for the rest (retries coming due, other replicas'
//! events, leases of a dead replica). What an answer means is `policy.rs`'s, pure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cancelgate_ledger::{ClaimedDelivery, DeliveryAttempt, DeliveryOutcome, Ledger};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, watch};

use super::config::{Endpoint, Webhooks};
use super::metrics;
use super::policy::{self, Answer};

/// How much of a receiver's answer is read and recorded.
pub const SNIPPET_BYTES: usize = 1024;
/// Deliveries claimed per round trip to the ledger at most.
const CLAIM_BATCH: usize = 64;
/// A delivery's lease outlasts its endpoint's timeout by this much (recording it included);
/// past it another replica may take it over and send it again (at least once).
const LEASE_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Dispatcher {
    ledger: Ledger,
    owner: String,
    webhooks: Arc<Webhooks>,
    client: reqwest::Client,
    wake: Arc<Notify>,
    /// One per endpoint, in the order of `webhooks.endpoints`.
    slots: Arc<[Arc<Semaphore>]>,
    lease: Duration,
}

impl Dispatcher {
    pub fn new(
        ledger: Ledger,
        owner: String,
        webhooks: Arc<Webhooks>,
        wake: Arc<Notify>,
    ) -> Result<Dispatcher, reqwest::Error> {
        let client = reqwest::Client::builder()
            // A delivery goes to the configured URL or fails; a redirect is an answer like any other.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cancelgate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let longest = webhooks.endpoints.iter().map(|e| e.timeout).max().unwrap_or_default();
        Ok(Dispatcher {
            ledger,
            owner,
            slots: webhooks.endpoints.iter().map(|_| Arc::new(Semaphore::new(webhooks.max_in_flight))).collect(),
            webhooks,
            client,
            wake,
            lease: longest + LEASE_MARGIN,
        })
    }

    /// Runs until `stop` turns true: then claims nothing more and waits up to `grace` for the
    /// deliveries in flight (any left unfinished are sent again after their lease).
    pub fn spawn(self, mut stop: watch::Receiver<bool>, grace: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.webhooks.endpoints.is_empty() {
                return;
            }
            loop {
                if *stop.borrow() {
                    break;
                }
                self.claim_and_send().await;
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.webhooks.poll) => {}
                    _ = stop.changed() => {}
                }
            }
            let all = u32::try_from(self.webhooks.max_in_flight).unwrap_or(u32::MAX);
            let drained = async {
                for slots in self.slots.iter() {
                    let _ = slots.acquire_many(all).await;
                }
            };
            if tokio::time::timeout(grace, drained).await.is_err() {
                tracing::warn!("webhook deliveries still in flight at shutdown; they are sent again after their lease");
            }
        })
    }

    /// For each enabled endpoint, claims as many due deliveries as it has free slots, until none
    /// is left.
    async fn claim_and_send(&self) {
        for (endpoint, slots) in self.webhooks.endpoints.iter().zip(self.slots.iter()) {
            if endpoint.enabled {
                self.claim_and_send_to(endpoint, slots).await;
            }
        }
    }

    async fn claim_and_send_to(&self, endpoint: &Endpoint, slots: &Arc<Semaphore>) {
        loop {
            let free = slots.available_permits().min(CLAIM_BATCH);
            if free == 0 {
                // A delivery ending wakes the loop.
                return;
            }
            let now = OffsetDateTime::now_utc();
            let want = u32::try_from(free).unwrap_or(1);
            let claimed =
                match self.ledger.claim_deliveries(&self.owner, now, self.lease, want, Some(&endpoint.name)).await {
                    Ok(claimed) => claimed,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim webhook deliveries; retrying at the next poll");
                        return;
                    }
                };
            let got = claimed.len();
            for delivery in claimed {
                let Ok(permit) = slots.clone().try_acquire_owned() else { return };
                let this = self.clone();
                tokio::spawn(async move {
                    this.deliver(delivery).await;
                    drop(permit);
                    // The next event of this reference may be claimable now.
                    this.wake.notify_one();
                });
            }
            if got < free {
                return;
            }
        }
    }

    async fn deliver(&self, delivery: ClaimedDelivery) {
        let Some(endpoint) = self.webhooks.endpoint(&delivery.endpoint) else {
            // Another replica's endpoint: left to its lease.
            tracing::warn!(endpoint = %delivery.endpoint, "a webhook delivery for an endpoint this process does not know");
            return;
        };
        let at = OffsetDateTime::now_utc();
        let started = Instant::now();
        let (answer, snippet) = send(&self.client, endpoint, &delivery, at).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let outcome =
            policy::decide(&answer, delivery.attempts, &self.webhooks.retry_schedule, OffsetDateTime::now_utc());
        let label = match outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::RetryAt(_) => "retry",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::EndpointGone => "disabled",
        };
        let attempt = DeliveryAttempt {
            n: delivery.attempts + 1,
            at,
            http_status: answer.http_status(),
            latency_ms,
            error: answer.error(),
            answer: snippet,
        };
        match self.ledger.record_delivery(delivery.id, &self.owner, &endpoint.name, attempt, outcome).await {
            Ok(true) => metrics::attempt(&endpoint.name, label),
            Ok(false) => tracing::info!(
                event_id = %delivery.event_id, endpoint = %endpoint.name,
                "a webhook delivery's lease was taken over before its attempt was recorded"
            ),
            Err(e) => tracing::warn!(
                event_id = %delivery.event_id, endpoint = %endpoint.name, error = %e,
                "cannot record a webhook attempt; the delivery is sent again after its lease"
            ),
        }
        match outcome {
            DeliveryOutcome::EndpointGone => tracing::warn!(
                endpoint = %endpoint.name, url = %endpoint.shown,
                "the webhook receiver answered 410 Gone: endpoint disabled until re-enabled and restarted"
            ),
            DeliveryOutcome::Failed => tracing::warn!(
                event_id = %delivery.event_id, endpoint = %endpoint.name, error = ?answer.error(),
                "a webhook delivery failed for good: no retry left"
            ),
            _ => {}
        }
    }
}

/// One attempt: the signed POST, the status and the start of the answer, all within the
/// endpoint's timeout.
async fn send(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    delivery: &ClaimedDelivery,
    at: OffsetDateTime,
) -> (Answer, Option<String>) {
    let timestamp = at.unix_timestamp();
    let Some(signature) = endpoint.signer.signature(&delivery.event_id, timestamp, &delivery.payload) else {
        return (Answer::Transport("the payload could not be signed".to_owned()), None);
    };
    let request = client
        .post(endpoint.url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", delivery.event_id.as_str())
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone());
    let exchange = async {
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after =
            policy::parse_retry_after(response.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
        // Only the start of the body, whatever its size; the rest is never read (the connection
        // is dropped with the response).
        let mut snippet = Vec::new();
        while snippet.len() < SNIPPET_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = SNIPPET_BYTES - snippet.len();
                    snippet.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                // The status is the answer; a body cut short changes nothing.
                Ok(None) | Err(_) => break,
            }
        }
        Ok::<_, String>((status, retry_after, snippet))
    };
    match tokio::time::timeout(endpoint.timeout, exchange).await {
        Ok(Ok((status, retry_after, snippet))) => {
            let text = (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
            (Answer::Status { status, retry_after }, text)
        }
        Ok(Err(error)) => (Answer::Transport(error), None),
        Err(_) => (Answer::TimedOut, None),
    }
}

/// A transport error's text with its causes, and never its URL (it may hold a token).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    // Bounded: a cause chain is short, but it is recorded and shown.
    text.chars().take(300).collect()
}
