//! What the pages show, as plain values for the templates (pure: no I/O). Every string here is
//! data; the templates escape it (auto-escaping for `.html`), so nothing a caller or a provider
//! wrote can become markup.

use serde_json::{Value, json};

use crate::api::{AttemptView, Cancellation};
use crate::routes::ProviderView;
use crate::routes::event_views::EventView;

/// The words a status is shown with.
pub fn status_label(status: &str) -> &str {
    match status {
        "needs_review" => "needs review",
        other => other,
    }
}

/// A Cancellation as the list and the detail page show it.
pub fn cancellation(c: &Cancellation) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    let status = c.status.as_str();
    let metadata: Vec<Value> = c.metadata.iter().map(|(k, val)| json!({"key": k, "value": val})).collect();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("status_label".into(), json!(status_label(status)));
        obj.insert("metadata".into(), json!(metadata));
        obj.insert("upstream_status".into(), json!(c.upstream.as_ref().map(|u| u.status)));
        obj.insert("created_short".into(), json!(short_time(&c.created_at)));
        obj.insert("updated_short".into(), json!(short_time(&c.updated_at)));
    }
    v
}

/// `2026-12-02T01:43:15.186Z` as a table shows it: `2026-12-02 01:43:15` (UTC, as the heading says).
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..19).map_or_else(|| rfc3339.to_owned(), |t| t.replacen('T', " ", 1))
}

/// The badge an attempt's outcome wears.
fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "cancelled" => "cancelled",
        "ambiguous" | "needs_review" | "transient" | "rate_limited" => "ambiguous",
        "refused" => "failed",
        _ => "neutral",
    }
}

/// An upstream body as text: JSON pretty-printed, a string (a body that was not JSON) as it is.
pub fn body_text(body: &Value) -> String {
    match body {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

pub fn attempt(a: &AttemptView) -> Value {
    json!({
        "n": a.n,
        "outcome": a.outcome,
        "outcome_class": outcome_class(&a.outcome),
        "http_status": a.http_status,
        "latency": a.latency_ms.map_or_else(|| "no answer".to_owned(), |ms| format!("{ms} ms")),
        "started_at": a.started_at,
        "finished_at": a.finished_at,
        "body": a.body.as_ref().filter(|b| !b.is_null()).map(body_text),
        "error": a.error,
    })
}

/// An event and its deliveries (SPEC §8): one row per delivery, with its last attempt.
pub fn event(e: &EventView) -> Value {
    let deliveries: Vec<Value> = e
        .deliveries
        .iter()
        .flatten()
        .map(|d| {
            let last = d.attempts.last();
            let status = serde_json::to_value(d.status).unwrap_or(Value::Null);
            json!({
                "endpoint": d.endpoint,
                "status": status,
                "attempts": d.attempts.len(),
                "last": last.map(|a| json!({
                    "at": a.at,
                    "http_status": a.http_status,
                    "latency": format!("{} ms", a.latency_ms),
                    "error": a.error,
                })),
                "next_attempt_at": d.next_attempt_at,
            })
        })
        .collect();
    json!({"id": e.id, "type": e.kind, "created_at": e.created_at, "deliveries": deliveries})
}

pub fn provider(p: &ProviderView) -> Value {
    let ms = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |ms| format!("{ms:.0} ms"));
    let h = &p.health;
    json!({
        "id": p.id,
        "enabled": p.enabled,
        "accounts": p.accounts.join(", "),
        "circuit": h.circuit,
        "circuit_label": h.circuit.replace('_', "-"),
        "success_rate": h.success_rate.map_or_else(|| "no calls yet".to_owned(), |r| format!("{:.1} %", r * 100.0)),
        "latency": format!("{} / {}", ms(h.latency_ms.p50), ms(h.latency_ms.p99)),
        "in_flight": h.in_flight,
        "max_in_flight": h.max_in_flight,
        "rate_limit": match p.rate_limit.limited_for_ms {
            Some(wait) => format!("{} /s, held back {wait} ms by the provider", p.rate_limit.per_second),
            None => format!("{} /s", p.rate_limit.per_second),
        },
    })
}

/// A time filter as an operator types it, made RFC 3339 (UTC): `2026-12-01` and
/// `2026-12-01T10:00` (a `datetime-local` value) are accepted beside a full RFC 3339 time.
pub fn normalize_time(value: &str) -> String {
    let v = value.trim();
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4) && digits(5..7) && digits(8..10) {
        return format!("{v}T00:00:00Z");
    }
    // `get` stops at a character boundary, so the slices below cannot split a character.
    if let Some(p) = v.get(..16)
        && b[10] == b'T'
        && b[13] == b':'
        && matches!(&v[16..], "" | "Z")
    {
        return format!("{p}:00Z");
    }
    v.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_times_become_rfc3339() {
        assert_eq!(normalize_time("2026-12-01"), "2026-12-01T00:00:00Z");
        assert_eq!(normalize_time("2026-12-01T10:30"), "2026-12-01T10:30:00Z");
        assert_eq!(normalize_time("2026-12-01T10:30Z"), "2026-12-01T10:30:00Z");
        assert_eq!(normalize_time(" 2026-12-01T10:30:05.123Z "), "2026-12-01T10:30:05.123Z");
        assert_eq!(normalize_time("yesterday"), "yesterday", "left for the listing to refuse");
        assert_eq!(normalize_time("é"), "é");
    }

    #[test]
    fn bodies_are_text() {
        assert_eq!(body_text(&json!("<script>x</script>")), "<script>x</script>");
        assert!(body_text(&json!({"a": 1})).contains("\"a\": 1"));
    }
}
