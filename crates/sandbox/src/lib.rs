//! Stateful simulators of cancelgate's three upstream providers, with fault injection.
//!
//! Every demo, end-to-end test and benchmark of cancelgate uses these as its upstream. Each
//! simulator answers exactly in its provider's documented wire format (`shared/providers/*`),
//! keeps per-reference state (a cancelled reservation stays cancelled), counts the cancel
//! requests it receives, and can be told to misbehave. The crate shares no code with the
//! adapter crates (`provider-*`): its wire types are written from the documentation
//! independently, so a misreading of a page cannot hide in both.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cancelgate_sandbox::SandboxError> {
//! use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SandboxConfig, SimulatedProvider, seeds};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let base = sandbox.base_url(SimulatedProvider::ChargeApi); // http://127.0.0.1:PORT
//! sandbox.inject(
//!     SimulatedProvider::ChargeApi,
//!     FaultRule::reference(seeds::CHARGEAPI_CONFIRMED, Fault::Reset).times(1).commit_then_fail(),
//! );
//! // ... point the gateway at `base`, cancel, then:
//! assert_eq!(sandbox.calls(SimulatedProvider::ChargeApi, seeds::CHARGEAPI_CONFIRMED).committed, 1);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # The simulators
//!
//! | provider | cancel endpoint | credentials ([`credentials`]) |
//! |---|---|---|
//! | `chargeapi` | `POST /v1/reservations/{id}/cancel`, body `{}` or empty | `Authorization: Bearer ch_sk_test_sandbox` |
//! | `frontpayment` | `GET /api/v1/connect/reservations/cancel/{uuid}` with a JSON body `{"note": "..."}` | `Authorization: Bearer fp_sandbox_token` |
//! | `accommodation` | `POST /api/cancel`, body `{"input":{"reference":{"bookingReference":…}},"settings":{"access":{"code":…}}}` | header `api-key: acc_sandbox_key`, code `10001` (partner `partner_demo`); or `acc_other_key` / `20002` (partner `partner_other`) |
//!
//! **ChargeAPI.** Statuses pending, confirmed, completed, cancelled, failed, expired; only pending
//! and confirmed can be cancelled: `200` with the whole reservation object, `status: "cancelled"`
//! and `updated` = now, rendered with RFC 3339 timestamps (`2026-04-01T01:38:06.924Z`) or UNIX
//! seconds, per reservation. Errors (Stripe-style, since ChargeAPI documents none):
//! `401 {"error":{"type":"authentication_error","message":"Invalid API Key provided"}}`;
//! `404 {"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such reservation: 'res_x'","param":"reservation"}}`;
//! `400` code `reservation_already_cancelled` ("Reservation res_x is already cancelled."), or
//! `reservation_completed` / `reservation_expired` / `reservation_failed` ("Reservation res_x
//! cannot be cancelled because its status is completed."); `400` for a body that is neither empty
//! nor a JSON object. Checks: key, body, existence, status.
//!
//! **Front Payment.** Statuses reserved (cancellable), completed (captured), cancelled, expired.
//! Bodies are those of the provider page, `status_code` = the HTTP status: `202
//! cancelledOrderSuccessfully`; `401 unauthenticated` (bad token); `417 payloadValidationErrors`
//! (body not JSON, `note` missing or not a non-blank string); `404 orderNotFound`; `400
//! reservationStatusAlreadyCompleted` (completed or cancelled); `400
//! prerequisiteFailedToCancelReservation` (expired). Checks in that order. UUIDs match in either case.
//!
//! **Accommodation.** Checks in the documented order: unknown `api-key` → `401 Invalid api key`;
//! (body not JSON → `400 Invalid JSON body`, undocumented); no `bookingReference` → `400
//! bookingReference is required for cancellation`; connection code (number or string) not the
//! partner's → `403 Invalid connection code.`; unknown booking → `404 Booking not found with
//! bookingReference: X`; another partner's → `403 This booking does not belong to the current
//! partner`; status not `success` → `400 Booking cannot be cancelled. Current status: <status>`;
//! today (UTC) ≥ check-in → `400 This booking can no longer be cancelled after the check-in date`;
//! no policy → `400 Cancellation policy not found for this booking`; not refundable → `400 This
//! booking is not refundable according to the cancellation policy`; else `200
//! {"data":{"status":"cancelled","cancelledAt":"…Z"},"message":"success"}` and the booking is
//! cancelled. Error bodies are `{"message": "..."}`.
//!
//! # Seeded references ([`seeds`])
//!
//! Every simulator starts with these (and `POST /_sandbox/reset` restores them):
//!
//! | provider | reference | state | a cancel demonstrates |
//! |---|---|---|---|
//! | chargeapi | `res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq` | confirmed, RFC 3339 timestamps, the documented example's fields | success: 200, the documented object with `status: "cancelled"` |
//! | chargeapi | `res_unixTimestamps01` | confirmed, UNIX-seconds timestamps | success with integer timestamps |
//! | chargeapi | `res_pending01` | pending | success from pending |
//! | chargeapi | `res_alreadyCancelled01` | cancelled | 400 `reservation_already_cancelled` |
//! | chargeapi | `res_completed01` | completed | 400 `reservation_completed` |
//! | chargeapi | `res_expired01` | expired | 400 `reservation_expired` |
//! | chargeapi | `res_failed01` | failed | 400 `reservation_failed` |
//! | chargeapi | `res_doesNotExist01` (never seeded) | — | 404 `resource_missing` |
//! | frontpayment | `9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00` | reserved | 202 `cancelledOrderSuccessfully` |
//! | frontpayment | `9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01` | completed | 400 `reservationStatusAlreadyCompleted` |
//! | frontpayment | `9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f02` | cancelled | 400 `reservationStatusAlreadyCompleted` |
//! | frontpayment | `9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f03` | expired | 400 `prerequisiteFailedToCancelReservation` |
//! | frontpayment | `9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1fff` (never seeded) | — | 404 `orderNotFound` |
//! | accommodation | `BK_EXAMPLE_001` | success, check-in in 365 days, refundable, policy, `partner_demo` | 200 success |
//! | accommodation | `BK_CANCELLED_001` | cancelled | 400 "… Current status: cancelled" |
//! | accommodation | `BK_PENDING_001` | pending | 400 "… Current status: pending" |
//! | accommodation | `BK_PAST_CHECKIN_001` | check-in 3 days ago | 400 "… after the check-in date" |
//! | accommodation | `BK_NON_REFUNDABLE_001` | not refundable | 400 "… not refundable …" |
//! | accommodation | `BK_NO_POLICY_001` | no cancellation policy | 400 "Cancellation policy not found …" |
//! | accommodation | `BK_OTHER_PARTNER_001` | owned by `partner_other` | 403 "… does not belong to the current partner" (cancellable with `acc_other_key` / `20002`) |
//! | accommodation | `BK_UNKNOWN_001` (never seeded) | — | 404 "Booking not found …" |
//!
//! Unknown references are 404s, as at the provider. **Benchmark references** are the exception:
//! any `res_bench[A-Za-z0-9]*` (chargeapi), any UUID starting `00000000-` (frontpayment) and
//! any `BK_BENCH_[A-Za-z0-9_-]*` (accommodation) is treated as an existing cancellable
//! reservation (confirmed / reserved / success, `partner_demo`, check-in in a year), created on its
//! first cancel request. It is then stateful like any other: a second cancel is refused, so a
//! benchmark uses a fresh reference per cancel ([`bench_reference`]). Each costs a few hundred
//! bytes until `POST /_sandbox/reset`.
//!
//! # Admin API
//!
//! On each simulator, under `/_sandbox` (never a provider path). JSON in and out; refusals are
//! `{"error": "..."}` with 400, 404 or 409.
//!
//! | method and path | does |
//! |---|---|
//! | `POST /_sandbox/reservations` (chargeapi) | `{"id"?, "status"? (default confirmed), "timestamps"?: "iso" \| "unix"}` → 201, the reservation object |
//! | `POST /_sandbox/reservations` (frontpayment) | `{"uuid"?, "status"? (default reserved)}` → 201 `{"uuid","status","cancelled_at","cancel_note"}` |
//! | `POST /_sandbox/bookings` (accommodation) | `{"reference"?, "status"? (success), "check_in"? ("YYYY-MM-DD", default in 365 days), "refundable"? (true), "has_policy"? (true), "partner"? (partner_demo)}` → 201 the booking state |
//! | `GET /_sandbox/state/{ref}` | the current state of one reference (404 when unknown); Front Payment's shows the last `cancel_note`, accommodation's the `language` |
//! | `POST /_sandbox/faults` | inject a fault rule (below) → 201 `{"id": "flt_N", ...the rule}` |
//! | `GET /_sandbox/faults` | `{"faults": [{"id", ...the rule, "applied", "remaining"}]}` |
//! | `DELETE /_sandbox/faults` | clear all rules → `{"cleared": n}` |
//! | `DELETE /_sandbox/faults/{id}` | clear one (404 when unknown) |
//! | `GET /_sandbox/calls` | `{"cancel_requests": N, "by_reference": {"<ref>": {"received": n, "committed": m}}}` |
//! | `GET /_sandbox/calls/{ref}` | `{"received": n, "committed": m}` |
//! | `DELETE /_sandbox/calls` | zero the counters |
//! | `POST /_sandbox/reset` | restore the seeds, forget everything else, clear faults and counters |
//!
//! `received` counts cancel requests that reached the handler for that reference, whatever the
//! answer (auth failures and faults included); `committed` counts the times its state actually
//! changed to cancelled, so "exactly one upstream cancel" is `committed == 1`.
//!
//! # Faults
//!
//! A rule is `{"reference": "..."}` (every cancel request for it) or `{"share": 0.3}` (that
//! share of all cancel requests, drawn per request), plus `"times": n` (optional: applies to
//! the first n matching requests; default unlimited), `"commit": bool` (default false: when
//! true the cancel is applied to the state BEFORE the fault is served, "commit then fail", which
//! is what makes duplicate-cancel bugs visible) and `"fault"`, one of:
//!
//! | `fault` | the client sees |
//! |---|---|
//! | `{"kind":"latency","ms":N}` | the normal answer, N ms late |
//! | `{"kind":"status","status":503,"retry_after":2?,"body":…?}` | that status (e.g. 429, 500, 502, 503, 510), `Retry-After` when `retry_after` is given; body: a JSON string is sent raw as text, other JSON as JSON, default the provider's own error format |
//! | `{"kind":"reset"}` | the TCP connection closed with an RST, no answer |
//! | `{"kind":"hang","ms"?:N}` | no answer at all (its client times out); the connection is reset after `ms` (default 120 s) or when the sandbox stops |
//! | `{"kind":"malformed_json","status":200}` | a truncated JSON body (the first half of the success body) |
//! | `{"kind":"html","status":502}` | an nginx-style HTML error page |
//! | `{"kind":"empty","status":200}` | no body, `Content-Type: application/json` |
//! | `{"kind":"text","status":503,"body":"..."}` | a `text/plain` body |
//!
//! The first rule, in insertion order, that matches a request and has hits left applies. Rules
//! only ever hit the provider's cancel endpoint, before any check (so a 503 hides a 401, as a
//! load balancer would). `latency` ignores `commit`. With no rule in force the check costs one
//! atomic load. Rules hit requests served by [`Sandbox`] or [`serve`]; `reset` and `hang` need
//! that accept loop (`axum::serve` cannot drop a connection mid-request).
//!
//! # Performance
//!
//! State lives in a 64-way sharded map of `std::sync::Mutex`es held only for the few
//! instructions of one transition (never across an `.await`); counters are plain fields under
//! the same lock plus one atomic per simulator; fault rules sit behind an `RwLock` consulted only
//! when at least one rule exists. Nothing sleeps unless a fault asks. Logging is `debug` per request.

mod accommodation;
mod chargeapi;
mod clock;
pub mod credentials;
mod fault;
mod frontpayment;
mod provider;
mod running;
pub mod seeds;
mod server;
mod sim;
mod store;

use std::net::SocketAddr;

pub use accommodation::{AccommodationSim, accommodation_router};
pub use chargeapi::{ChargeApiSim, ChargeStatus, TimestampForm, chargeapi_router};
pub use fault::{DEFAULT_HANG, Fault, FaultId, FaultRule, FaultTarget};
pub use frontpayment::{FrontPaymentSim, FrontPaymentStatus, frontpayment_router};
pub use provider::{SandboxConfig, SimulatedProvider, bench_reference, router};
pub use running::Sandbox;
pub use server::serve;
pub use store::{CallCount, CallsReport};

/// What can go wrong when starting or driving the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A listener could not be bound.
    #[error("cannot listen for the {provider} simulator on {addr}")]
    Bind {
        /// Which simulator.
        provider: SimulatedProvider,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not a provider id.
    #[error("unknown provider {0:?} (known: {known})", known = known_ids())]
    UnknownProvider(String),
    /// The admin operation was refused (same status and message as over HTTP).
    #[error("sandbox admin request refused ({status}): {message}")]
    Admin {
        /// The HTTP status the admin API would answer.
        status: u16,
        /// Why.
        message: String,
    },
}

fn known_ids() -> String {
    SimulatedProvider::ALL.map(SimulatedProvider::id).join(", ")
}
