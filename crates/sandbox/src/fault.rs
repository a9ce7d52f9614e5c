//! Fault injection: what a fault is ([`Fault`]), which requests it hits ([`FaultRule`]), the
//! per-simulator set of active rules, and how a fault is served.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::server::ConnKill;
use crate::sim::{Reply, Sim, stopped};

/// How long a `hang` keeps a request unanswered when the rule gives no `ms`: long enough for any
/// client timeout, short enough that a benchmark with hangs does not hold sockets forever.
pub const DEFAULT_HANG: Duration = Duration::from_secs(120);

/// Upper bound for `latency.ms` and `hang.ms` accepted by the admin API (10 minutes).
const MAX_DELAY_MS: u64 = 600_000;

const UNLIMITED: u64 = u64::MAX;

static NEXT_FAULT_ID: AtomicU64 = AtomicU64::new(1);

/// Identifies one injected fault rule; rendered `flt_<n>`, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(u64);

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

/// A rule in force, with its remaining hits.
#[derive(Debug)]
pub(crate) struct ActiveFault {
    id: FaultId,
    rule: FaultRule,
    remaining: AtomicU64,
    applied: AtomicU64,
}

impl ActiveFault {
    /// Consumes one hit; `false` when the rule is used up.
    fn take(&self) -> bool {
        let taken = self
            .remaining
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| match n {
                UNLIMITED => Some(n),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok();
        if taken {
            self.applied.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }
}

/// How a rule in force is listed by `GET /_sandbox/faults`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FaultView {
    id: FaultId,
    #[serde(flatten)]
    rule: FaultRule,
    applied: u64,
    remaining: Option<u64>,
}

/// The rules in force on one simulator. With no rule, `pick` costs one atomic load.
#[derive(Debug)]
pub(crate) struct FaultSet {
    rules: RwLock<Vec<Arc<ActiveFault>>>,
    armed: AtomicUsize,
    case_insensitive: bool,
}

impl FaultSet {
    pub(crate) fn new(case_insensitive: bool) -> Self {
        FaultSet { rules: RwLock::new(Vec::new()), armed: AtomicUsize::new(0), case_insensitive }
    }

    pub(crate) fn add(&self, mut rule: FaultRule) -> FaultId {
        if let FaultTarget::Share(s) = rule.target {
            rule.target = FaultTarget::Share(clamp_share(s));
        }
        let id = FaultId(NEXT_FAULT_ID.fetch_add(1, Ordering::Relaxed));
        let remaining = AtomicU64::new(rule.times.unwrap_or(UNLIMITED));
        let active = Arc::new(ActiveFault { id, rule, remaining, applied: AtomicU64::new(0) });
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        rules.push(active);
        self.armed.store(rules.len(), Ordering::Release);
        id
    }

    pub(crate) fn remove(&self, id: FaultId) -> bool {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.armed.store(rules.len(), Ordering::Release);
        rules.len() != before
    }

    pub(crate) fn clear(&self) -> usize {
        let mut rules = self.rules.write().unwrap_or_else(PoisonError::into_inner);
        let n = rules.len();
        rules.clear();
        self.armed.store(0, Ordering::Release);
        n
    }

    pub(crate) fn list(&self) -> Vec<FaultView> {
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .map(|r| {
                let remaining = r.remaining.load(Ordering::Acquire);
                FaultView {
                    id: r.id,
                    rule: r.rule.clone(),
                    applied: r.applied.load(Ordering::Relaxed),
                    remaining: (remaining != UNLIMITED).then_some(remaining),
                }
            })
            .collect()
    }

    /// The first rule (in insertion order) that hits this request, its hit consumed.
    pub(crate) fn pick(&self, reference: Option<&str>) -> Option<Arc<ActiveFault>> {
        if self.armed.load(Ordering::Acquire) == 0 {
            return None;
        }
        let rules = self.rules.read().unwrap_or_else(PoisonError::into_inner);
        rules
            .iter()
            .find(|r| {
                let hit = match &r.rule.target {
                    FaultTarget::Reference(want) => reference.is_some_and(|got| {
                        if self.case_insensitive { got.eq_ignore_ascii_case(want) } else { got == want }
                    }),
                    FaultTarget::Share(share) => *share > 0.0 && fastrand::f64() < *share,
                };
                hit && r.take()
            })
            .cloned()
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const HTML: HeaderValue = HeaderValue::from_static("text/html");

/// Serves `active` for one cancel request. `normal` runs the provider's real cancel logic (it
/// counts the request and may change the state); `count_only` only counts the request.
pub(crate) async fn apply<S: Sim>(
    sim: &S,
    active: &ActiveFault,
    reference: Option<&str>,
    kill: Option<ConnKill>,
    normal: impl FnOnce() -> Reply,
    count_only: impl FnOnce(),
) -> Response {
    let fault = &active.rule.fault;
    tracing::debug!(provider = sim.provider().id(), fault = %active.id, kind = fault.kind(), reference, "fault");
    let committed = match fault {
        Fault::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            return normal().into_response();
        }
        _ if active.rule.commit => Some(normal()),
        _ => {
            count_only();
            None
        }
    };
    match fault {
        Fault::Status { status, retry_after, body } => {
            let status = status_of(*status);
            let (content_type, body) = match body {
                None => (JSON, sim.error_body(status)),
                Some(serde_json::Value::String(text)) => (TEXT, Bytes::from(text.clone())),
                Some(value) => (JSON, Bytes::from(serde_json::to_vec(value).unwrap_or_default())),
            };
            let mut response = (status, [(CONTENT_TYPE, content_type)], body).into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        Fault::Reset => abort(kill, sim).await,
        Fault::Hang { ms } => {
            let hold = ms.map_or(DEFAULT_HANG, Duration::from_millis);
            tokio::select! {
                () = stopped(sim.common().stop.subscribe()) => {}
                () = tokio::time::sleep(hold) => {}
            }
            abort(kill, sim).await
        }
        Fault::MalformedJson { status } => {
            let full = match committed {
                Some(reply) => reply.body,
                None => sim.success_sample(reference.unwrap_or("unknown")),
            };
            let cut = full.slice(..(full.len() / 2).max(1).min(full.len()));
            (status_of(*status), [(CONTENT_TYPE, JSON)], cut).into_response()
        }
        Fault::Html { status } => {
            let status = status_of(*status);
            let line = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
            let page = format!(
                "<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1></center>\r\n\
                 <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            );
            (status, [(CONTENT_TYPE, HTML)], page).into_response()
        }
        Fault::Empty { status } => (status_of(*status), [(CONTENT_TYPE, JSON)], Bytes::new()).into_response(),
        Fault::Text { status, body } => (status_of(*status), [(CONTENT_TYPE, TEXT)], body.clone()).into_response(),
        // Handled above; kept so the match stays exhaustive without a wildcard.
        Fault::Latency { .. } => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Drops the connection with an RST and never answers. Without a connection handle (the router
/// served by something else than [`crate::serve`]) it can only wait for the sandbox to stop.
async fn abort<S: Sim>(kill: Option<ConnKill>, sim: &S) -> Response {
    let stop = sim.common().stop.subscribe();
    if let Some(kill) = kill {
        kill.fire();
    }
    stopped(stop).await;
    StatusCode::SERVICE_UNAVAILABLE.into_response()
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

    #[test]
    fn picks_in_order_and_counts_times() {
        let set = FaultSet::new(false);
        assert!(set.pick(Some("a")).is_none());
        let once = set.add(FaultRule::reference("a", Fault::Reset).times(1));
        let always = set.add(FaultRule::reference("a", Fault::hang()));
        assert_eq!(set.pick(Some("a")).map(|r| r.id), Some(once));
        assert_eq!(set.pick(Some("a")).map(|r| r.id), Some(always));
        assert!(set.pick(Some("b")).is_none());
        assert!(set.pick(None).is_none());
        assert!(set.remove(always));
        assert!(!set.remove(always));
        assert!(set.pick(Some("a")).is_none());
        let listed = set.list();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].applied, listed[0].remaining), (1, Some(0)));
        assert_eq!(set.clear(), 1);
    }

    #[test]
    fn shares_of_zero_and_one() {
        let set = FaultSet::new(true);
        set.add(FaultRule::share(0.0, Fault::Reset));
        assert!((0..1000).all(|_| set.pick(None).is_none()));
        set.add(FaultRule::share(7.0, Fault::Reset)); // clamped to 1.0
        assert!((0..1000).all(|_| set.pick(None).is_some()));
        set.clear();
        set.add(FaultRule::reference("9B2F", Fault::Reset));
        assert!(set.pick(Some("9b2f")).is_some());
    }
}
