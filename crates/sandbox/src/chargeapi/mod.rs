//! ChargeAPI simulator (EV-charging reservations, Stripe-style REST).
//!
//! `POST /v1/reservations/{id}/cancel`, `Authorization: Bearer <secret key>`, body `{}` or empty.
//! Wire types are written from `providers/chargeapi-cancel.txt` (the reservation object and its
//! RFC 3339 timestamps) and `chargeapi-confirm.txt` / `chargeapi-reservation-object.txt` (UNIX
//! seconds). Errors use the Stripe-style envelope, since ChargeAPI documents none.

mod wire;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::wire::{Details, Reservation, details_for, documented_example, wire};
use crate::clock::now_ms;
use crate::server::ConnKill;
use crate::sim::{AdminError, Common, Reply, Sim, bearer, check_reference, drive, parse_spec, random_id, sim_router};
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
    sim_router(sim, "/v1/reservations/{id}/cancel", post(cancel), "/_sandbox/reservations", not_found)
}

async fn cancel(
    State(sim): State<Arc<ChargeApiSim>>,
    kill: Option<Extension<ConnKill>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

    #[test]
    fn bench_references() {
        assert!(is_bench("res_bench"));
        assert!(is_bench("res_bench42abc"));
        assert!(!is_bench("res_bench_42"));
        assert!(!is_bench("res_benc"));
    }
}
