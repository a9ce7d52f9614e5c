//! The schemas of the document that are not a type of the API itself: enumerations from the
//! code (`ErrorCode::ALL`, `RefusalReason::ALL`, the registry's adapters), `metadata`'s bounds,
//! and the shapes of answers built as JSON values (lists, health, the error pages).

use std::borrow::Cow;

use cancelgate_core::{ErrorCode, RefusalReason};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::api::Cancellation;

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
