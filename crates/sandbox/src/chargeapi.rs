//! ChargeAPI simulator (EV-charging reservations, Stripe-style REST).
//!
//! `POST /v1/reservations/{id}/cancel`, `Authorization: Bearer <secret key>`, body `{}` or empty.
//! Wire types are written from `providers/chargeapi-cancel.txt` (the reservation object and its
//! RFC 3339 timestamps) and `chargeapi-confirm.txt` / `chargeapi-reservation-object.txt` (UNIX
//! seconds). Errors use the Stripe-style envelope, since ChargeAPI documents none.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::clock::{HOUR_MS, Rfc3339Ms, ms_of, now_ms};
use crate::server::ConnKill;
use crate::sim::{AdminError, Common, Reply, Sim, admin_routes, bearer, check_reference, drive, parse_spec, random_id};
use crate::store::{Counters, Store};
use crate::{SimulatedProvider, credentials, seeds};

/// A ChargeAPI reservation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChargeStatus {
    /// Created intent, awaiting confirmation (cancellable).
    Pending,
    /// Connector reserved (cancellable).
    Confirmed,
    /// Charging happened.
    Completed,
    /// Cancelled.
    Cancelled,
    /// No connector could be assigned.
    Failed,
    /// Window passed unused.
    Expired,
}

impl ChargeStatus {
    fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Pending => "pending",
            ChargeStatus::Confirmed => "confirmed",
            ChargeStatus::Completed => "completed",
            ChargeStatus::Cancelled => "cancelled",
            ChargeStatus::Failed => "failed",
            ChargeStatus::Expired => "expired",
        }
    }
}

/// Which of the two documented timestamp forms a reservation is rendered with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampForm {
    /// RFC 3339 strings with milliseconds and `Z` (the cancel page).
    #[default]
    Iso,
    /// UNIX seconds as integers (the confirm page and the reservation object page).
    Unix,
}

/// The parts of a reservation a cancel never changes (shared, so clones are cheap).
#[derive(Debug)]
struct Details {
    charging_station: Option<String>,
    confirmed_at: Option<i64>,
    created: i64,
    driver: String,
    failed_reason: Option<&'static str>,
    ideal_end: i64,
    ideal_start: i64,
    payment_method: String,
    reserved_end: Option<i64>,
    reserved_start: Option<i64>,
    vehicle: String,
}

#[derive(Debug, Clone)]
struct Reservation {
    status: ChargeStatus,
    form: TimestampForm,
    updated: i64,
    details: Arc<Details>,
}

impl Reservation {
    fn new(status: ChargeStatus, form: TimestampForm, details: Details) -> Reservation {
        let updated = details.confirmed_at.unwrap_or(details.created);
        Reservation { status, form, updated, details: Arc::new(details) }
    }
}

/// A timestamp rendered in the reservation's form.
#[derive(Clone, Copy)]
struct Ts(i64, TimestampForm);

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            TimestampForm::Iso => s.collect_str(&Rfc3339Ms(self.0)),
            TimestampForm::Unix => s.serialize_i64(self.0.div_euclid(1000)),
        }
    }
}

#[derive(Serialize)]
struct CancellationPolicyWire {
    free_until_before: u64,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct LocationWire {
    latitude: f64,
    longitude: f64,
    radius: u64,
}

#[derive(Serialize)]
struct EmptyObject {}

/// The reservation object, fields in the documented order.
#[derive(Serialize)]
struct ReservationWire<'a> {
    id: &'a str,
    object: &'static str,
    cancellation_policy: CancellationPolicyWire,
    charging_station: Option<&'a str>,
    confirmed_at: Option<Ts>,
    connector_type: [&'static str; 1],
    created: Ts,
    currency: &'static str,
    driver: &'a str,
    earliest_start: Option<Ts>,
    failed_reason: Option<&'static str>,
    ideal_end: Ts,
    ideal_start: Ts,
    latest_end: Option<Ts>,
    location: LocationWire,
    metadata: EmptyObject,
    payment_method: &'a str,
    reservation_fee: u64,
    reserved_end: Option<Ts>,
    reserved_start: Option<Ts>,
    status: ChargeStatus,
    updated: Ts,
    vehicle: &'a str,
}

fn wire<'a>(id: &'a str, r: &'a Reservation) -> ReservationWire<'a> {
    let d = &*r.details;
    let ts = |ms: i64| Ts(ms, r.form);
    ReservationWire {
        id,
        object: "reservation",
        cancellation_policy: CancellationPolicyWire { free_until_before: 1800, kind: "free_cancellation" },
        charging_station: d.charging_station.as_deref(),
        confirmed_at: d.confirmed_at.map(ts),
        connector_type: ["CCS"],
        created: ts(d.created),
        currency: "eur",
        driver: &d.driver,
        earliest_start: None,
        failed_reason: d.failed_reason,
        ideal_end: ts(d.ideal_end),
        ideal_start: ts(d.ideal_start),
        latest_end: None,
        location: LocationWire { latitude: 48.8698, longitude: 2.3319, radius: 1500 },
        metadata: EmptyObject {},
        payment_method: &d.payment_method,
        reservation_fee: 1200,
        reserved_end: d.reserved_end.map(ts),
        reserved_start: d.reserved_start.map(ts),
        status: r.status,
        updated: ts(r.updated),
        vehicle: &d.vehicle,
    }
}

/// The documented example (`chargeapi-cancel.txt`), before its cancellation.
fn documented_example() -> Details {
    use time::macros::datetime;
    Details {
        charging_station: Some("chst_Hyw5CaUqODp6ANbdqjXlzbRXWNScdiIW".to_owned()),
        confirmed_at: Some(ms_of(datetime!(2026-04-01 01:08:12.480 UTC))),
        created: ms_of(datetime!(2026-04-01 00:40:25.838 UTC)),
        driver: "drv_uSECaMA1R5LW7udEdnW6nmQ5rz6eHor6".to_owned(),
        failed_reason: None,
        ideal_end: ms_of(datetime!(2026-04-01 03:10:21.561 UTC)),
        ideal_start: ms_of(datetime!(2026-04-01 01:40:23.381 UTC)),
        payment_method: "pm_M9ZjflkWuYp82lH7ow4gFwhdxa1eqGxa".to_owned(),
        reserved_end: Some(ms_of(datetime!(2026-04-01 03:09:54.276 UTC))),
        reserved_start: Some(ms_of(datetime!(2026-04-01 01:40:18.627 UTC))),
        vehicle: "veh_1mQkD2fvFpsQcWjTjh3vCBT9H5jHRfV4".to_owned(),
    }
}

/// Plausible details for a reservation in `status`, relative to `now`.
fn details_for(status: ChargeStatus, now: i64) -> Details {
    let assigned = !matches!(status, ChargeStatus::Pending | ChargeStatus::Failed);
    // Finished reservations had their window in the past; live ones have it ahead.
    let start = match status {
        ChargeStatus::Completed | ChargeStatus::Expired => now - 5 * HOUR_MS,
        _ => now + 2 * HOUR_MS,
    };
    Details {
        charging_station: assigned.then(|| random_id("chst_", 32)),
        confirmed_at: assigned.then_some(start - 90 * 60_000),
        created: start - 2 * HOUR_MS,
        driver: random_id("drv_", 32),
        failed_reason: (status == ChargeStatus::Failed).then_some("no_available_connectors"),
        ideal_end: start + 90 * 60_000,
        ideal_start: start,
        payment_method: random_id("pm_", 32),
        reserved_end: assigned.then_some(start + 90 * 60_000 - 27_000),
        reserved_start: assigned.then_some(start - 5_000),
        vehicle: random_id("veh_", 32),
    }
}

/// Benchmark references: `res_bench` followed by letters and digits.
fn is_bench(id: &str) -> bool {
    id.len() <= 128
        && id
            .strip_prefix(seeds::CHARGEAPI_BENCH_PREFIX)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

const UNAUTHORIZED: &str = r#"{"error":{"type":"authentication_error","message":"Invalid API Key provided"}}"#;
const BAD_BODY: &str =
    r#"{"error":{"type":"invalid_request_error","message":"Invalid request body: expected a JSON object."}}"#;

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorWire<'a>,
}

#[derive(Serialize)]
struct ErrorWire<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Reply {
    Reply::json(status, &ErrorEnvelope { error: ErrorWire { kind, code, message, param } })
}

enum Outcome {
    Unauthorized,
    BadBody,
    Missing,
    Cancelled(Reservation),
    Refused(ChargeStatus),
}

/// The ChargeAPI simulator's state. Build a router with [`chargeapi_router`].
#[derive(Debug)]
pub struct ChargeApiSim {
    common: Common,
    store: Store<Reservation>,
    /// Details shared by every lazily created benchmark reservation.
    bench: Arc<Details>,
}

impl ChargeApiSim {
    /// A simulator holding the seeded reservations.
    pub fn new() -> Arc<ChargeApiSim> {
        let sim = ChargeApiSim {
            common: Common::new(false),
            store: Store::new(),
            bench: Arc::new(details_for(ChargeStatus::Confirmed, now_ms())),
        };
        sim.seed();
        Arc::new(sim)
    }

    fn seed(&self) {
        let now = now_ms();
        let iso = TimestampForm::Iso;
        self.store.insert_new(
            seeds::CHARGEAPI_CONFIRMED,
            Reservation::new(ChargeStatus::Confirmed, iso, documented_example()),
        );
        let others = [
            (seeds::CHARGEAPI_CONFIRMED_UNIX, ChargeStatus::Confirmed, TimestampForm::Unix),
            (seeds::CHARGEAPI_PENDING, ChargeStatus::Pending, iso),
            (seeds::CHARGEAPI_ALREADY_CANCELLED, ChargeStatus::Cancelled, iso),
            (seeds::CHARGEAPI_COMPLETED, ChargeStatus::Completed, iso),
            (seeds::CHARGEAPI_EXPIRED, ChargeStatus::Expired, iso),
            (seeds::CHARGEAPI_FAILED, ChargeStatus::Failed, iso),
        ];
        for (id, status, form) in others {
            self.store.insert_new(id, Reservation::new(status, form, details_for(status, now)));
        }
    }

    fn render(id: &str, r: &Reservation) -> Bytes {
        Bytes::from(serde_json::to_vec(&wire(id, r)).unwrap_or_default())
    }

    /// The provider's cancel logic. Counts the request; commits when the status allows it.
    fn cancel_now(&self, id: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let authorized = bearer(headers) == Some(credentials::CHARGEAPI_SECRET_KEY);
        let body_ok = body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<serde_json::Map<String, Value>>(body).is_ok();
        let now = now_ms();
        let outcome = self.store.with_slot(id, |slot| {
            slot.received += 1;
            if !authorized {
                return Outcome::Unauthorized;
            }
            if !body_ok {
                return Outcome::BadBody;
            }
            if slot.record.is_none() && is_bench(id) {
                let details = Arc::clone(&self.bench);
                let updated = details.confirmed_at.unwrap_or(details.created);
                slot.record =
                    Some(Reservation { status: ChargeStatus::Confirmed, form: TimestampForm::Iso, updated, details });
            }
            let Some(r) = slot.record.as_mut() else { return Outcome::Missing };
            match r.status {
                ChargeStatus::Pending | ChargeStatus::Confirmed => {
                    r.status = ChargeStatus::Cancelled;
                    r.updated = now;
                    slot.committed += 1;
                    Outcome::Cancelled(r.clone())
                }
                other => Outcome::Refused(other),
            }
        });
        let reply = match outcome {
            Outcome::Unauthorized => Reply::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED),
            Outcome::BadBody => Reply::new(StatusCode::BAD_REQUEST, BAD_BODY),
            Outcome::Missing => error(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such reservation: '{id}'"),
                Some("reservation"),
            ),
            Outcome::Cancelled(r) => Reply::new(StatusCode::OK, Self::render(id, &r)),
            Outcome::Refused(ChargeStatus::Cancelled) => error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("reservation_already_cancelled"),
                &format!("Reservation {id} is already cancelled."),
                None,
            ),
            Outcome::Refused(status) => error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(&format!("reservation_{}", status.as_str())),
                &format!("Reservation {id} cannot be cancelled because its status is {}.", status.as_str()),
                None,
            ),
        };
        tracing::debug!(provider = "chargeapi", reference = id, status = reply.status.as_u16(), "cancel");
        reply
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSpec {
    id: Option<String>,
    #[serde(default = "confirmed")]
    status: ChargeStatus,
    #[serde(default)]
    timestamps: TimestampForm,
}

fn confirmed() -> ChargeStatus {
    ChargeStatus::Confirmed
}

impl Sim for ChargeApiSim {
    fn provider(&self) -> SimulatedProvider {
        SimulatedProvider::ChargeApi
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn counters(&self) -> &dyn Counters {
        &self.store
    }

    fn reseed(&self) {
        self.store.clear();
        self.seed();
    }

    fn state(&self, key: &str) -> Option<Value> {
        self.store.read(key, |r| serde_json::to_value(wire(key, r)).unwrap_or(Value::Null))
    }

    fn create(&self, spec: &[u8]) -> Result<Value, AdminError> {
        let spec: CreateSpec = parse_spec(spec)?;
        let id = spec.id.unwrap_or_else(|| random_id("res_", 32));
        check_reference(&id)?;
        let r = Reservation::new(spec.status, spec.timestamps, details_for(spec.status, now_ms()));
        let view = serde_json::to_value(wire(&id, &r)).unwrap_or(Value::Null);
        if !self.store.insert_new(&id, r) {
            return Err(AdminError::conflict(format!("reservation {id} already exists")));
        }
        Ok(view)
    }

    fn error_body(&self, status: StatusCode) -> Bytes {
        let (kind, message) = match status.as_u16() {
            429 => ("rate_limit_error", "Too many requests hit the API too quickly."),
            400..=499 => ("invalid_request_error", status.canonical_reason().unwrap_or("Invalid request")),
            _ => ("api_error", "An error occurred with our connection to ChargeAPI. Please retry."),
        };
        error(status, kind, None, message, None).body
    }

    fn success_sample(&self, reference: &str) -> Bytes {
        let sample = Reservation {
            status: ChargeStatus::Cancelled,
            form: TimestampForm::Iso,
            updated: now_ms(),
            details: Arc::clone(&self.bench),
        };
        Self::render(reference, &sample)
    }
}

/// The ChargeAPI routes (`POST /v1/reservations/{id}/cancel`) and the admin API.
pub fn chargeapi_router(sim: Arc<ChargeApiSim>) -> Router {
    Router::new()
        .route("/v1/reservations/{id}/cancel", post(cancel))
        .merge(admin_routes::<ChargeApiSim>("/_sandbox/reservations"))
        .fallback(not_found)
        .with_state(sim)
}

async fn cancel(
    State(sim): State<Arc<ChargeApiSim>>,
    kill: Option<Extension<ConnKill>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kill = kill.map(|Extension(k)| k);
    drive(&*sim, Some(&id), kill, || sim.cancel_now(&id, &headers, &body)).await
}

async fn not_found(method: http::Method, uri: http::Uri) -> Reply {
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        None,
        &format!("Unrecognized request URL ({method}: {}).", uri.path()),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_example_renders_field_for_field() {
        let mut r = Reservation::new(ChargeStatus::Cancelled, TimestampForm::Iso, documented_example());
        r.updated = ms_of(time::macros::datetime!(2026-04-01 01:38:06.924 UTC));
        let got = serde_json::to_value(wire(seeds::CHARGEAPI_CONFIRMED, &r)).unwrap();
        // Copied from providers/chargeapi-cancel.txt.
        let doc = json!({
            "id": "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq",
            "object": "reservation",
            "cancellation_policy": { "free_until_before": 1800, "type": "free_cancellation" },
            "charging_station": "chst_Hyw5CaUqODp6ANbdqjXlzbRXWNScdiIW",
            "confirmed_at": "2026-04-01T01:08:12.480Z",
            "connector_type": ["CCS"],
            "created": "2026-04-01T00:40:25.838Z",
            "currency": "eur",
            "driver": "drv_uSECaMA1R5LW7udEdnW6nmQ5rz6eHor6",
            "earliest_start": null,
            "failed_reason": null,
            "ideal_end": "2026-04-01T03:10:21.561Z",
            "ideal_start": "2026-04-01T01:40:23.381Z",
            "latest_end": null,
            "location": { "latitude": 48.8698, "longitude": 2.3319, "radius": 1500 },
            "metadata": {},
            "payment_method": "pm_M9ZjflkWuYp82lH7ow4gFwhdxa1eqGxa",
            "reservation_fee": 1200,
            "reserved_end": "2026-04-01T03:09:54.276Z",
            "reserved_start": "2026-04-01T01:40:18.627Z",
            "status": "cancelled",
            "updated": "2026-04-01T01:38:06.924Z",
            "vehicle": "veh_1mQkD2fvFpsQcWjTjh3vCBT9H5jHRfV4"
        });
        assert_eq!(got, doc);
    }

    #[test]
    fn unix_form_renders_integers() {
        let r = Reservation::new(ChargeStatus::Pending, TimestampForm::Unix, documented_example());
        let got = serde_json::to_value(wire("res_x", &r)).unwrap();
        assert_eq!(got["created"], json!(1_775_004_025));
        assert_eq!(got["reserved_end"], json!(1_775_012_994));
    }

    #[test]
    fn bench_references() {
        assert!(is_bench("res_bench"));
        assert!(is_bench("res_bench42abc"));
        assert!(!is_bench("res_bench_42"));
        assert!(!is_bench("res_benc"));
    }

    #[test]
    fn failed_and_pending_have_no_station() {
        let now = now_ms();
        for status in [ChargeStatus::Pending, ChargeStatus::Failed] {
            let d = details_for(status, now);
            assert!(d.charging_station.is_none() && d.confirmed_at.is_none() && d.reserved_start.is_none());
        }
        assert_eq!(details_for(ChargeStatus::Failed, now).failed_reason, Some("no_available_connectors"));
        assert!(details_for(ChargeStatus::Confirmed, now).charging_station.is_some());
    }
}
