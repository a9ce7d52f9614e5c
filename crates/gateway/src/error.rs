//! `ApiError`: the only `IntoResponse` error. Every error answer is RFC 9457 problem+json with
//! the members of SPEC §3.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use cancelgate_core::{ErrorCode, RefusalReason};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use utoipa::ToSchema;

use crate::failure::Failure;
pub use crate::failure::UpstreamInfo;

/// An error answer. Boxed: it travels through many `Result`s and is large.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorDetails>);

#[derive(Debug, Clone)]
pub struct ErrorDetails {
    pub code: ErrorCode,
    pub detail: String,
    pub reason: Option<RefusalReason>,
    pub param: Option<String>,
    pub provider: Option<String>,
    pub reference: Option<String>,
    pub cancellation_id: Option<String>,
    pub upstream: Option<UpstreamInfo>,
    pub retry_after: Option<Duration>,
    pub replayed: bool,
    /// The request that the answer is about, when not the one being answered: a stored
    /// failure names the request that made its record (SPEC §2: a replay is the stored body).
    pub request_id: Option<String>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorDetails {
        &mut self.0
    }
}

/// An error answer: RFC 9457 problem+json with cancelgate's members (`error::Problem`).
// (The doc comment above, and those of the members, are the OpenAPI description.) Member order
// as in SPEC §3. Owned, so a Cancellation's `error` is this very shape too, in the same order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `/errors/{code}`: a page describing the code.
    #[serde(rename = "type")]
    #[schema(example = "/errors/not_cancellable")]
    pub type_: String,
    #[schema(value_type = String, example = "Reservation cannot be cancelled")]
    pub title: &'static str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599, example = 409)]
    pub status: u16,
    #[schema(value_type = crate::openapi::ErrorCodeSchema)]
    pub code: &'static str,
    #[schema(value_type = Option<crate::openapi::RefusalReasonSchema>)]
    pub reason: Option<&'static str>,
    pub detail: String,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    pub provider: Option<String>,
    pub reference: Option<String>,
    /// Present whenever a ledger record exists.
    pub cancellation_id: Option<String>,
    pub request_id: Option<String>,
    /// Present whenever a provider answered.
    #[schema(value_type = Option<crate::openapi::UpstreamProblemSchema>)]
    pub upstream: Option<UpstreamInfo>,
    /// The offending field or header of an `invalid_request`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// Present (true) when this answer replays a stored one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(value_type = Option<bool>)]
    pub replayed: bool,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Box::new(ErrorDetails {
            code,
            detail: detail.into(),
            reason: None,
            param: None,
            provider: None,
            reference: None,
            cancellation_id: None,
            upstream: None,
            retry_after: None,
            replayed: false,
            request_id: None,
        }))
    }

    /// The one place a [`Failure`] becomes an answer: the failure of the record `cancellation_id`
    /// of `provider`/`reference`, made by the request `request_id`.
    pub fn located(
        failure: Failure,
        provider: &str,
        reference: &str,
        cancellation_id: &str,
        request_id: Option<String>,
    ) -> Self {
        let Failure { code, reason, detail, upstream } = failure;
        let mut error = Self::new(code, detail).with_target(provider, reference);
        error.reason = reason;
        error.upstream = upstream;
        error.cancellation_id = Some(cancellation_id.to_owned());
        error.request_id = request_id;
        error
    }

    pub fn invalid(param: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut error = Self::new(ErrorCode::InvalidRequest, detail);
        error.param = Some(param.into());
        error
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, detail)
    }

    /// A bug. The caller sees a generic detail; the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "Something went wrong on our side. The request id helps the operators find it.")
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn with_target(mut self, provider: &str, reference: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self.reference = Some(reference.to_owned());
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn problem(&self) -> Problem {
        let doc = self.code.doc();
        Problem {
            type_: format!("/errors/{}", self.code.as_str()),
            title: doc.title,
            status: self.code.http_status(),
            code: self.code.as_str(),
            reason: self.reason.map(RefusalReason::as_str),
            detail: self.detail.clone(),
            retryable: self.code.retryable(),
            provider: self.provider.clone(),
            reference: self.reference.clone(),
            cancellation_id: self.cancellation_id.clone(),
            request_id: self
                .request_id
                .clone()
                .or_else(|| cancelgate_engine::context::request_id().map(|id| id.as_str().to_owned())),
            upstream: self.upstream.clone(),
            param: self.param.clone(),
            replayed: self.replayed,
        }
    }

    /// The problem as a JSON value (a batch item shed before it was recorded is stored so).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.problem()).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.problem())).into_response();
        response.extensions_mut().insert(self.code);
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.code == ErrorCode::Unauthorized {
            // RFC 9110 §15.5.2: a 401 names the scheme (and realm) that would be accepted.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="cancelgate""#));
        }
        if let Some(after) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        } else if matches!(self.code.http_status(), 429 | 503) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
