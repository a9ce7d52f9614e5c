//! The operator console at `/console` (SPEC §9): server-rendered pages over the same internal
//! functions as the operator API (`routes::operate`, `routes::cancellations`,
//! `routes::providers`), so the two cannot drift. No JavaScript; every asset embedded.
//!
//! - `auth.rs`: sign-in (a client key, checked by `Clients::authenticate`), sign-out
//! - `session.rs`: server-side sessions (random ids, 8 hours), `token.rs`: ids and CSRF tokens
//! - `sign_in_limit.rs`: failed sign-ins per client address (governor)
//! - `pages.rs`: the list, the review queue, one cancellation (with its events), the providers
//! - `actions.rs`: resolve, retry and redeliver (CSRF-checked, `operate` only)
//! - `page.rs`: the HTML answer, its headers and error pages; `view.rs`: what a page shows;
//!   `templates.rs`, `assets.rs`: what is embedded

mod actions;
mod assets;
mod auth;
mod page;
mod pages;
mod session;
mod sign_in_limit;
mod templates;
mod token;
mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// What the console's handlers reach: the gateway's state and the console's own.
#[derive(Debug, Clone)]
pub struct Console {
    pub app: AppState,
    sessions: Arc<session::Sessions>,
    sign_in_limit: Arc<sign_in_limit::SignInLimit>,
}

/// The console's routes, every answer carrying its security headers (see `page::secure`).
pub fn router<S: Clone + Send + Sync + 'static>(app: &AppState) -> Router<S> {
    let console = Console {
        sessions: Arc::new(session::Sessions::new(Duration::from_secs(app.settings.console.session_s))),
        sign_in_limit: Arc::default(),
        app: app.clone(),
    };
    Router::new()
        .route("/console", get(auth::index))
        .route("/console/", get(auth::index))
        .route("/console/sign-in", post(auth::sign_in))
        .route("/console/sign-out", post(auth::sign_out))
        .route("/console/cancellations", get(pages::list))
        .route("/console/review", get(pages::review))
        .route("/console/cancellations/{id}", get(pages::detail))
        .route("/console/cancellations/{id}/resolve", post(actions::resolve))
        .route("/console/cancellations/{id}/retry", post(actions::retry))
        .route("/console/cancellations/{id}/events/{event}/redeliver", post(actions::redeliver))
        .route("/console/providers", get(pages::providers))
        .route("/console/assets/{name}", get(assets::get))
        .route("/console/{*rest}", get(page::not_found).post(page::not_found))
        .layer(axum::middleware::from_fn(page::secure))
        .with_state(console)
}
