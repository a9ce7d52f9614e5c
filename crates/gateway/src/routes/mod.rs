//! The HTTP surface: one function builds the whole router, layers in one place.

pub(crate) mod batches;
pub(crate) mod cancellation_list;
pub(crate) mod cancellations;
pub(crate) mod docs;
pub(crate) mod errors;
pub(crate) mod event_views;
pub(crate) mod events;
mod faults;
pub(crate) mod health;
mod listing;
pub(crate) mod metrics;
pub(crate) mod operate;
pub(crate) mod providers;

pub use providers::{LatencyMs, ProviderHealth, ProviderList, ProviderRateLimit, ProviderView};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::routing::{get, post};
use cancelgate_core::ErrorCode;

use crate::clients::Scope;
use crate::error::ApiError;
use crate::extract::{self, Caller};
use crate::state::AppState;

/// Every route (method, path) the router serves; `openapi::ApiDoc` documents each of them.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/cancellations"),
    ("GET", "/v1/cancellations"),
    ("GET", "/v1/cancellations/{id}"),
    ("POST", "/v1/cancellation-batches"),
    ("GET", "/v1/cancellation-batches/{id}"),
    ("GET", "/v1/cancellations/{id}/attempts"),
    ("POST", "/v1/cancellations/{id}/resolve"),
    ("POST", "/v1/cancellations/{id}/retry"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("POST", "/v1/events/{id}/redeliver"),
    ("GET", "/v1/providers"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/errors"),
    ("GET", "/errors/{code}"),
];

/// The scope each `/v1` route needs (SPEC §7), by method and route path. [`authorize`] checks it
/// before the handler reads anything else; a `/v1` route missing here is refused to every client,
/// so a new route cannot be reached without declaring its scope. (`HEAD` is `GET`'s.)
pub const V1_SCOPES: &[(&str, &str, Scope)] = &[
    ("POST", "/v1/cancellations", Scope::Cancel),
    ("GET", "/v1/cancellations", Scope::Read),
    ("GET", "/v1/cancellations/{id}", Scope::Read),
    ("POST", "/v1/cancellation-batches", Scope::Cancel),
    ("GET", "/v1/cancellation-batches/{id}", Scope::Read),
    ("GET", "/v1/cancellations/{id}/attempts", Scope::Read),
    ("POST", "/v1/cancellations/{id}/resolve", Scope::Operate),
    ("POST", "/v1/cancellations/{id}/retry", Scope::Operate),
    ("GET", "/v1/events", Scope::Read),
    ("GET", "/v1/events/{id}", Scope::Read),
    ("POST", "/v1/events/{id}/redeliver", Scope::Operate),
    ("GET", "/v1/providers", Scope::Read),
];

/// The scope `method` on the route `path` needs, if the route declares one.
pub fn required_scope(method: &http::Method, path: &str) -> Option<Scope> {
    let method = if method == http::Method::HEAD { "GET" } else { method.as_str() };
    V1_SCOPES.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, scope)| *scope)
}

/// Every `/v1` route's caller, checked by its handler's first extractor ([`Caller`]) before the
/// handler reads anything else: authenticated (`401`), holding the route's scope (`403`), then one
/// unit of its own quota spent (`429`, [`crate::client_limits::admit`]). Nothing is recorded or
/// sent for a caller outside its scopes or its quota. An extractor, not a route layer: each
/// `from_fn` layer boxes the request's future twice more for as long as the request is in flight
/// (~1.7 KB per cancel in flight, `bench/inflight`). A `/v1` route whose handler does not take a
/// `Caller` would be open; `every_v1_route_requires_a_client_key` and
/// `every_v1_route_enforces_its_declared_scope` try each route of [`V1_SCOPES`], which
/// `every_v1_route_declares_a_scope` holds to [`ROUTES`].
pub(crate) fn authorize(parts: &http::request::Parts, state: &AppState) -> Result<Caller, ApiError> {
    let client = extract::authenticate(&parts.headers, state)?;
    let route = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
    let Some(scope) = route.and_then(|path| required_scope(&parts.method, path)) else {
        return Err(ApiError::internal(format!("the route {} {route:?} declares no scope", parts.method)));
    };
    if !client.scopes.contains(scope) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("This client's scopes do not include `{}`, which this route needs.", scope.as_str()),
        ));
    }
    crate::client_limits::admit(&state.client_limits, &client.name)?;
    Ok(Caller(client))
}

pub fn router(state: AppState) -> Router {
    let draining = state.draining.clone();
    let max_body = state.settings.limits.max_body_bytes;
    let body_within = std::time::Duration::from_millis(state.settings.limits.body_read_timeout_ms);
    let v1 = Router::new()
        .route("/v1/cancellations", post(cancellations::create).get(cancellation_list::list))
        .route("/v1/cancellations/{id}", get(cancellations::get))
        .route("/v1/cancellation-batches", post(batches::create))
        .route("/v1/cancellation-batches/{id}", get(batches::get))
        .route("/v1/cancellations/{id}/attempts", get(operate::attempts))
        .route("/v1/cancellations/{id}/resolve", post(operate::resolve))
        .route("/v1/cancellations/{id}/retry", post(operate::retry))
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::get))
        .route("/v1/events/{id}/redeliver", post(events::redeliver))
        // Each handler's `Caller` authorizes (`authorize`): an unknown route stays 404 and a wrong
        // method 405, keyless.
        .route("/v1/providers", get(providers::list));
    Router::new()
        .merge(v1)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/errors", get(errors::index))
        .route("/errors/{code}", get(errors::page))
        .route("/metrics", get(metrics::metrics))
        .merge(docs::router())
        // The operator console (SPEC §9): HTML pages, outside `/v1` and its bearer auth.
        .merge(crate::console::router(&state))
        .fallback(|| async { ApiError::not_found("No such route.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "This route does not accept this method; see `Allow`.")
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(crate::edge_layer::EdgeLayer { draining, body_within })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_v1_route_declares_a_scope() {
        let v1: Vec<_> = ROUTES.iter().filter(|(_, path)| path.starts_with("/v1/")).collect();
        for (method, path) in &v1 {
            let method = http::Method::from_bytes(method.as_bytes()).unwrap();
            assert!(required_scope(&method, path).is_some(), "{method} {path} declares no scope");
        }
        assert_eq!(V1_SCOPES.len(), v1.len(), "a scope for a route that does not exist");
        assert_eq!(required_scope(&http::Method::HEAD, "/v1/providers"), Some(Scope::Read));
        assert_eq!(required_scope(&http::Method::POST, "/v1/cancellations"), Some(Scope::Cancel));
        assert_eq!(required_scope(&http::Method::POST, "/v1/cancellations/{id}/resolve"), Some(Scope::Operate));
        assert_eq!(required_scope(&http::Method::POST, "/v1/cancellations/{id}/retry"), Some(Scope::Operate));
        assert_eq!(required_scope(&http::Method::GET, "/v1/cancellations/{id}/attempts"), Some(Scope::Read));
        assert_eq!(required_scope(&http::Method::DELETE, "/v1/cancellations"), None);
    }
}
