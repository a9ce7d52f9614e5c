//! The accommodation partner's wire format (accommodation-cancel.txt), as far as a cancel needs
//! it. Every field is optional and lenient: the classifier decides what a missing or odd field means.

use cancelgate_core::classify::lenient;
use serde::Deserialize;
use serde_json::Value;

/// Success `{"data": {..}, "message": "success"}` and errors `{"message": ..}` alike.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    /// Kept raw: it is read as [`Data`] only when it is an object.
    #[serde(default)]
    pub data: Option<Value>,
    /// On errors, the only thing that tells them apart: there is no error code.
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}

/// `data` of a successful cancel. `cancelLocator`, `reference` and the prices are reserved and
/// stay in the recorded body.
#[derive(Debug, Deserialize)]
pub(crate) struct Data {
    #[serde(default, deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(default, rename = "cancelledAt")]
    pub cancelled_at: Option<Value>,
}
