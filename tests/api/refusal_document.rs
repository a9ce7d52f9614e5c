//! A refusal is one document (SPEC §2 "Idempotency", §3): answered fresh, replayed under its
//! idempotency key, and read back as the `error` of `GET /v1/cancellations/{id}`, it is the same
//! problem, member for member and in the same order; a replay adds only `"replayed": true`.
//! Compared as the bytes sent, since a parsed `Value` would hide a difference of member order.

use crate::helpers::{DEMO_KEY, SandboxApp, spawn_on_sandbox};

/// A refusal each provider can give (the README's seeded references).
const REFUSALS: [(&str, &str); 3] = [
    ("chargeapi", "res_completed01"),
    ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f01"),
    ("accommodation", "BK_PAST_CHECKIN_001"),
];

/// SPEC §3's members, in its order.
const SPEC_ORDER: [&str; 12] = [
    "type",
    "title",
    "status",
    "code",
    "reason",
    "detail",
    "retryable",
    "provider",
    "reference",
    "cancellation_id",
    "request_id",
    "upstream",
];

#[tokio::test]
async fn a_refusal_fresh_replayed_and_read_back_is_one_document() {
    let app = spawn_on_sandbox(&[]).await;
    for (provider, reference) in REFUSALS {
        let key = format!("refusal-{provider}");
        let (status, fresh) = post(&app, provider, reference, &key).await;
        assert_eq!(status, 409, "{provider}: {fresh}");
        let names: Vec<&str> = members(&fresh).into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, SPEC_ORDER, "{provider}: the members of SPEC §3, in its order: {fresh}");

        let (replay_status, replay) = post(&app, provider, reference, &key).await;
        assert_eq!(replay_status, status, "{provider}");
        let without_flag = replay.strip_suffix(r#","replayed":true}"#).map(|head| format!("{head}}}"));
        assert_eq!(without_flag.as_deref(), Some(fresh.as_str()), "{provider}: the replay adds only `replayed`");

        let id = value_of(&fresh, "cancellation_id").trim_matches('"').to_owned();
        let response =
            app.client.get(app.url(&format!("/v1/cancellations/{id}"))).bearer_auth(DEMO_KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let record = response.text().await.unwrap();
        assert_eq!(value_of(&record, "status"), r#""failed""#, "{record}");
        assert_eq!(value_of(&record, "error"), fresh, "{provider}: GET's `error` is the answer given");
    }
}

async fn post(app: &SandboxApp, provider: &str, reference: &str, key: &str) -> (u16, String) {
    let response = app
        .client
        .post(app.url("/v1/cancellations"))
        .bearer_auth(DEMO_KEY)
        .header("idempotency-key", key)
        .json(&serde_json::json!({"provider": provider, "reference": reference}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    (status, response.text().await.unwrap())
}

/// The raw text of the top-level member `name` of a JSON object.
fn value_of<'a>(object: &'a str, name: &str) -> &'a str {
    members(object).into_iter().find(|(n, _)| *n == name).map(|(_, v)| v).unwrap_or_else(|| panic!("no {name}"))
}

/// The top-level members of a compact JSON object, in the order sent: (name, raw value text).
fn members(object: &str) -> Vec<(&str, &str)> {
    let bytes = object.as_bytes();
    assert_eq!((bytes.first(), bytes.last()), (Some(&b'{'), Some(&b'}')), "{object}");
    let mut out = Vec::new();
    let mut i = 1;
    while i < bytes.len() - 1 {
        let name_end = string_end(bytes, i);
        let name = &object[i + 1..name_end - 1];
        assert_eq!(bytes[name_end], b':', "{object}");
        let start = name_end + 1;
        let (mut depth, mut j) = (0usize, start);
        while j < bytes.len() - 1 {
            match bytes[j] {
                b'"' => j = string_end(bytes, j) - 1,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        out.push((name, &object[start..j]));
        i = j + 1;
    }
    out
}

/// Where the JSON string starting at `start` (its opening quote) ends: one past its closing quote.
fn string_end(bytes: &[u8], start: usize) -> usize {
    assert_eq!(bytes[start], b'"');
    let mut i = start + 1;
    while bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}
