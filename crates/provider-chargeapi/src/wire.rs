//! ChargeAPI's wire format, only as far as a cancel needs it. Every field is optional and lenient:
//! the classifier decides what a missing or odd field means, serde never rejects a whole answer.

use cancelgate_core::classify::lenient;
use serde::Deserialize;
use serde_json::Value;

/// The Reservation object (chargeapi-reservation-object.txt), returned by a successful cancel.
#[derive(Debug, Deserialize)]
pub(crate) struct Reservation {
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    /// An RFC 3339 string on the cancel page, UNIX seconds on the confirm page: kept raw for
    /// `parse_timestamp`, which reads both.
    #[serde(default)]
    pub updated: Option<Value>,
}

/// An error answer. ChargeAPI documents none, so this accepts the Stripe-style envelope
/// `{"error": {..}}`, `{"error": "text"}` and a bare `{"code", "message"}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}

/// The inside of the Stripe-style envelope. `type` and `param` are left in the recorded body:
/// `type` is a category (`invalid_request_error`), not the error itself.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(default, deserialize_with = "lenient")]
    pub code: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}
