//! `Failure`: why a cancellation is not (or not known to be) cancelled, as the engine decides it
//! (`verdict.rs`, `driver.rs`) and the ledger stores it. A domain value, no HTTP in it: where the
//! record is, which request asked, and the RFC 9457 shape are the facade's (`ApiError::located`,
//! in `routes/cancellations.rs`), added on every read, so a fresh answer, its replay and the
//! record read back are one document.

use cancelgate_core::{ErrorCode, RefusalReason};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What a provider answered, as shown in a problem's `upstream`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpstreamInfo {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub body: Value,
}

/// A final refusal, or the evidence of a review (SPEC §3 `code`, `reason`, `detail`, `upstream`).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: ErrorCode,
    pub reason: Option<RefusalReason>,
    pub detail: String,
    pub upstream: Option<UpstreamInfo>,
}

impl Failure {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, reason: None, detail: detail.into(), upstream: None }
    }

    pub fn with_reason(mut self, reason: Option<RefusalReason>) -> Self {
        self.reason = reason;
        self
    }

    pub fn with_upstream(mut self, upstream: Option<UpstreamInfo>) -> Self {
        self.upstream = upstream;
        self
    }

    /// The ledger's `error` column: the one place it is written from.
    pub fn to_stored(&self) -> Value {
        json!({
            "code": self.code.as_str(),
            "reason": self.reason.map(RefusalReason::as_str),
            "detail": self.detail,
            "upstream": self.upstream,
        })
    }

    /// The ledger's `error` column read back. A row an earlier release wrote holds the whole
    /// problem document: its `code`, `reason`, `detail` and `upstream` are read the same way,
    /// and the rest (where, which request) is the record's own. `None` when the code is unknown.
    pub fn from_stored(stored: &Value) -> Option<Self> {
        let code = stored.get("code")?.as_str()?.parse::<ErrorCode>().ok()?;
        let text = |name: &str| stored.get(name).and_then(Value::as_str);
        Some(Self {
            code,
            reason: text("reason").and_then(RefusalReason::parse),
            detail: text("detail").unwrap_or_default().to_owned(),
            upstream: stored.get("upstream").and_then(|u| UpstreamInfo::deserialize(u).ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_failure_reads_back_as_itself() {
        let failure = Failure::new(ErrorCode::NotCancellable, "past check-in")
            .with_reason(Some(RefusalReason::PastCheckIn))
            .with_upstream(Some(UpstreamInfo {
                status: 400,
                code: None,
                message: Some("after the check-in date".into()),
                body: json!({"x": 1}),
            }));
        assert_eq!(Failure::from_stored(&failure.to_stored()), Some(failure));
        let plain = Failure::new(ErrorCode::UpstreamTimeout, "no answer");
        assert_eq!(Failure::from_stored(&plain.to_stored()), Some(plain));
    }

    #[test]
    fn an_earlier_releases_problem_document_reads_as_its_failure() {
        let stored = json!({"type": "/errors/not_cancellable", "title": "t", "status": 409, "code": "not_cancellable",
            "reason": "completed", "detail": "d", "retryable": false, "provider": "chargeapi", "reference": "res_x",
            "cancellation_id": "can_1", "request_id": "req_1",
            "upstream": {"status": 400, "code": "c", "message": null, "body": {"a": 1}}});
        let failure = Failure::from_stored(&stored).unwrap();
        assert_eq!((failure.code, failure.reason), (ErrorCode::NotCancellable, Some(RefusalReason::Completed)));
        assert_eq!((failure.detail.as_str(), failure.upstream.map(|u| u.status)), ("d", Some(400)));
        assert_eq!(Failure::from_stored(&json!({"code": "no_such_code"})), None);
    }
}
