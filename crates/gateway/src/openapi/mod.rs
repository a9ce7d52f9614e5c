//! The OpenAPI 3.1 document (`GET /openapi.json`) and the offline interactive docs (`GET /docs`).
//!
//! Each operation is the `#[utoipa::path]` annotation on its real handler in `routes/`, which
//! names its success answers and its problems: a [`problems!`] type listing the error codes the
//! handler can answer with (and, on `/v1`, [`V1_LAYERS`]: what its `Caller` answers before it
//! reads the request). Bodies come from the real types (`CancelBody`, `Cancellation`, `Problem`, …, derived
//! with utoipa); the enumerations from the code (`schemas.rs`: `ErrorCode::ALL`,
//! `RefusalReason::ALL`, the registry's adapters). [`openapi`] puts `X-Request-Id` on every
//! response, `security: []` on the operations endpoints and plain string header parameters;
//! [`document`] is what `/openapi.json` serves (`routes/docs.rs`): it adds what utoipa's types
//! cannot express. A route added to `routes::router` is added to [`ApiDoc`]'s `paths` too
//! (tests/api/openapi.rs checks both lists, and the points `redocly lint` checks in CI).

mod examples;
mod schemas;

use std::collections::BTreeMap;

use cancelgate_core::ErrorCode;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

pub use schemas::{
    CancellationListSchema, ErrorCodeDocSchema, ErrorCodeListSchema, ErrorCodeSchema, HealthSchema, ProviderIdSchema,
    ReadinessChecksSchema, ReadinessSchema, RefusalReasonSchema, UpstreamProblemSchema, metadata_schema,
};

use crate::api::{
    AttemptList, AttemptView, BatchBody, BatchItemView, BatchStatus, CancelBody, Cancellation, CancellationBatch,
    ResolutionView, ResolveBody, ResolveStatus, Status, UpstreamSnapshot,
};
use crate::error::Problem;
use crate::routes;

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
    examples::add_examples(&mut doc);
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

pub(super) fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        _ => None,
    }
}

/// What every `/v1` route can answer before its handler reads the request (its `Caller`): `401`
/// and `403` (`routes::authorize`: no valid key, or not the route's scope) and `429` (the client's
/// quota, `client_limits::admit`).
pub const V1_LAYERS: &[ErrorCode] = &[ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::RateLimited];

/// A type for a `#[utoipa::path]`'s `responses(...)`: the problems its handler can answer with,
/// one problem+json response per HTTP status naming its codes. `V1_LAYERS + [...]` adds what a
/// `/v1` route's `Caller` answers ([`V1_LAYERS`]). Declared beside the handler, so a code it lists
/// and cannot return (or returns and does not list) is a diff in that handler's module.
macro_rules! problems {
    ($(#[$meta:meta])* $vis:vis $name:ident = V1_LAYERS + [$($code:ident),* $(,)?]) => {
        $crate::openapi::problems!($(#[$meta])* $vis $name = @($crate::openapi::V1_LAYERS) [$($code),*]);
    };
    ($(#[$meta:meta])* $vis:vis $name:ident = [$($code:ident),* $(,)?]) => {
        $crate::openapi::problems!($(#[$meta])* $vis $name = @(&[]) [$($code),*]);
    };
    ($(#[$meta:meta])* $vis:vis $name:ident = @($layers:expr) [$($code:ident),*]) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::openapi::problem_responses($layers, &[$(cancelgate_core::ErrorCode::$code),*])
            }
        }
    };
}
pub(crate) use problems;

/// One problem+json response per HTTP status, naming the codes it stands for: the `layers`'
/// codes, then the handler's own (each code once), in that order within a status.
pub fn problem_responses(layers: &[ErrorCode], codes: &[ErrorCode]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
    for code in layers.iter().chain(codes) {
        let same = by_status.entry(code.http_status()).or_default();
        if !same.contains(code) {
            same.push(*code);
        }
    }
    let mut responses = BTreeMap::new();
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
        responses.insert(status.to_string(), RefOr::T(response.build()));
    }
    responses
}

fn string_header(description: &str) -> utoipa::openapi::Header {
    HeaderBuilder::new().schema(ObjectBuilder::new().schema_type(Type::String)).description(Some(description)).build()
}

fn request_id_header() -> utoipa::openapi::Header {
    string_header(
        "The request's id: the caller's `X-Request-Id` when well formed, else generated. Sent upstream and logged.",
    )
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
        routes::cancellations::create,
        routes::cancellation_list::list,
        routes::cancellations::get,
        routes::batches::create,
        routes::batches::get,
        routes::operate::attempts,
        routes::operate::resolve,
        routes::operate::retry,
        routes::events::list,
        routes::events::get,
        routes::events::redeliver,
        routes::providers::list,
        routes::health::healthz,
        routes::health::readyz,
        routes::metrics::metrics,
        routes::docs::document,
        routes::docs::to_the_page,
        routes::errors::index,
        routes::errors::page
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
        Problem,
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
        crate::routes::event_views::EventView,
        crate::routes::event_views::EventList,
        crate::routes::event_views::DeliveryView,
        crate::routes::event_views::DeliveryStatusView,
        crate::routes::event_views::DeliveryAttemptView,
        crate::routes::event_views::RedeliverBody
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

#[cfg(test)]
mod tests {
    use super::*;

    fn description(responses: &BTreeMap<String, RefOr<Response>>, status: &str) -> String {
        match &responses[status] {
            RefOr::T(response) => response.description.clone(),
            RefOr::Ref(_) => panic!("{status} is a reference"),
        }
    }

    #[test]
    fn each_code_is_documented_once_under_its_status_layers_first() {
        use ErrorCode::*;
        let responses = problem_responses(V1_LAYERS, &[NotCancellable, Forbidden, AlreadyCancelled, RateLimited]);
        assert_eq!(responses.keys().map(String::as_str).collect::<Vec<_>>(), ["401", "403", "409", "429"]);
        let named = |code: ErrorCode| format!("`{}`: {}", code.as_str(), code.doc().title.trim_end_matches('.'));
        assert_eq!(description(&responses, "403"), named(Forbidden), "a code the handler repeats is listed once");
        assert_eq!(description(&responses, "409"), format!("{}; {}", named(NotCancellable), named(AlreadyCancelled)));
        let RefOr::T(limited) = &responses["429"] else { panic!("429 is a reference") };
        assert!(limited.headers.contains_key("Retry-After"));
        assert!(problem_responses(&[], &[NotFound]).keys().eq(["404"]), "no layers: the handler's codes only");
    }
}
