//! Fault injection: what a fault is ([`Fault`]) and which requests it hits ([`FaultRule`]), with
//! their JSON forms. The rules in force on one simulator are in [`set`]; how a fault is served
//! is in [`serve`].

mod serve;
mod set;

pub(crate) use serve::apply;
pub(crate) use set::FaultSet;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long a `hang` keeps a request unanswered when the rule gives no `ms`: long enough for any
/// client timeout, short enough that a benchmark with hangs does not hold sockets forever.
pub const DEFAULT_HANG: Duration = Duration::from_secs(120);

/// Upper bound for `latency.ms` and `hang.ms` accepted by the admin API (10 minutes).
const MAX_DELAY_MS: u64 = 600_000;

/// The remaining hits of a rule without `times`.
const UNLIMITED: u64 = u64::MAX;

static NEXT_FAULT_ID: AtomicU64 = AtomicU64::new(1);

/// Identifies one injected fault rule; rendered `flt_<n>`, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(u64);

impl FaultId {
    /// A fresh id, never given before in this process.
    fn next() -> FaultId {
        FaultId(NEXT_FAULT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for FaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flt_{}", self.0)
    }
}

impl FromStr for FaultId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix("flt_").and_then(|n| n.parse().ok()).map(FaultId).ok_or_else(|| format!("not a fault id: {s}"))
    }
}

impl Serialize for FaultId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FaultId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens to a request a rule hits. JSON form: `{"kind": "<snake_case variant>", ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Wait `ms` milliseconds, then behave normally.
    Latency {
        /// The delay in milliseconds.
        ms: u64,
    },
    /// Answer `status` (e.g. 429, 500, 502, 503, 510). `retry_after` (seconds) sets `Retry-After`.
    /// `body`: a JSON string is sent as-is as `text/plain`, any other JSON value as
    /// `application/json`; when absent, the provider's own error format for that status.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        /// A custom body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
    },
    /// Close the TCP connection without an answer (an RST: `SO_LINGER` 0).
    Reset,
    /// Never answer: the connection stays open, unanswered, for `ms` (default
    /// [`DEFAULT_HANG`]) or until the sandbox stops, then is reset. The client times out.
    Hang {
        /// How long to hold the request before dropping the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
    /// A truncated JSON body (the first half of the provider's success body) with `status`.
    MalformedJson {
        /// The HTTP status (default 200).
        #[serde(default = "status_200")]
        status: u16,
    },
    /// An nginx-style HTML error page with `status`.
    Html {
        /// The HTTP status (default 502).
        #[serde(default = "status_502")]
        status: u16,
    },
    /// No body at all (`Content-Length: 0`, `Content-Type: application/json`) with `status`.
    Empty {
        /// The HTTP status (default 200).
        #[serde(default = "status_200")]
        status: u16,
    },
    /// A `text/plain` body.
    Text {
        /// The HTTP status (default 200).
        #[serde(default = "status_200")]
        status: u16,
        /// The text.
        #[serde(default)]
        body: String,
    },
}

fn status_200() -> u16 {
    200
}

fn status_502() -> u16 {
    502
}

impl Fault {
    /// `latency` of the given duration.
    pub fn latency(delay: Duration) -> Fault {
        Fault::Latency { ms: u64::try_from(delay.as_millis()).unwrap_or(MAX_DELAY_MS) }
    }

    /// `status` with the provider's default body and no `Retry-After`.
    pub fn status(status: u16) -> Fault {
        Fault::Status { status, retry_after: None, body: None }
    }

    /// `status` with a `Retry-After: <seconds>` header (e.g. a 429 or a 503).
    pub fn status_with_retry_after(status: u16, seconds: u64) -> Fault {
        Fault::Status { status, retry_after: Some(seconds), body: None }
    }

    /// `hang` for [`DEFAULT_HANG`].
    pub fn hang() -> Fault {
        Fault::Hang { ms: None }
    }

    /// `malformed_json` with status 200.
    pub fn malformed_json() -> Fault {
        Fault::MalformedJson { status: 200 }
    }

    /// `html` with status 502.
    pub fn html() -> Fault {
        Fault::Html { status: 502 }
    }

    /// `empty` with status 200.
    pub fn empty() -> Fault {
        Fault::Empty { status: 200 }
    }

    /// `text` with the given status and body.
    pub fn text(status: u16, body: impl Into<String>) -> Fault {
        Fault::Text { status, body: body.into() }
    }

    /// Its `kind` in the JSON form.
    fn kind(&self) -> &'static str {
        match self {
            Fault::Latency { .. } => "latency",
            Fault::Status { .. } => "status",
            Fault::Reset => "reset",
            Fault::Hang { .. } => "hang",
            Fault::MalformedJson { .. } => "malformed_json",
            Fault::Html { .. } => "html",
            Fault::Empty { .. } => "empty",
            Fault::Text { .. } => "text",
        }
    }

    fn validate(&self) -> Result<(), String> {
        let status = match self {
            Fault::Latency { ms } | Fault::Hang { ms: Some(ms) } if *ms > MAX_DELAY_MS => {
                return Err(format!("ms must be at most {MAX_DELAY_MS}"));
            }
            Fault::Latency { .. } | Fault::Reset | Fault::Hang { .. } => return Ok(()),
            Fault::Status { status, .. }
            | Fault::MalformedJson { status }
            | Fault::Html { status }
            | Fault::Empty { status }
            | Fault::Text { status, .. } => *status,
        };
        if (200..=999).contains(&status) { Ok(()) } else { Err(format!("status must be 200..=999, got {status}")) }
    }
}

/// Which cancel requests a rule hits.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultTarget {
    /// Every cancel request for this reference (Front Payment compares UUIDs case-insensitively).
    Reference(String),
    /// This share (0.0–1.0) of all cancel requests, drawn at random per request.
    Share(f64),
}

/// One fault rule: a target, an optional number of hits, whether to commit first, and the fault.
///
/// JSON form (the admin API's `POST /_sandbox/faults` body):
/// `{"reference": "res_x"} | {"share": 0.3}`, `"times"?: n`, `"commit"?: bool`, `"fault": {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleWire", into = "RuleWire")]
pub struct FaultRule {
    /// Which requests it hits.
    pub target: FaultTarget,
    /// How many matching requests it applies to; `None` = unlimited.
    pub times: Option<u64>,
    /// Apply the cancel to the state BEFORE serving the fault ("commit then fail"). Ignored by
    /// `latency`, which always behaves normally after its delay.
    pub commit: bool,
    /// What happens.
    pub fault: Fault,
}

impl FaultRule {
    /// A rule hitting every cancel request for `reference`.
    pub fn reference(reference: impl Into<String>, fault: Fault) -> FaultRule {
        FaultRule { target: FaultTarget::Reference(reference.into()), times: None, commit: false, fault }
    }

    /// A rule hitting a `share` (clamped to 0.0–1.0) of all cancel requests.
    pub fn share(share: f64, fault: Fault) -> FaultRule {
        FaultRule { target: FaultTarget::Share(clamp_share(share)), times: None, commit: false, fault }
    }

    /// Applies to the first `n` matching requests only.
    pub fn times(mut self, n: u64) -> FaultRule {
        self.times = Some(n);
        self
    }

    /// Commits the cancel to the state before serving the fault.
    pub fn commit_then_fail(mut self) -> FaultRule {
        self.commit = true;
        self
    }
}

fn clamp_share(share: f64) -> f64 {
    if share.is_nan() { 0.0 } else { share.clamp(0.0, 1.0) }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    share: Option<f64>,
    #[serde(default)]
    times: Option<u64>,
    #[serde(default)]
    commit: bool,
    fault: Fault,
}

impl TryFrom<RuleWire> for FaultRule {
    type Error = String;

    fn try_from(w: RuleWire) -> Result<Self, Self::Error> {
        let target = match (w.reference, w.share) {
            (Some(r), None) if !r.is_empty() => FaultTarget::Reference(r),
            (None, Some(s)) if (0.0..=1.0).contains(&s) => FaultTarget::Share(s),
            (None, Some(s)) => return Err(format!("share must be between 0.0 and 1.0, got {s}")),
            (Some(_), None) => return Err("reference must not be empty".to_owned()),
            _ => return Err("give exactly one of `reference` and `share`".to_owned()),
        };
        if w.times == Some(0) {
            return Err("times must be at least 1 (omit it for unlimited)".to_owned());
        }
        w.fault.validate()?;
        Ok(FaultRule { target, times: w.times, commit: w.commit, fault: w.fault })
    }
}

impl From<FaultRule> for RuleWire {
    fn from(r: FaultRule) -> Self {
        let (reference, share) = match r.target {
            FaultTarget::Reference(s) => (Some(s), None),
            FaultTarget::Share(s) => (None, Some(s)),
        };
        RuleWire { reference, share, times: r.times, commit: r.commit, fault: r.fault }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<FaultRule, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_every_kind() {
        let kinds = [
            json!({"kind": "latency", "ms": 50}),
            json!({"kind": "status", "status": 503, "retry_after": 2}),
            json!({"kind": "status", "status": 500, "body": "oops"}),
            json!({"kind": "status", "status": 510, "body": {"x": 1}}),
            json!({"kind": "reset"}),
            json!({"kind": "hang"}),
            json!({"kind": "hang", "ms": 1000}),
            json!({"kind": "malformed_json", "status": 200}),
            json!({"kind": "malformed_json"}),
            json!({"kind": "html", "status": 502}),
            json!({"kind": "empty", "status": 200}),
            json!({"kind": "text", "status": 503, "body": "upstream down"}),
        ];
        for fault in kinds {
            let rule = parse(json!({"share": 0.5, "fault": fault.clone()}));
            assert!(rule.is_ok(), "{fault}: {rule:?}");
        }
        assert_eq!(
            parse(json!({"reference": "res_1", "times": 1, "commit": true, "fault": {"kind": "reset"}})),
            Ok(FaultRule::reference("res_1", Fault::Reset).times(1).commit_then_fail())
        );
    }

    #[test]
    fn rejects_bad_rules() {
        let bad = [
            json!({"fault": {"kind": "reset"}}),
            json!({"reference": "a", "share": 0.1, "fault": {"kind": "reset"}}),
            json!({"share": 1.5, "fault": {"kind": "reset"}}),
            json!({"share": -0.1, "fault": {"kind": "reset"}}),
            json!({"reference": "", "fault": {"kind": "reset"}}),
            json!({"reference": "a", "times": 0, "fault": {"kind": "reset"}}),
            json!({"reference": "a", "fault": {"kind": "status", "status": 99}}),
            json!({"reference": "a", "fault": {"kind": "status", "status": 1000}}),
            json!({"reference": "a", "fault": {"kind": "status"}}),
            json!({"reference": "a", "fault": {"kind": "status", "status": 503, "retry-after": 2}}),
            json!({"reference": "a", "fault": {"kind": "explode"}}),
            json!({"reference": "a", "fault": {"kind": "latency", "ms": 700000}}),
            json!({"reference": "a", "fault": {"kind": "reset"}, "comit": true}),
        ];
        for rule in bad {
            assert!(parse(rule.clone()).is_err(), "{rule} should be rejected");
        }
    }

    #[test]
    fn round_trips_through_json() {
        let rule = FaultRule::share(0.25, Fault::status_with_retry_after(429, 3)).times(4);
        let v = serde_json::to_value(&rule).unwrap();
        assert_eq!(
            v,
            json!({"share": 0.25, "times": 4, "commit": false,
                   "fault": {"kind": "status", "status": 429, "retry_after": 3}})
        );
        assert_eq!(parse(v), Ok(rule));
        assert_eq!("flt_12".parse::<FaultId>(), Ok(FaultId(12)));
        assert!("12".parse::<FaultId>().is_err());
    }
}
