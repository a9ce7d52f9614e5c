//! Front Payment simulator (payment reservations, connect API).
//!
//! `GET /api/v1/connect/reservations/cancel/{uuid}` WITH a JSON body `{"note": "..."}` and
//! `Authorization: Bearer <token>`. Bodies are the ones of `providers/frontpayment-cancel.md`,
//! byte for byte where the page shows them. UUIDs match case-insensitively.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::clock::{Rfc3339Ms, now_ms};
use crate::server::ConnKill;
use crate::sim::{AdminError, Common, Reply, Sim, bearer, drive, parse_spec, sim_router};
use crate::store::{Counters, Store};
use crate::{SimulatedProvider, credentials, seeds};

/// A Front Payment reservation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrontPaymentStatus {
    /// The amount is still reserved: cancellable.
    Reserved,
    /// Captured or charged.
    Completed,
    /// Cancelled.
    Cancelled,
    /// Expired.
    Expired,
}

#[derive(Debug, Clone)]
struct Order {
    status: FrontPaymentStatus,
    cancelled_at: Option<i64>,
    cancel_note: Option<String>,
}

impl Order {
    fn new(status: FrontPaymentStatus) -> Order {
        Order { status, cancelled_at: None, cancel_note: None }
    }
}

const CANCELLED: &str =
    r#"{"status_code":202,"status_message":"OK","message":"cancelledOrderSuccessfully","is_data":false,"data":null}"#;
const NOT_FOUND: &str =
    r#"{"status_code":404,"status_message":"Not Found","message":"orderNotFound","is_error":false,"errors":null}"#;
const INVALID_PAYLOAD: &str = r#"{"status_code":417,"status_message":"Client Error","message":"payloadValidationErrors","is_error":true,"errors":"Array"}"#;
const ALREADY_COMPLETED: &str = r#"{"status_code":400,"status_message":"Conflict of Business Logic","message":"reservationStatusAlreadyCompleted","is_error":false,"errors":null}"#;
const PREREQUISITE_FAILED: &str = r#"{"status_code":400,"status_message":"Conflict of Business Logic","message":"prerequisiteFailedToCancelReservation","is_error":false,"errors":null}"#;
const UNAUTHORIZED: &str =
    r#"{"status_code":401,"status_message":"Unauthorized","message":"unauthenticated","is_error":true,"errors":null}"#;
const EXECUTION_EXCEPTION: &str = r#"{"status_code":510,"status_message":"Execution Exception Occurred","message":"Something Went Wrong","is_error":true,"errors":"Array"}"#;

/// `8-4-4-4-12` hexadecimal digits, either case.
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn is_bench(key: &str) -> bool {
    key.starts_with(seeds::FRONTPAYMENT_BENCH_PREFIX) && is_uuid(key)
}

fn random_uuid() -> String {
    let a = fastrand::u32(..);
    let b = fastrand::u16(..);
    let c = fastrand::u16(..0x1000);
    let d = fastrand::u16(..0x4000) | 0x8000;
    let e = fastrand::u64(..1 << 48);
    format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
}

/// The note Front Payment requires: a non-blank string.
fn valid_note(body: &[u8]) -> Option<String> {
    // A map, not a struct: serde would read a struct from a JSON array too.
    let mut payload = serde_json::from_slice::<serde_json::Map<String, Value>>(body).ok()?;
    match payload.remove("note")? {
        Value::String(note) if !note.trim().is_empty() => Some(note),
        _ => None,
    }
}

/// The Front Payment simulator's state. Build a router with [`frontpayment_router`].
#[derive(Debug)]
pub struct FrontPaymentSim {
    common: Common,
    store: Store<Order>,
}

impl FrontPaymentSim {
    /// A simulator holding the seeded reservations.
    pub fn new() -> Arc<FrontPaymentSim> {
        let sim = FrontPaymentSim { common: Common::new(true), store: Store::new() };
        sim.seed();
        Arc::new(sim)
    }

    fn cancel_now(&self, key: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let authorized = bearer(headers) == Some(credentials::FRONTPAYMENT_TOKEN);
        let note = valid_note(body);
        let now = now_ms();
        let body: &'static str = self.store.with_slot(key, |slot| {
            slot.received += 1;
            if !authorized {
                return UNAUTHORIZED;
            }
            let Some(note) = note else { return INVALID_PAYLOAD };
            if slot.record.is_none() && is_bench(key) {
                slot.record = Some(Order::new(FrontPaymentStatus::Reserved));
            }
            let Some(order) = slot.record.as_mut() else { return NOT_FOUND };
            match order.status {
                FrontPaymentStatus::Reserved => {
                    order.status = FrontPaymentStatus::Cancelled;
                    order.cancelled_at = Some(now);
                    order.cancel_note = Some(note);
                    slot.committed += 1;
                    CANCELLED
                }
                FrontPaymentStatus::Completed | FrontPaymentStatus::Cancelled => ALREADY_COMPLETED,
                FrontPaymentStatus::Expired => PREREQUISITE_FAILED,
            }
        });
        let status = match body {
            CANCELLED => StatusCode::ACCEPTED,
            UNAUTHORIZED => StatusCode::UNAUTHORIZED,
            INVALID_PAYLOAD => StatusCode::EXPECTATION_FAILED,
            NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        tracing::debug!(provider = "frontpayment", reference = key, status = status.as_u16(), "cancel");
        Reply::new(status, body)
    }
}

fn view(uuid: &str, order: &Order) -> Value {
    json!({
        "uuid": uuid,
        "status": order.status,
        "cancelled_at": order.cancelled_at.map(|ms| Rfc3339Ms(ms).to_string()),
        "cancel_note": order.cancel_note,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSpec {
    uuid: Option<String>,
    #[serde(default = "reserved")]
    status: FrontPaymentStatus,
}

fn reserved() -> FrontPaymentStatus {
    FrontPaymentStatus::Reserved
}

impl Sim for FrontPaymentSim {
    fn provider(&self) -> SimulatedProvider {
        SimulatedProvider::FrontPayment
    }

    fn common(&self) -> &Common {
        &self.common
    }

    fn key<'a>(&self, reference: &'a str) -> Cow<'a, str> {
        if reference.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(reference.to_ascii_lowercase())
        } else {
            Cow::Borrowed(reference)
        }
    }

    fn counters(&self) -> &dyn Counters {
        &self.store
    }

    fn seed(&self) {
        for (uuid, status) in [
            (seeds::FRONTPAYMENT_RESERVED, FrontPaymentStatus::Reserved),
            (seeds::FRONTPAYMENT_COMPLETED, FrontPaymentStatus::Completed),
            (seeds::FRONTPAYMENT_CANCELLED, FrontPaymentStatus::Cancelled),
            (seeds::FRONTPAYMENT_EXPIRED, FrontPaymentStatus::Expired),
        ] {
            self.store.insert_new(uuid, Order::new(status));
        }
    }

    fn state(&self, key: &str) -> Option<Value> {
        self.store.read(key, |order| view(key, order))
    }

    fn create(&self, spec: &[u8]) -> Result<Value, AdminError> {
        let spec: CreateSpec = parse_spec(spec)?;
        let uuid = match spec.uuid {
            Some(uuid) if is_uuid(&uuid) => uuid.to_ascii_lowercase(),
            Some(_) => return Err(AdminError::bad_request("uuid must be an 8-4-4-4-12 hexadecimal UUID")),
            None => random_uuid(),
        };
        let order = Order::new(spec.status);
        let created = view(&uuid, &order);
        if !self.store.insert_new(&uuid, order) {
            return Err(AdminError::conflict(format!("reservation {uuid} already exists")));
        }
        Ok(created)
    }

    fn error_body(&self, status: StatusCode) -> Bytes {
        if status.as_u16() == 510 {
            return Bytes::from_static(EXECUTION_EXCEPTION.as_bytes());
        }
        let message =
            if status == StatusCode::TOO_MANY_REQUESTS { "Too Many Attempts." } else { "Something Went Wrong" };
        let body = json!({
            "status_code": status.as_u16(),
            "status_message": status.canonical_reason().unwrap_or("Error"),
            "message": message,
            "is_error": true,
            "errors": null,
        });
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }

    fn success_sample(&self, _reference: &str) -> Bytes {
        Bytes::from_static(CANCELLED.as_bytes())
    }
}

/// The Front Payment routes (`GET /api/v1/connect/reservations/cancel/{uuid}`) and the admin API.
pub fn frontpayment_router(sim: Arc<FrontPaymentSim>) -> Router {
    sim_router(sim, "/api/v1/connect/reservations/cancel/{uuid}", get(cancel), "/_sandbox/reservations", not_found)
}

async fn cancel(
    State(sim): State<Arc<FrontPaymentSim>>,
    kill: Option<Extension<ConnKill>>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = sim.key(&uuid);
    drive(&*sim, Some(&key), kill, || sim.cancel_now(&key, &headers, &body)).await
}

async fn not_found() -> Reply {
    let body =
        r#"{"status_code":404,"status_message":"Not Found","message":"routeNotFound","is_error":true,"errors":null}"#;
    Reply::new(StatusCode::NOT_FOUND, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_bodies_are_valid_json_with_matching_status_code() {
        for (body, code) in [
            (CANCELLED, 202),
            (NOT_FOUND, 404),
            (INVALID_PAYLOAD, 417),
            (ALREADY_COMPLETED, 400),
            (PREREQUISITE_FAILED, 400),
            (UNAUTHORIZED, 401),
            (EXECUTION_EXCEPTION, 510),
        ] {
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["status_code"], code, "{body}");
        }
    }

    #[test]
    fn notes_and_uuids() {
        assert_eq!(valid_note(br#"{"note":"changed plans"}"#).as_deref(), Some("changed plans"));
        for bad in [&b""[..], b"{}", b"not json", br#"{"note":""}"#, br#"{"note":"  "}"#, br#"{"note":5}"#, b"[]"] {
            assert_eq!(valid_note(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert!(is_uuid(seeds::FRONTPAYMENT_RESERVED));
        assert!(is_uuid("9B2F6A3E-1C4D-4E8F-A7B6-5D4C3B2A1F00"));
        assert!(!is_uuid("9b2f6a3e1c4d4e8fa7b65d4c3b2a1f00"));
        assert!(is_uuid(&random_uuid()));
        assert!(is_bench("00000000-0000-4000-8000-000000000001"));
        assert!(!is_bench("00000000-bench"));
    }
}
