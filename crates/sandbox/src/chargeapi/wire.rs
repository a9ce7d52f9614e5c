//! ChargeAPI's reservation object as the provider pages show it: the parts a cancel never
//! changes, the documented example, plausible details for other statuses, and the rendering
//! (fields in the documented order, timestamps in the reservation's form).

use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::{ChargeStatus, TimestampForm};
use crate::clock::{HOUR_MS, Rfc3339Ms, ms_of};
use crate::sim::random_id;

/// The parts of a reservation a cancel never changes (shared, so clones are cheap).
#[derive(Debug)]
pub(super) struct Details {
    pub(super) charging_station: Option<String>,
    pub(super) confirmed_at: Option<i64>,
    pub(super) created: i64,
    pub(super) driver: String,
    pub(super) failed_reason: Option<&'static str>,
    pub(super) ideal_end: i64,
    pub(super) ideal_start: i64,
    pub(super) payment_method: String,
    pub(super) reserved_end: Option<i64>,
    pub(super) reserved_start: Option<i64>,
    pub(super) vehicle: String,
}

#[derive(Debug, Clone)]
pub(super) struct Reservation {
    pub(super) status: ChargeStatus,
    pub(super) form: TimestampForm,
    pub(super) updated: i64,
    pub(super) details: Arc<Details>,
}

impl Reservation {
    pub(super) fn new(status: ChargeStatus, form: TimestampForm, details: Details) -> Reservation {
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
pub(super) struct ReservationWire<'a> {
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

pub(super) fn wire<'a>(id: &'a str, r: &'a Reservation) -> ReservationWire<'a> {
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
pub(super) fn documented_example() -> Details {
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
pub(super) fn details_for(status: ChargeStatus, now: i64) -> Details {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The cancel page's answer for its documented example.
    const DOCUMENTED_EXAMPLE: &str = include_str!("../../tests/fixtures/chargeapi-cancelled-example.json");
    use crate::clock::now_ms;
    use crate::seeds;
    use serde_json::json;

    #[test]
    fn documented_example_renders_field_for_field() {
        let mut r = Reservation::new(ChargeStatus::Cancelled, TimestampForm::Iso, documented_example());
        r.updated = ms_of(time::macros::datetime!(2026-04-01 01:38:06.924 UTC));
        let got = serde_json::to_value(wire(seeds::CHARGEAPI_CONFIRMED, &r)).unwrap();
        // Copied from providers/chargeapi-cancel.txt (one copy, shared with the HTTP test).
        let doc: serde_json::Value = serde_json::from_str(DOCUMENTED_EXAMPLE).unwrap();
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
