//! Accommodation partner simulator (hotel bookings via a partner API).
//!
//! `POST /api/cancel`, header `api-key`, body
//! `{"input":{"reference":{"bookingReference":"..."},"language":"EN"},"settings":{"access":{"code":10001}}}`
//! (`code` a number or a string). The checks run in the order `providers/accommodation-cancel.txt`
//! lists them; error bodies are `{"message": "..."}`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::{Date, Duration};

use crate::clock::{Rfc3339Ms, now_ms, parse_date, today_utc};
use crate::server::ConnKill;
use crate::sim::{AdminError, Common, Reply, Sim, check_reference, drive, parse_spec, random_id, sim_router};
use crate::store::{Counters, Store};
use crate::{SimulatedProvider, credentials, seeds};

/// A partner of the accommodation API: its API key and connection code.
#[derive(Debug)]
struct Partner {
    name: &'static str,
    api_key: &'static str,
    code: &'static str,
}

static PARTNERS: [Partner; 2] = [
    Partner {
        name: credentials::ACCOMMODATION_PARTNER,
        api_key: credentials::ACCOMMODATION_API_KEY,
        code: credentials::ACCOMMODATION_CONNECTION_CODE,
    },
    Partner {
        name: credentials::ACCOMMODATION_OTHER_PARTNER,
        api_key: credentials::ACCOMMODATION_OTHER_API_KEY,
        code: credentials::ACCOMMODATION_OTHER_CONNECTION_CODE,
    },
];

fn partner_by_key(api_key: &str) -> Option<&'static Partner> {
    PARTNERS.iter().find(|p| p.api_key == api_key)
}

fn partner_by_name(name: &str) -> Option<&'static Partner> {
    PARTNERS.iter().find(|p| p.name == name)
}

#[derive(Debug, Clone)]
struct Booking {
    status: String,
    check_in: Date,
    refundable: bool,
    has_policy: bool,
    partner: &'static Partner,
    cancelled_at: Option<i64>,
    language: Option<String>,
}

impl Booking {
    fn new(status: &str, check_in: Date, refundable: bool, has_policy: bool, partner: &'static Partner) -> Booking {
        Booking {
            status: status.to_owned(),
            check_in,
            refundable,
            has_policy,
            partner,
            cancelled_at: None,
            language: None,
        }
    }
}

fn days_from_today(days: i64) -> Date {
    let today = today_utc();
    today.checked_add(Duration::days(days)).unwrap_or(today)
}

fn is_bench(reference: &str) -> bool {
    reference.len() <= 128
        && reference
            .strip_prefix(seeds::ACCOMMODATION_BENCH_PREFIX)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// The partner's error body.
fn refuse(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, &json!({ "message": message }))
}

#[derive(Serialize)]
struct SuccessData {
    status: &'static str,
    #[serde(rename = "cancelledAt")]
    cancelled_at: Rfc3339Ms,
}

#[derive(Serialize)]
struct Success {
    data: SuccessData,
    message: &'static str,
}

fn success(cancelled_at: i64) -> Reply {
    Reply::json(
        StatusCode::OK,
        &Success {
            data: SuccessData { status: "cancelled", cancelled_at: Rfc3339Ms(cancelled_at) },
            message: "success",
        },
    )
}

/// What the request body says, read leniently (the checks decide what is missing).
struct CancelInput<'a> {
    json: bool,
    reference: Option<&'a str>,
    code: Option<String>,
    language: Option<&'a str>,
}

fn read_input(body: &Value, json: bool) -> CancelInput<'_> {
    let reference = body.pointer("/input/reference/bookingReference").and_then(Value::as_str).filter(|s| !s.is_empty());
    let code = match body.pointer("/settings/access/code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let language = body.pointer("/input/language").and_then(Value::as_str);
    CancelInput { json, reference, code, language }
}

enum Outcome {
    Refused(StatusCode, &'static str),
    NotFound,
    WrongStatus(String),
    Cancelled(i64),
}

/// The accommodation partner simulator's state. Build a router with [`accommodation_router`].
#[derive(Debug)]
pub struct AccommodationSim {
    common: Common,
    store: Store<Booking>,
}

impl AccommodationSim {
    /// A simulator holding the seeded bookings.
    pub fn new() -> Arc<AccommodationSim> {
        let sim = AccommodationSim { common: Common::new(false), store: Store::new() };
        sim.seed();
        Arc::new(sim)
    }

    fn cancel_now(&self, api_key: Option<&str>, input: &CancelInput<'_>) -> Reply {
        // Checks that need no booking, in the documented order.
        let Some(partner) = api_key.and_then(partner_by_key) else {
            return self.refuse_early(input, StatusCode::UNAUTHORIZED, "Invalid api key");
        };
        if !input.json {
            return self.refuse_early(input, StatusCode::BAD_REQUEST, "Invalid JSON body");
        }
        let Some(reference) = input.reference else {
            return refuse(StatusCode::BAD_REQUEST, "bookingReference is required for cancellation");
        };
        if input.code.as_deref() != Some(partner.code) {
            return self.refuse_early(input, StatusCode::FORBIDDEN, "Invalid connection code.");
        }
        let today = today_utc();
        let now = now_ms();
        let outcome = self.store.with_slot(reference, |slot| {
            slot.received += 1;
            if slot.record.is_none() && is_bench(reference) {
                let [demo, _] = &PARTNERS;
                slot.record = Some(Booking::new("success", days_from_today(365), true, true, demo));
            }
            let Some(booking) = slot.record.as_mut() else { return Outcome::NotFound };
            if booking.partner.name != partner.name {
                return Outcome::Refused(StatusCode::FORBIDDEN, "This booking does not belong to the current partner");
            }
            if booking.status != "success" {
                return Outcome::WrongStatus(booking.status.clone());
            }
            if today >= booking.check_in {
                return Outcome::Refused(
                    StatusCode::BAD_REQUEST,
                    "This booking can no longer be cancelled after the check-in date",
                );
            }
            if !booking.has_policy {
                return Outcome::Refused(StatusCode::BAD_REQUEST, "Cancellation policy not found for this booking");
            }
            if !booking.refundable {
                return Outcome::Refused(
                    StatusCode::BAD_REQUEST,
                    "This booking is not refundable according to the cancellation policy",
                );
            }
            booking.status.clear();
            booking.status.push_str("cancelled");
            booking.cancelled_at = Some(now);
            booking.language = input.language.map(str::to_owned);
            slot.committed += 1;
            Outcome::Cancelled(now)
        });
        let reply = match outcome {
            Outcome::Refused(status, message) => refuse(status, message),
            Outcome::NotFound => {
                refuse(StatusCode::NOT_FOUND, &format!("Booking not found with bookingReference: {reference}"))
            }
            Outcome::WrongStatus(status) => {
                refuse(StatusCode::BAD_REQUEST, &format!("Booking cannot be cancelled. Current status: {status}"))
            }
            Outcome::Cancelled(at) => success(at),
        };
        tracing::debug!(provider = "accommodation", reference, status = reply.status.as_u16(), "cancel");
        reply
    }
}

impl AccommodationSim {
    /// A refusal before the booking is looked at; still counted for the reference, if any.
    fn refuse_early(&self, input: &CancelInput<'_>, status: StatusCode, message: &str) -> Reply {
        if let Some(reference) = input.reference {
            self.store.count_received(reference);
        }
        tracing::debug!(provider = "accommodation", reference = input.reference, status = status.as_u16(), "cancel");
        refuse(status, message)
    }
}

fn view(reference: &str, b: &Booking) -> Value {
    json!({
        "reference": reference,
        "status": b.status,
        "check_in": b.check_in.to_string(),
        "refundable": b.refundable,
        "has_policy": b.has_policy,
        "partner": b.partner.name,
        "cancelled_at": b.cancelled_at.map(|ms| Rfc3339Ms(ms).to_string()),
        "language": b.language,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSpec {
    reference: Option<String>,
    status: Option<String>,
    check_in: Option<String>,
    #[serde(default = "yes")]
    refundable: bool,
    #[serde(default = "yes")]
    has_policy: bool,
    partner: Option<String>,
}

fn yes() -> bool {
    true
}

impl Sim for AccommodationSim {
    fn provider(&self) -> SimulatedProvider {
        SimulatedProvider::Accommodation
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn counters(&self) -> &dyn Counters {
        &self.store
    }

    fn seed(&self) {
        let [demo, other] = &PARTNERS;
        let ahead = days_from_today(365);
        let past = days_from_today(-3);
        for (reference, booking) in [
            (seeds::ACCOMMODATION_CANCELLABLE, Booking::new("success", ahead, true, true, demo)),
            (seeds::ACCOMMODATION_ALREADY_CANCELLED, Booking::new("cancelled", ahead, true, true, demo)),
            (seeds::ACCOMMODATION_PENDING, Booking::new("pending", ahead, true, true, demo)),
            (seeds::ACCOMMODATION_PAST_CHECK_IN, Booking::new("success", past, true, true, demo)),
            (seeds::ACCOMMODATION_NON_REFUNDABLE, Booking::new("success", ahead, false, true, demo)),
            (seeds::ACCOMMODATION_NO_POLICY, Booking::new("success", ahead, true, false, demo)),
            (seeds::ACCOMMODATION_OTHER_PARTNER, Booking::new("success", ahead, true, true, other)),
        ] {
            self.store.insert_new(reference, booking);
        }
    }

    fn state(&self, key: &str) -> Option<Value> {
        self.store.read(key, |b| view(key, b))
    }

    fn create(&self, spec: &[u8]) -> Result<Value, AdminError> {
        let spec: CreateSpec = parse_spec(spec)?;
        let reference = spec.reference.unwrap_or_else(|| random_id("BK_", 12).to_ascii_uppercase());
        check_reference(&reference)?;
        let status = spec.status.unwrap_or_else(|| "success".to_owned());
        let status_ok =
            !status.is_empty() && status.len() <= 32 && status.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !status_ok {
            return Err(AdminError::bad_request("status is 1-32 of A-Z a-z 0-9 _ (e.g. success, pending, failed)"));
        }
        let check_in = match spec.check_in {
            Some(s) => parse_date(&s).ok_or_else(|| AdminError::bad_request("check_in must be YYYY-MM-DD"))?,
            None => days_from_today(365),
        };
        let partner_name = spec.partner.as_deref().unwrap_or(credentials::ACCOMMODATION_PARTNER);
        let partner = partner_by_name(partner_name).ok_or_else(|| {
            AdminError::bad_request(format!(
                "unknown partner {partner_name} (known: {}, {})",
                credentials::ACCOMMODATION_PARTNER,
                credentials::ACCOMMODATION_OTHER_PARTNER
            ))
        })?;
        let booking = Booking::new(&status, check_in, spec.refundable, spec.has_policy, partner);
        let created = view(&reference, &booking);
        if !self.store.insert_new(&reference, booking) {
            return Err(AdminError::conflict(format!("booking {reference} already exists")));
        }
        Ok(created)
    }

    fn error_body(&self, status: StatusCode) -> Bytes {
        refuse(status, status.canonical_reason().unwrap_or("Error")).body
    }

    fn success_sample(&self, _reference: &str) -> Bytes {
        success(now_ms()).body
    }
}

/// The accommodation partner routes (`POST /api/cancel`) and the admin API.
pub fn accommodation_router(sim: Arc<AccommodationSim>) -> Router {
    sim_router(sim, "/api/cancel", post(cancel), "/_sandbox/bookings", not_found)
}

async fn cancel(
    State(sim): State<Arc<AccommodationSim>>,
    kill: Option<Extension<ConnKill>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (parsed, json) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (v, true),
        Err(_) => (Value::Null, false),
    };
    let input = read_input(&parsed, json);
    let api_key = headers.get("api-key").and_then(|v| v.to_str().ok());
    drive(&*sim, input.reference, kill, || sim.cancel_now(api_key, &input)).await
}

async fn not_found(method: http::Method, uri: http::Uri) -> Reply {
    refuse(StatusCode::NOT_FOUND, &format!("Cannot {method} {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_body_with_a_number_or_a_string_code() {
        let body = json!({"input": {"reference": {"bookingReference": "BK_EXAMPLE_001"}, "language": "EN"},
                          "settings": {"access": {"code": 10001}}});
        let input = read_input(&body, true);
        assert_eq!(input.reference, Some("BK_EXAMPLE_001"));
        assert_eq!(input.code.as_deref(), Some("10001"));
        assert_eq!(input.language, Some("EN"));
        let body = json!({"input": {"reference": {"bookingReference": ""}}, "settings": {"access": {"code": "10001"}}});
        let input = read_input(&body, true);
        assert_eq!((input.reference, input.code.as_deref()), (None, Some("10001")));
    }

    #[test]
    fn success_body_shape() {
        let body: Value = serde_json::from_slice(&success(0).body).unwrap();
        assert_eq!(
            body,
            json!({"data": {"status": "cancelled", "cancelledAt": "1970-01-01T00:00:00.000Z"}, "message": "success"})
        );
    }

    #[test]
    fn bench_references() {
        assert!(is_bench("BK_BENCH_1"));
        assert!(is_bench("BK_BENCH_a-b_c"));
        assert!(!is_bench("BK_BENCH"));
        assert!(!is_bench("BK_BENCH_x y"));
    }
}
