//! Front Payment's answer envelope (frontpayment-cancel.md), as far as a cancel needs it. Every
//! field is optional and lenient: the classifier decides what a missing or odd field means.

use cancelgate_core::classify::lenient;
use serde::Deserialize;

/// `{"status_code", "status_message", "message", "is_error", "errors"}`, the same for success and
/// errors. `errors`/`data` are left in the recorded body: the doc shows them only as `"Array"`.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    /// The status the provider means; it wins over the HTTP line when they disagree (SPEC §4).
    #[serde(default, deserialize_with = "lenient")]
    pub status_code: Option<u16>,
    #[serde(default, deserialize_with = "lenient")]
    pub status_message: Option<String>,
    /// A camel-case error code such as `orderNotFound`, despite its name.
    #[serde(default, deserialize_with = "lenient")]
    pub message: Option<String>,
}
