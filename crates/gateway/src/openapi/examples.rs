//! Real answers as examples on the cancellation operations (Swagger UI would otherwise make one
//! up from the schema: `"status": "processing"`, `"attempts": 1073741824`).

use utoipa::openapi::{OpenApi as Document, RefOr};

use super::operation_mut;

/// A real cancellation, as the gateway answers it (Swagger UI would otherwise make one up from
/// the schema: `"status": "processing"`, `"attempts": 1073741824`).
fn cancellation_example(status: &str) -> serde_json::Value {
    let reference = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
    let settled = status == "cancelled";
    serde_json::json!({
        "id": "can_01JD7Q2Z3X4Y5W6V7U8T9S0R1P",
        "object": "cancellation",
        "provider": "chargeapi",
        "account": "default",
        "reference": reference,
        "status": status,
        "cancelled_at": if settled { serde_json::json!("2026-04-01T01:38:06.924Z") } else { serde_json::Value::Null },
        "attempts": 1,
        "replayed": false,
        "created_at": "2026-04-01T01:38:06.512Z",
        "updated_at": if settled { "2026-04-01T01:38:06.931Z" } else { "2026-04-01T01:38:16.514Z" },
        "error": null,
        "metadata": {"order_id": "A-1001"},
        "batch_id": null,
        "upstream": if settled {
            serde_json::json!({"status": 200, "body": {
                "id": reference, "object": "reservation", "status": "cancelled",
                "created": "2026-04-01T00:40:25.838Z", "updated": "2026-04-01T01:38:06.924Z", "metadata": {}
            }})
        } else {
            serde_json::Value::Null
        },
        "resolution": null,
    })
}

/// A real batch of two items (the second shed by a full bulkhead), as the gateway answers it.
fn batch_example(status: &str) -> serde_json::Value {
    let mut cancellation = cancellation_example(if status == "processing" { "processing" } else { "cancelled" });
    cancellation["batch_id"] = serde_json::json!("cb_01JD7Q2Z3X4Y5W6V7U8T9S0R1Q");
    cancellation["metadata"] = serde_json::json!({});
    let shed = serde_json::json!({
        "type": "/errors/provider_unavailable", "title": "Provider unavailable", "status": 503,
        "code": "provider_unavailable", "reason": null,
        "detail": "The provider has as many cancellations in flight as allowed; nothing was sent.",
        "retryable": true, "provider": "accommodation", "reference": "BK_EXAMPLE_001",
        "cancellation_id": null, "request_id": "0f5c2a7e-3b1d-4c8e-9a6f-2d7b8e1c4a90", "upstream": null,
    });
    serde_json::json!({
        "id": "cb_01JD7Q2Z3X4Y5W6V7U8T9S0R1Q",
        "object": "cancellation_batch",
        "status": status,
        "items": [
            {"index": 0, "cancellation": cancellation, "error": null},
            {"index": 1, "cancellation": null, "error": shed},
        ],
        "metadata": {"trip_id": "T-9"},
        "replayed": false,
        "created_at": "2026-04-01T01:38:06.501Z",
        "updated_at": if status == "processing" { "2026-04-01T01:38:16.514Z" } else { "2026-04-01T01:38:06.931Z" },
    })
}

/// A cancellation an operator resolved out of review.
fn resolved_example() -> serde_json::Value {
    let mut c = cancellation_example("cancelled");
    c["attempts"] = serde_json::json!(3);
    c["upstream"] = serde_json::Value::Null;
    c["updated_at"] = serde_json::json!("2026-04-01T09:12:44.120Z");
    c["cancelled_at"] = serde_json::json!("2026-04-01T09:12:44.120Z");
    c["resolution"] = serde_json::json!({"by": "ops-desk", "at": "2026-04-01T09:12:44.120Z",
        "note": "Checked with the provider's support: cancelled on their side.", "status": "cancelled"});
    c
}

/// The attempts of a cancellation that ended in review.
fn attempts_example() -> serde_json::Value {
    let attempt = |n: u32, started: &str, finished: &str| {
        serde_json::json!({"n": n, "started_at": started, "finished_at": finished, "latency_ms": 5001,
            "outcome": "ambiguous", "http_status": null, "body": null,
            "error": "upstream timeout: no answer within 5000 ms"})
    };
    serde_json::json!({"object": "list", "data": [
        attempt(1, "2026-04-01T01:38:06.512Z", "2026-04-01T01:38:11.513Z"),
        attempt(2, "2026-04-01T01:38:11.720Z", "2026-04-01T01:38:16.721Z"),
    ]})
}

/// Examples on the cancellation answers.
pub(super) fn add_examples(doc: &mut Document) {
    let batches: [(&str, &str, &str, &str); 3] = [
        ("/v1/cancellation-batches", "post", "200", "partially_failed"),
        ("/v1/cancellation-batches", "post", "202", "processing"),
        ("/v1/cancellation-batches/{id}", "get", "200", "partially_failed"),
    ];
    for (path, method, status, example) in batches {
        let Some(operation) = doc.paths.paths.get_mut(path).and_then(|item| operation_mut(item, method)) else {
            continue;
        };
        if let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status)
            && let Some(content) = response.content.get_mut("application/json")
        {
            content.example = Some(batch_example(example));
        }
    }
    let answers: [(&str, &str, &str, &str); 7] = [
        ("/v1/cancellations", "post", "200", "cancelled"),
        ("/v1/cancellations/{id}/resolve", "post", "200", "resolved"),
        ("/v1/cancellations/{id}/retry", "post", "202", "processing"),
        ("/v1/cancellations/{id}/attempts", "get", "200", "attempts"),
        ("/v1/cancellations", "post", "202", "processing"),
        ("/v1/cancellations/{id}", "get", "200", "cancelled"),
        ("/v1/cancellations", "get", "200", "cancelled"),
    ];
    for (path, method, status, example) in answers {
        let Some(operation) = doc.paths.paths.get_mut(path).and_then(|item| operation_mut(item, method)) else {
            continue;
        };
        let Some(RefOr::T(response)) = operation.responses.responses.get_mut(status) else {
            continue;
        };
        let cancellation = match example {
            "resolved" => resolved_example(),
            "attempts" => attempts_example(),
            other => cancellation_example(other),
        };
        let is_list = (path, method) == ("/v1/cancellations", "get");
        if let Some(content) = response.content.get_mut("application/json") {
            content.example = Some(if is_list {
                serde_json::json!({"object": "list", "data": [cancellation], "has_more": false})
            } else {
                cancellation
            });
        }
    }
}
