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
mod fault;
mod frontpayment;
mod server;
mod sim;
mod store;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use accommodation::{AccommodationSim, accommodation_router};
pub use chargeapi::{ChargeApiSim, ChargeStatus, TimestampForm, chargeapi_router};
pub use fault::{DEFAULT_HANG, Fault, FaultId, FaultRule, FaultTarget};
pub use frontpayment::{FrontPaymentSim, FrontPaymentStatus, frontpayment_router};
pub use server::serve;
pub use store::{CallCount, CallsReport};

use crate::sim::Sim;

/// The credentials each simulator accepts.
pub mod credentials {
    /// ChargeAPI: `Authorization: Bearer <this>`.
    pub const CHARGEAPI_SECRET_KEY: &str = "ch_sk_test_sandbox";
    /// Front Payment: `Authorization: Bearer <this>`.
    pub const FRONTPAYMENT_TOKEN: &str = "fp_sandbox_token";
    /// Accommodation, partner `partner_demo`: header `api-key`.
    pub const ACCOMMODATION_API_KEY: &str = "acc_sandbox_key";
    /// Accommodation, partner `partner_demo`: `settings.access.code` (number or string).
    pub const ACCOMMODATION_CONNECTION_CODE: &str = "10001";
    /// Accommodation: the name of the main partner.
    pub const ACCOMMODATION_PARTNER: &str = "partner_demo";
    /// Accommodation, partner `partner_other`: header `api-key`.
    pub const ACCOMMODATION_OTHER_API_KEY: &str = "acc_other_key";
    /// Accommodation, partner `partner_other`: connection code.
    pub const ACCOMMODATION_OTHER_CONNECTION_CODE: &str = "20002";
    /// Accommodation: the name of the other partner.
    pub const ACCOMMODATION_OTHER_PARTNER: &str = "partner_other";
}

/// The seeded references (see the crate docs for what each demonstrates), the never-seeded
/// ones that give a 404, and the benchmark prefixes.
pub mod seeds {
    /// Confirmed, RFC 3339 timestamps: the documented example.
    pub const CHARGEAPI_CONFIRMED: &str = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
    /// Confirmed, UNIX-seconds timestamps.
    pub const CHARGEAPI_CONFIRMED_UNIX: &str = "res_unixTimestamps01";
    /// Pending (cancellable).
    pub const CHARGEAPI_PENDING: &str = "res_pending01";
    /// Already cancelled.
    pub const CHARGEAPI_ALREADY_CANCELLED: &str = "res_alreadyCancelled01";
    /// Completed.
    pub const CHARGEAPI_COMPLETED: &str = "res_completed01";
    /// Expired.
    pub const CHARGEAPI_EXPIRED: &str = "res_expired01";
    /// Failed.
    pub const CHARGEAPI_FAILED: &str = "res_failed01";
    /// Never seeded: 404.
    pub const CHARGEAPI_UNKNOWN: &str = "res_doesNotExist01";
    /// `res_bench[A-Za-z0-9]*` is a lazily created confirmed reservation.
    pub const CHARGEAPI_BENCH_PREFIX: &str = "res_bench";

    /// Reserved (cancellable).
    pub const FRONTPAYMENT_RESERVED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00";
    /// Completed (captured).
    pub const FRONTPAYMENT_COMPLETED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01";
    /// Cancelled.
    pub const FRONTPAYMENT_CANCELLED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f02";
    /// Expired.
    pub const FRONTPAYMENT_EXPIRED: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f03";
    /// Never seeded: 404.
    pub const FRONTPAYMENT_UNKNOWN: &str = "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1fff";
    /// A UUID starting with this is a lazily created reserved reservation.
    pub const FRONTPAYMENT_BENCH_PREFIX: &str = "00000000-";

    /// Cancellable (`partner_demo`, check-in in a year): the documented example.
    pub const ACCOMMODATION_CANCELLABLE: &str = "BK_EXAMPLE_001";
    /// Already cancelled.
    pub const ACCOMMODATION_ALREADY_CANCELLED: &str = "BK_CANCELLED_001";
    /// Status pending.
    pub const ACCOMMODATION_PENDING: &str = "BK_PENDING_001";
    /// Check-in date passed.
    pub const ACCOMMODATION_PAST_CHECK_IN: &str = "BK_PAST_CHECKIN_001";
    /// Not refundable.
    pub const ACCOMMODATION_NON_REFUNDABLE: &str = "BK_NON_REFUNDABLE_001";
    /// No cancellation policy.
    pub const ACCOMMODATION_NO_POLICY: &str = "BK_NO_POLICY_001";
    /// Owned by `partner_other`.
    pub const ACCOMMODATION_OTHER_PARTNER: &str = "BK_OTHER_PARTNER_001";
    /// Never seeded: 404.
    pub const ACCOMMODATION_UNKNOWN: &str = "BK_UNKNOWN_001";
    /// `BK_BENCH_[A-Za-z0-9_-]*` is a lazily created cancellable booking.
    pub const ACCOMMODATION_BENCH_PREFIX: &str = "BK_BENCH_";
}

/// The `n`-th benchmark reference of a provider: `res_bench{n}`,
/// `00000000-0000-4000-8000-{n:012x}`, `BK_BENCH_{n}`. Each is cancellable once.
pub fn bench_reference(provider: SimulatedProvider, n: u64) -> String {
    (provider.spec().bench_reference)(n)
}

/// What the sandbox knows of one simulator. [`SPECS`] is the one table of them: every list of
/// providers in the sandbox (listeners, routers, admin calls, ids) derives from it.
struct Spec {
    id: &'static str,
    bench_reference: fn(u64) -> String,
    /// A fresh, seeded simulator and the router that serves it.
    make: fn() -> (Arc<dyn Sim>, Router),
}

/// In the order of [`SimulatedProvider::ALL`] (a test checks it).
const SPECS: [Spec; 3] = [
    Spec {
        id: "chargeapi",
        bench_reference: |n| format!("{}{n}", seeds::CHARGEAPI_BENCH_PREFIX),
        make: || {
            let sim = ChargeApiSim::new();
            (sim.clone(), chargeapi_router(sim))
        },
    },
    Spec {
        id: "frontpayment",
        bench_reference: |n| format!("00000000-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff),
        make: || {
            let sim = FrontPaymentSim::new();
            (sim.clone(), frontpayment_router(sim))
        },
    },
    Spec {
        id: "accommodation",
        bench_reference: |n| format!("{}{n}", seeds::ACCOMMODATION_BENCH_PREFIX),
        make: || {
            let sim = AccommodationSim::new();
            (sim.clone(), accommodation_router(sim))
        },
    },
];

/// One of the simulated providers. Its id (`chargeapi`, `frontpayment`, `accommodation`) is the
/// gateway's provider id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimulatedProvider {
    /// `chargeapi`.
    ChargeApi,
    /// `frontpayment`.
    FrontPayment,
    /// `accommodation`.
    Accommodation,
}

impl SimulatedProvider {
    /// All of them, in a fixed order (that of their [`Spec`]s).
    pub const ALL: [SimulatedProvider; 3] =
        [SimulatedProvider::ChargeApi, SimulatedProvider::FrontPayment, SimulatedProvider::Accommodation];

    /// Its place in [`Self::ALL`] and [`SPECS`].
    fn index(self) -> usize {
        self as usize
    }

    fn spec(self) -> &'static Spec {
        &SPECS[self.index()]
    }

    /// The provider id.
    pub fn id(self) -> &'static str {
        self.spec().id
    }
}

impl fmt::Display for SimulatedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for SimulatedProvider {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SimulatedProvider::ALL
            .into_iter()
            .find(|p| p.id() == s)
            .ok_or_else(|| SandboxError::UnknownProvider(s.to_owned()))
    }
}

/// Where the simulators listen. `Default`: 127.0.0.1, port 0 (any free port) each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxConfig {
    addrs: [SocketAddr; SimulatedProvider::ALL.len()],
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig { addrs: [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); SimulatedProvider::ALL.len()] }
    }
}

impl SandboxConfig {
    /// This configuration with `provider` listening on `addr`.
    pub fn with_addr(mut self, provider: SimulatedProvider, addr: SocketAddr) -> Self {
        self.addrs[provider.index()] = addr;
        self
    }

    /// The address configured for `provider`.
    pub fn addr(&self, provider: SimulatedProvider) -> SocketAddr {
        self.addrs[provider.index()]
    }
}

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

/// A running set of the simulators. Stops on [`Sandbox::shutdown`] or when dropped.
pub struct Sandbox {
    /// In the order of [`SimulatedProvider::ALL`].
    sims: Vec<Arc<dyn Sim>>,
    addrs: SandboxConfig,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Binds every simulator's listener (port 0 works), spawns their servers on the current
    /// Tokio runtime and returns at once.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let mut listeners = Vec::with_capacity(SimulatedProvider::ALL.len());
        let mut addrs = config;
        for provider in SimulatedProvider::ALL {
            let addr = config.addr(provider);
            let bind_error = |source| SandboxError::Bind { provider, addr, source };
            let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
            addrs = addrs.with_addr(provider, listener.local_addr().map_err(bind_error)?);
            listeners.push((provider, listener));
        }
        let mut sims = Vec::with_capacity(listeners.len());
        let mut tasks = Vec::with_capacity(listeners.len());
        for (provider, listener) in listeners {
            let (sim, router) = (provider.spec().make)();
            let stop = sim.common().stop.subscribe();
            tracing::info!(provider = provider.id(), addr = %addrs.addr(provider), "sandbox simulator listening");
            tasks.push(tokio::spawn(serve(listener, router, stop)));
            sims.push(sim);
        }
        Ok(Sandbox { sims, addrs, tasks })
    }

    fn sim(&self, provider: SimulatedProvider) -> &dyn Sim {
        &*self.sims[provider.index()]
    }

    /// `http://127.0.0.1:PORT` of one simulator (no trailing slash).
    pub fn base_url(&self, provider: SimulatedProvider) -> String {
        format!("http://{}", self.addr(provider))
    }

    /// The bound address of one simulator.
    pub fn addr(&self, provider: SimulatedProvider) -> SocketAddr {
        self.addrs.addr(provider)
    }

    /// The counters of one reference (zero when never seen).
    pub fn calls(&self, provider: SimulatedProvider, reference: &str) -> CallCount {
        let sim = self.sim(provider);
        sim.calls(&sim.key(reference))
    }

    /// All cancel requests one simulator received.
    pub fn total_cancel_requests(&self, provider: SimulatedProvider) -> u64 {
        self.sim(provider).total()
    }

    /// The same report as `GET /_sandbox/calls`.
    pub fn calls_report(&self, provider: SimulatedProvider) -> CallsReport {
        self.sim(provider).report()
    }

    /// Zeroes one simulator's counters (`DELETE /_sandbox/calls`).
    pub fn reset_calls(&self, provider: SimulatedProvider) {
        self.sim(provider).reset_calls();
    }

    /// Injects a fault rule, as `POST /_sandbox/faults` does. A share is clamped to 0.0–1.0; an
    /// impossible status is served as 500.
    pub fn inject(&self, provider: SimulatedProvider, fault: FaultRule) -> FaultId {
        self.sim(provider).common().faults.add(fault)
    }

    /// Removes one rule; `false` when it is not in force on that simulator.
    pub fn remove_fault(&self, provider: SimulatedProvider, id: FaultId) -> bool {
        self.sim(provider).common().faults.remove(id)
    }

    /// Removes every fault rule of every simulator.
    pub fn clear_faults(&self) {
        for provider in SimulatedProvider::ALL {
            self.sim(provider).common().faults.clear();
        }
    }

    /// The current state of one reference, as `GET /_sandbox/state/{ref}` shows it.
    pub fn state(&self, provider: SimulatedProvider, reference: &str) -> Option<serde_json::Value> {
        let sim = self.sim(provider);
        sim.state(&sim.key(reference))
    }

    /// Creates a reference from the same JSON spec as the admin API's create endpoint; answers
    /// the created state.
    pub fn create(
        &self,
        provider: SimulatedProvider,
        spec: &serde_json::Value,
    ) -> Result<serde_json::Value, SandboxError> {
        let body = serde_json::to_vec(spec).unwrap_or_default();
        self.sim(provider)
            .create(&body)
            .map_err(|e| SandboxError::Admin { status: e.status.as_u16(), message: e.message })
    }

    /// Restores every simulator to its seeds, clearing faults and counters (`POST /_sandbox/reset`).
    pub fn reset(&self) {
        for provider in SimulatedProvider::ALL {
            let sim = self.sim(provider);
            sim.common().faults.clear();
            sim.reseed();
        }
    }

    fn signal_stop(&self) {
        for provider in SimulatedProvider::ALL {
            self.sim(provider).common().stop.send_replace(true);
        }
    }

    /// Stops the servers and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// A router for one provider with a fresh, seeded simulator (for `oneshot` router tests; serve it
/// with [`serve`] for faults that drop connections).
pub fn router(provider: SimulatedProvider) -> Router {
    (provider.spec().make)().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_order_of_all() {
        for (i, provider) in SimulatedProvider::ALL.into_iter().enumerate() {
            assert_eq!(provider.index(), i);
            let (sim, _) = (provider.spec().make)();
            assert_eq!(sim.provider(), provider, "{}", provider.id());
            assert_eq!(provider.id().parse::<SimulatedProvider>().ok(), Some(provider));
            let json = serde_json::to_value(provider).ok();
            assert_eq!(json.as_ref().and_then(|v| v.as_str()), Some(provider.id()), "serde names it by its id");
        }
    }
}
