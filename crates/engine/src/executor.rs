//! The only place that sends requests upstream: reqwest, one client (connection pool) per provider.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cancelgate_core::{HeaderValueKind, HttpRequest, HttpResponse, ProviderId, TransportError, TransportErrorKind};
use http::HeaderValue;
use secrecy::ExposeSecret;

use crate::context;
use crate::settings::ProviderSettings;

#[derive(Debug, Clone)]
pub struct Executor {
    client: reqwest::Client,
    /// Base URL without a trailing slash; adapters' paths start with one.
    base: String,
    max_response_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientBuildError(String);

impl Executor {
    pub fn new(settings: &ProviderSettings) -> Result<Self, ClientBuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            // A cancel must reach the configured host or fail; never follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("cancelgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientBuildError(e.without_url().to_string()))?;
        let base = settings.base_url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { client, base, max_response_bytes: settings.max_response_bytes })
    }

    async fn read_bounded(&self, mut response: reqwest::Response) -> Result<(Bytes, bool), reqwest::Error> {
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await? {
            let room = self.max_response_bytes.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body.freeze(), true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), false))
    }

    /// Sends one request to the provider and reads its answer, bounded.
    pub async fn send(&self, provider: ProviderId, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let _in_flight = crate::telemetry::InFlight::start(provider.as_str());
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.client.request(request.method, url);
        for header in request.headers {
            let value = match &header.value {
                HeaderValueKind::Plain(v) => HeaderValue::from_str(v),
                HeaderValueKind::Secret(v) => HeaderValue::from_str(v.expose_secret()).map(|mut v| {
                    v.set_sensitive(true);
                    v
                }),
            };
            let value = value.map_err(|_| {
                TransportError::new(
                    TransportErrorKind::NotSent,
                    format!("header {} has a value HTTP cannot carry", header.name),
                )
            })?;
            builder = builder.header(header.name, value);
        }
        if let Some(context) = context::current() {
            builder = builder.header(context::REQUEST_ID_HEADER, context.request_id.as_str());
            if let Some(trace) = &context.trace {
                builder = builder.header(context::TRACEPARENT_HEADER, trace.as_str());
            }
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let (body, truncated) = self.read_bounded(response).await.map_err(transport_error)?;
        Ok(HttpResponse { status, headers, body, truncated })
    }
}

/// Whether the provider may have received the request decides everything downstream.
fn transport_error(error: reqwest::Error) -> TransportError {
    let kind = if error.is_connect() {
        TransportErrorKind::NotSent
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Reset
    };
    // `without_url`: the URL holds the reference, which is fine, but never print more than needed.
    let detail = error_chain(&error.without_url());
    TransportError::new(kind, detail)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
