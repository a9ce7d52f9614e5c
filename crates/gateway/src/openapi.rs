//! The OpenAPI 3.1 document (`GET /openapi.json`) and the offline interactive docs (`GET /docs`).
//!
//! Bodies come from the real types (`CancelBody`, `Cancellation`, …, derived with utoipa); the
//! enumerations from the code (`ErrorCode::ALL`, `RefusalReason::ALL`, the registry's adapters).
//! Each route below lists its success answers and the error codes it can give; [`openapi`]
//! turns those codes into problem+json responses (with `Retry-After` on 429 and 503) and puts
//! `X-Request-Id` on every response, `security: []` on the operations endpoints and plain
//! string header parameters. [`document`] is what `/openapi.json` serves (`routes/docs.rs`): it
//! adds what utoipa's types cannot express. A route added to `routes::router` is added here too
//! (tests/api/openapi.rs checks both lists, and the points `redocly lint` checks in CI).

use std::borrow::Cow;
use std::collections::BTreeMap;

use cancelgate_core::{ErrorCode, RefusalReason};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use crate::api::{
    AttemptList, AttemptView, BatchBody, BatchItemView, BatchStatus, CancelBody, Cancellation, CancellationBatch,
    ResolutionView, ResolveBody, ResolveStatus, Status, UpstreamSnapshot,
};

/// The document as served at `/openapi.json`: [`openapi`], with what utoipa's types cannot say:
/// the per-provider reference formats ([`reference_formats`]) and the links from a created
/// cancellation to reading it (utoipa 5 spells a link's `operationId` as `operation_id`).
pub fn document() -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi()).unwrap_or_default();
    if let Some(body) = doc.pointer_mut("/components/schemas/CancelBody").and_then(|b| b.as_object_mut()) {
        body.insert("oneOf".to_owned(), reference_formats());
    }
    // Clients and stateful testers follow it: the answer's `id` is the read's `{id}`.
    let read = serde_json::json!({"GetCancellation": {
        "operationId": "getCancellation",
        "parameters": {"id": "$response.body#/id"},
        "description": "Read this cancellation (its outcome, once settled).",
    }});
    for status in ["200", "202"] {
        let pointer = format!("/paths/~1v1~1cancellations/post/responses/{status}");
        if let Some(response) = doc.pointer_mut(&pointer).and_then(|r| r.as_object_mut()) {
            response.insert("links".to_owned(), read.clone());
        }
    }
    doc
}

/// One branch per provider: its id, and the reference format its adapter checks (SPEC §2). The
/// body's own `properties` and `additionalProperties: false` still apply; a branch only narrows
/// `reference`, so a body generated from the schema is one the gateway accepts.
fn reference_formats() -> serde_json::Value {
    let branches: Vec<serde_json::Value> = crate::registry::adapters()
        .iter()
        .map(|adapter| {
            let id = adapter.id().as_str();
            serde_json::json!({
                "title": id,
                "required": ["provider", "reference"],
                "properties": {
                    "provider": {"const": id},
                    "reference": {
                        "type": "string",
                        "pattern": adapter.reference_pattern(),
                        "description": format!("A `{id}` reference."),
                    },
                },
            })
        })
        .collect();
    serde_json::Value::Array(branches)
}

/// The document, built once per call (cheap; the router builds it once).
pub fn openapi() -> Document {
    let mut doc = ApiDoc::openapi();
    // Relative: the gateway that serves this document is the one it describes.
    doc.servers = Some(vec![
        utoipa::openapi::server::ServerBuilder::new()
            .url("/")
            .description(Some("This gateway (the host serving this document)."))
            .build(),
    ]);
    for (path, method, codes) in ERRORS {
        if let Some(operation) = doc.paths.paths.get_mut(*path).and_then(|item| operation_mut(item, method)) {
            add_problems(operation, codes);
        }
    }
    for item in doc.paths.paths.values_mut() {
        for method in ["get", "post"] {
            if let Some(operation) = operation_mut(item, method) {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        response.headers.insert("X-Request-Id".to_owned(), request_id_header());
                    }
                }
                // After the loop above: hyper writes this answer itself, without our headers.
                operation.responses.responses.insert("431".to_owned(), RefOr::T(header_too_large()));
                // Operations endpoints need no key: say so (an absent `security` says nothing).
                operation.security.get_or_insert_with(Vec::new);
                plain_header_parameters(operation);
            }
        }
    }
    add_examples(&mut doc);
    doc
}

/// Optional header parameters come out of utoipa typed `["string", "null"]`; a header is never
/// JSON `null` (Swagger UI showed "stringnull", a fuzzer sent the text `null`).
fn plain_header_parameters(operation: &mut Operation) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::SchemaType;
    for parameter in operation.parameters.iter_mut().flatten() {
        if !matches!(parameter.parameter_in, ParameterIn::Header) {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(object))) = parameter.schema.as_mut()
            && let SchemaType::Array(types) = &object.schema_type
        {
            let types: Vec<Type> = types.iter().filter(|t| **t != Type::Null).cloned().collect();
            object.schema_type = match types.as_slice() {
                [one] => SchemaType::Type(one.clone()),
                _ => SchemaType::Array(types),
            };
        }
    }
}

/// `431`: the request head is over `limits.max_header_bytes` or `limits.max_headers`. Hyper
/// answers it before any routing, so it has no body and no `X-Request-Id`.
fn header_too_large() -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(
            "Request header fields too large (over the gateway's limits); answered before routing, without a body.",
        )
        .build()
}

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
fn add_examples(doc: &mut Document) {
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

/// The error codes each operation can answer with, beyond its success answers.
const ERRORS: &[(&str, &str, &[ErrorCode])] = {
    use ErrorCode::*;
    &[
        (
            "/v1/cancellations",
            "post",
            &[
                InvalidRequest,
                Unauthorized,
                Forbidden,
                NotFound,
                AlreadyCancelled,
                NotCancellable,
                RequestInProgress,
                PayloadTooLarge,
                IdempotencyKeyReused,
                UpstreamRejected,
                RateLimited,
                Internal,
                UpstreamError,
                ProviderMisconfigured,
                ProviderUnavailable,
                LedgerUnavailable,
                UpstreamTimeout,
            ],
        ),
        ("/v1/cancellations", "get", &[InvalidRequest, Unauthorized, RateLimited, Internal, LedgerUnavailable]),
        ("/v1/cancellations/{id}", "get", &[Unauthorized, NotFound, RateLimited, Internal, LedgerUnavailable]),
        (
            "/v1/cancellation-batches",
            "post",
            &[
                InvalidRequest,
                Unauthorized,
                Forbidden,
                RequestInProgress,
                PayloadTooLarge,
                IdempotencyKeyReused,
                RateLimited,
                Internal,
                ProviderUnavailable,
                LedgerUnavailable,
            ],
        ),
        ("/v1/cancellation-batches/{id}", "get", &[Unauthorized, NotFound, RateLimited, Internal, LedgerUnavailable]),
        (
            "/v1/cancellations/{id}/attempts",
            "get",
            &[Unauthorized, Forbidden, NotFound, RateLimited, Internal, LedgerUnavailable],
        ),
        (
            "/v1/cancellations/{id}/resolve",
            "post",
            &[
                InvalidRequest,
                Unauthorized,
                Forbidden,
                NotFound,
                NotResolvable,
                PayloadTooLarge,
                Internal,
                LedgerUnavailable,
            ],
        ),
        (
            "/v1/cancellations/{id}/retry",
            "post",
            &[
                InvalidRequest,
                Unauthorized,
                Forbidden,
                NotFound,
                NotResolvable,
                PayloadTooLarge,
                Internal,
                LedgerUnavailable,
            ],
        ),
        ("/v1/events", "get", &[InvalidRequest, Unauthorized, Forbidden, Internal, LedgerUnavailable]),
        ("/v1/events/{id}", "get", &[Unauthorized, Forbidden, NotFound, Internal, LedgerUnavailable]),
        (
            "/v1/events/{id}/redeliver",
            "post",
            &[InvalidRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge, Internal, LedgerUnavailable],
        ),
        ("/v1/providers", "get", &[Unauthorized, Internal]),
        ("/errors/{code}", "get", &[NotFound]),
    ]
};

fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        _ => None,
    }
}

/// One problem+json response per HTTP status, naming the codes it stands for.
fn add_problems(operation: &mut Operation, codes: &[ErrorCode]) {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in codes {
        by_status.entry(code.http_status()).or_default().push(*code);
    }
    for (status, codes) in by_status {
        let described: Vec<String> =
            codes.iter().map(|c| format!("`{}`: {}", c.as_str(), c.doc().title.trim_end_matches('.'))).collect();
        let mut response = ResponseBuilder::new().description(described.join("; ")).content(
            crate::error::PROBLEM_JSON,
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        );
        if matches!(status, 405) {
            response = response.header("Allow", string_header("The methods this route accepts."));
        }
        if matches!(status, 429 | 503) {
            let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new().schema(seconds).description(Some("Seconds to wait before retrying.")).build(),
            );
        }
        operation.responses.responses.insert(status.to_string(), RefOr::T(response.build()));
    }
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::String)).description(Some(description)).build()
}

fn request_id_header() -> utoipa::openapi::Header {
    string_header(
        "The request's id: the caller's `X-Request-Id` when well formed, else generated. Sent upstream and logged.",
    )
}

/// `code` of a problem: every member of `ErrorCode::ALL`.
#[derive(Debug)]
pub struct ErrorCodeSchema;

impl PartialSchema for ErrorCodeSchema {
    fn schema() -> RefOr<Schema> {
        let pages: Vec<String> =
            ErrorCode::ALL.iter().map(|c| format!("`{}` (HTTP {})", c.as_str(), c.http_status())).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(format!("The error code; `/errors/{{code}}` describes each: {}.", pages.join(", "))))
            .into()
    }
}

impl ToSchema for ErrorCodeSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// `reason` of a `not_cancellable` problem.
#[derive(Debug)]
pub struct RefusalReasonSchema;

impl PartialSchema for RefusalReasonSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(RefusalReason::ALL.iter().map(|r| r.as_str())))
            .description(Some("Why the provider refuses (`not_cancellable` only)."))
            .into()
    }
}

impl ToSchema for RefusalReasonSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RefusalReason")
    }
}

/// `metadata` of a request: at most 20 string entries, keys 1–40 characters, values at most 500.
pub fn metadata_schema() -> Schema {
    use utoipa::openapi::schema::{AdditionalProperties, SchemaType};
    let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(crate::api::MAX_METADATA_VALUE_CHARS));
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::api::MAX_METADATA_KEY_CHARS));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(value.build())))))
        .property_names(Some(key))
        .max_properties(Some(crate::api::MAX_METADATA_ENTRIES))
        .description(Some("Stored and returned, never sent upstream."))
        .into()
}

/// A provider id: every adapter the gateway is built with.
#[derive(Debug)]
pub struct ProviderIdSchema;

impl PartialSchema for ProviderIdSchema {
    fn schema() -> RefOr<Schema> {
        let ids: Vec<&'static str> = crate::registry::adapters().iter().map(|a| a.id().as_str()).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ids))
            .description(Some("A provider id (fixed; also in URLs, config and metrics)."))
            .into()
    }
}

impl ToSchema for ProviderIdSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ProviderId")
    }
}

/// An error answer: RFC 9457 problem+json with cancelgate's members (`error::Problem`).
#[derive(Debug, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemSchema {
    /// `/errors/{code}`: a page describing the code.
    #[schema(rename = "type", example = "/errors/not_cancellable")]
    pub type_: String,
    #[schema(example = "Reservation cannot be cancelled")]
    pub title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599, example = 409)]
    pub status: u16,
    pub code: ErrorCodeSchema,
    pub reason: Option<RefusalReasonSchema>,
    pub detail: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    pub provider: Option<String>,
    pub reference: Option<String>,
    /// Present whenever a ledger record exists.
    pub cancellation_id: Option<String>,
    pub request_id: Option<String>,
    /// Present whenever a provider answered.
    pub upstream: Option<UpstreamProblemSchema>,
    /// The offending field or header of an `invalid_request`.
    pub param: Option<String>,
    /// Present (true) when this answer replays a stored one.
    pub replayed: Option<bool>,
}

/// What the provider answered, in a problem.
#[derive(Debug, ToSchema)]
#[schema(as = UpstreamProblem)]
pub struct UpstreamProblemSchema {
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    /// The provider's body, verbatim (a string when it was not JSON).
    pub body: serde_json::Value,
}

/// `GET /v1/cancellations`.
#[derive(Debug, ToSchema)]
#[schema(as = CancellationList)]
pub struct CancellationListSchema {
    /// Always `list`.
    #[schema(pattern = "^list$", example = "list")]
    pub object: String,
    pub data: Vec<Cancellation>,
    pub has_more: bool,
}

/// `GET /healthz`.
#[derive(Debug, ToSchema)]
#[schema(as = Health)]
pub struct HealthSchema {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz`: `ready`, or `not_ready` with the failing checks and the cause.
#[derive(Debug, ToSchema)]
#[schema(as = Readiness)]
pub struct ReadinessSchema {
    #[schema(example = "ready")]
    pub status: String,
    pub checks: ReadinessChecksSchema,
    /// When not ready: what failed, in words (e.g. the database error). Never a secret.
    pub cause: Option<String>,
}

#[derive(Debug, ToSchema)]
#[schema(as = ReadinessChecks)]
pub struct ReadinessChecksSchema {
    #[schema(example = "ok")]
    pub config: String,
    /// `ok`, or why the ledger cannot take a write: `unreachable`, `disk_full`, `io_error`,
    /// `busy`, `write_failing`; `not_checked` while shutting down.
    #[schema(example = "ok")]
    pub ledger: String,
    /// `ok`, `pending`, `unknown` (the ledger failed first) or `not_checked`.
    #[schema(example = "ok")]
    pub migrations: String,
    /// `draining` once the shutdown signal arrived; absent otherwise.
    pub shutdown: Option<String>,
    /// Where provider quotas are decided (SPEC §11): `local`, `shared`, `local_fallback` (the
    /// shared store failed; each process limits itself, still ready) or `store_unavailable`
    /// (a provider with `on_store_error = "deny"` refuses calls). Absent while shutting down.
    #[schema(example = "local")]
    pub rate_limits: Option<String>,
}

/// `GET /errors/{code}` as JSON.
#[derive(Debug, ToSchema)]
#[schema(as = ErrorCodeDoc)]
pub struct ErrorCodeDocSchema {
    pub code: ErrorCodeSchema,
    pub status: u16,
    pub title: String,
    pub meaning: String,
    pub what_to_do: String,
    pub retryable: bool,
}

/// `GET /errors` as JSON.
#[derive(Debug, ToSchema)]
#[schema(as = ErrorCodeList)]
pub struct ErrorCodeListSchema {
    #[schema(pattern = "^list$")]
    pub object: String,
    pub data: Vec<ErrorCodeDocSchema>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "cancelgate",
        description = "One HTTP API that cancels reservations and bookings at several upstream providers, \
                       with one answer shape. Errors are RFC 9457 problem+json; every response carries `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        create_cancellation,
        list_cancellations,
        get_cancellation,
        create_cancellation_batch,
        get_cancellation_batch,
        list_attempts,
        resolve_cancellation,
        retry_cancellation,
        list_events,
        get_event,
        redeliver_event,
        list_providers,
        healthz,
        readyz,
        metrics,
        openapi_json,
        docs,
        errors_index,
        error_page
    ),
    components(schemas(
        CancelBody,
        Cancellation,
        Status,
        BatchBody,
        CancellationBatch,
        BatchItemView,
        BatchStatus,
        UpstreamSnapshot,
        ResolutionView,
        ResolveBody,
        ResolveStatus,
        AttemptView,
        AttemptList,
        ProblemSchema,
        UpstreamProblemSchema,
        ErrorCodeSchema,
        RefusalReasonSchema,
        ProviderIdSchema,
        CancellationListSchema,
        crate::routes::ProviderList,
        crate::routes::ProviderView,
        crate::routes::ProviderHealth,
        crate::routes::LatencyMs,
        crate::routes::ProviderRateLimit,
        crate::routes::events::EventView,
        crate::routes::events::EventList,
        crate::routes::events::DeliveryView,
        crate::routes::events::DeliveryStatusView,
        crate::routes::events::DeliveryAttemptView,
        crate::routes::events::RedeliverBody
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "cancellations", description = "Cancel and audit (needs `Authorization: Bearer <client key>`)."),
        (name = "events", description = "Outcome events and their webhook deliveries (SPEC §8)."),
        (name = "operations", description = "Health, metrics, documentation (no key needed)."),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A client key (`Authorization: Bearer <client key>`); the development demo key is in the README."))
                    .build(),
            ),
        );
    }
}

// ---- the operations (documentation only: the handlers are in `routes`) --------------------------

/// Cancel a reservation or booking.
///
/// Answers `200` when the provider confirmed, `202` (`processing` or `needs_review`) when the
/// outcome is not confirmed yet, otherwise a problem. Every authenticated, valid request
/// creates a ledger record, refusals included.
#[utoipa::path(
    post, path = "/v1/cancellations", tag = "cancellations", operation_id = "createCancellation",
    request_body(content = CancelBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "Same key, same client and same body: the stored answer is replayed (1–255 printable ASCII). A replay's `X-Request-Id` header is this request's; its body keeps the original `request_id`."),
        ("X-Request-Id" = Option<String>, Header,
         description = "Echoed, sent upstream and logged when 1–128 of `A–Z a–z 0–9 - _ . : / + =`; any other value is replaced by a generated id."),
        ("traceparent" = Option<String>, Header,
         description = "W3C trace context; forwarded upstream when well formed, ignored otherwise."),
    ),
    responses(
        (status = 200, description = "Cancelled: the provider confirmed (or a replay of an earlier confirmation).", body = Cancellation),
        (status = 202, description = "Accepted, not confirmed: `processing` (driven in the background) or `needs_review`.",
         body = Cancellation, headers(("Location" = String, description = "`/v1/cancellations/{id}`: where to read the outcome."))),
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn create_cancellation() {}

/// List cancellations, newest first.
#[utoipa::path(
    get, path = "/v1/cancellations", tag = "cancellations", operation_id = "listCancellations",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1–100 (default 20)."),
        ("starting_after" = Option<String>, Query, description = "The id of the last cancellation of the previous page."),
        ("provider" = Option<String>, Query),
        ("account" = Option<String>, Query),
        ("reference" = Option<String>, Query),
        ("status" = Option<Status>, Query),
        ("created_gte" = Option<String>, Query, format = DateTime, description = "RFC 3339."),
        ("created_lt" = Option<String>, Query, format = DateTime, description = "RFC 3339."),
        ("X-Request-Id" = Option<String>, Header, description = "As on `POST /v1/cancellations`."),
    ),
    responses((status = 200, description = "One page.", body = CancellationListSchema)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn list_cancellations() {}

/// One cancellation, as stored.
#[utoipa::path(
    get, path = "/v1/cancellations/{id}", tag = "cancellations", operation_id = "getCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 200, description = "The cancellation.", body = Cancellation)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn get_cancellation() {}

/// Cancel a trip: up to 50 cancellations, at any providers, in one call.
///
/// Not atomic: every item becomes its own Cancellation (with `batch_id`), validated before
/// anything is recorded, and run concurrently within each provider's limits. An item shed by a
/// limit carries its problem and has no cancellation. `200` when no item is processing, else
/// `202` with `Location` once `limits.respond_within_ms` has passed.
#[utoipa::path(
    post, path = "/v1/cancellation-batches", tag = "cancellations", operation_id = "createCancellationBatch",
    request_body(content = BatchBody, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[\\x20-\\x7E]+$",
         description = "For the batch as a whole: same key, same client and same body replays the batch (as it stands now, `replayed: true`) without sending anything."),
        ("X-Request-Id" = Option<String>, Header, description = "As on `POST /v1/cancellations`."),
    ),
    responses(
        (status = 200, description = "No item is processing: every item is final (or was shed).", body = CancellationBatch),
        (status = 202, description = "Some item is still processing.", body = CancellationBatch,
         headers(("Location" = String, description = "`/v1/cancellation-batches/{id}`: where to read the batch."))),
    ),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn create_cancellation_batch() {}

/// One batch, each item as it stands now.
#[utoipa::path(
    get, path = "/v1/cancellation-batches/{id}", tag = "cancellations", operation_id = "getCancellationBatch",
    params(("id" = String, Path, description = "The batch id (`cb_…`).")),
    responses((status = 200, description = "The batch.", body = CancellationBatch)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn get_cancellation_batch() {}

/// Every upstream attempt of a cancellation, oldest first (scope `read`).
///
/// Each attempt's outcome, HTTP status, latency and the provider's body as recorded (secrets
/// scrubbed).
#[utoipa::path(
    get, path = "/v1/cancellations/{id}/attempts", tag = "cancellations", operation_id = "listCancellationAttempts",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 200, description = "The attempts, oldest first.", body = AttemptList)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn list_attempts() {}

/// Settle a cancellation that needs review (scope `operate`).
///
/// Only from `needs_review`: it becomes `cancelled` (`cancelled_at` now) or `failed`
/// (`error.code` `not_cancellable`, `reason` `resolved_by_operator`, `detail` the note), with
/// `resolution` saying who, when and why. Nothing is sent upstream; `attempts` is unchanged. The
/// same body again answers `200` with the record (`replayed: true`); anything else on a
/// cancellation not in review is `409 not_resolvable`.
#[utoipa::path(
    post, path = "/v1/cancellations/{id}/resolve", tag = "cancellations", operation_id = "resolveCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    request_body(content = ResolveBody, content_type = "application/json"),
    responses((status = 200, description = "Resolved (or a replay of the same resolution).", body = Cancellation)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn resolve_cancellation() {}

/// Drive a cancellation that needs review again (scope `operate`).
///
/// Only from `needs_review` and only where the provider's repeated cancel is safe (chargeapi):
/// the cancellation goes back to `processing` for a new round of attempts, driven in the
/// background; read it for the outcome. Otherwise `409 not_resolvable`. The body is empty or `{}`.
#[utoipa::path(
    post, path = "/v1/cancellations/{id}/retry", tag = "cancellations", operation_id = "retryCancellation",
    params(("id" = String, Path, description = "The cancellation id (`can_…`).")),
    responses((status = 202, description = "Processing again.", body = Cancellation,
        headers(("Location" = String, description = "`/v1/cancellations/{id}`: where to read the outcome.")))),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn retry_cancellation() {}

/// Outcome events, newest first (scope `read`; SPEC §8).
///
/// Cursor-paginated like the cancellations (`limit` 1–100, default 20; `starting_after` an event
/// id). Filters: `type`, `cancellation_id`, `delivery_status` (events with at least one delivery
/// `pending`, `delivered` or `failed`). Listed events carry no `deliveries`; read one for them.
#[utoipa::path(
    get, path = "/v1/events", tag = "events", operation_id = "listEvents",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100 (default 20)."),
        ("starting_after" = Option<String>, Query, description = "An event id: the page after it."),
        ("type" = Option<String>, Query, description = "An event type."),
        ("cancellation_id" = Option<String>, Query, description = "The cancellation the events are about."),
        ("delivery_status" = Option<String>, Query, description = "`pending`, `delivered` or `failed`."),
    ),
    responses((status = 200, description = "A page of events.", body = crate::routes::events::EventList)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn list_events() {}

/// One event with its deliveries, one per endpoint (and per redelivery), and their attempts.
#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events", operation_id = "getEvent",
    params(("id" = String, Path, description = "The event id (`evt_…`).")),
    responses((status = 200, description = "The event.", body = crate::routes::events::EventView)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn get_event() {}

/// Queue an event again (scope `operate`).
///
/// A new delivery to every endpoint that takes the event (`{}`), or to the one named
/// (`{"endpoint": name}`); the receiver gets the same `webhook-id`.
#[utoipa::path(
    post, path = "/v1/events/{id}/redeliver", tag = "events", operation_id = "redeliverEvent",
    params(("id" = String, Path, description = "The event id (`evt_…`).")),
    request_body(content = crate::routes::events::RedeliverBody, content_type = "application/json"),
    responses((status = 202, description = "Queued; the event with its deliveries.", body = crate::routes::events::EventView)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn redeliver_event() {}

/// Each provider: accounts (names only) and health.
#[utoipa::path(
    get, path = "/v1/providers", tag = "providers", operation_id = "listProviders",
    responses((status = 200, description = "The configured providers.", body = crate::routes::ProviderList)),
    security(("bearer" = []))
)]
#[allow(dead_code)]
fn list_providers() {}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive.", body = HealthSchema)))]
#[allow(dead_code)]
fn healthz() {}

/// Ready for traffic: configuration loaded, ledger reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = ReadinessSchema),
        (status = 503, description = "Not ready; `checks` says why.", body = ReadinessSchema),
    ))]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses((status = 200, description = "Metrics.", content_type = "text/plain", body = String)))]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object)))]
#[allow(dead_code)]
fn openapi_json() {}

/// Interactive documentation (works offline; redirects to `/docs/`).
#[utoipa::path(get, path = "/docs", tag = "operations", operation_id = "docs",
    responses(
        (status = 200, description = "The docs page (after the redirect).", content_type = "text/html", body = String),
        (status = 303, description = "To `/docs/`.", headers(("Location" = String))),
    ))]
#[allow(dead_code)]
fn docs() {}

/// Every error code: HTML, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors", tag = "operations", operation_id = "listErrorCodes",
    responses((status = 200, description = "The error codes.", content(
        (ErrorCodeListSchema = "application/json"),
        (String = "text/html"),
    ))))]
#[allow(dead_code)]
fn errors_index() {}

/// What an error code means and what to do: HTML, or JSON with `Accept: application/json`.
#[utoipa::path(get, path = "/errors/{code}", tag = "operations", operation_id = "getErrorCode",
    params(("code" = ErrorCodeSchema, Path)),
    responses((status = 200, description = "The code's page.", content(
        (ErrorCodeDocSchema = "application/json"),
        (String = "text/html"),
    ))))]
#[allow(dead_code)]
fn error_page() {}
