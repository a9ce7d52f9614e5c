//! Signing in and out. A client key is checked by the gateway's own client authentication
//! (SHA-256, constant time); what the browser keeps is a random session id in an HTTP-only,
//! `SameSite=Strict` cookie scoped to `/console`, never the key. Failed sign-ins are limited
//! per client address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::Console;
use super::page::{self, html, redirect};
use super::session::Session;
use super::token;
use crate::clients::Scope;

pub const COOKIE: &str = "cg_console";

/// The session the request's cookie names, with its id, if it is live.
pub fn session(console: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())?;
    let session = console.sessions.get(&id, Instant::now())?;
    Some((id, session))
}

/// A form's fields, from a `application/x-www-form-urlencoded` body within the body limit.
pub async fn read_form(console: &Console, request: Request) -> Result<(HeaderMap, Form), Response> {
    let (parts, body) = request.into_parts();
    let limit = console.app.settings.limits.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "The form is too large or did not arrive in time.").into_response());
    };
    let fields = url::form_urlencoded::parse(&bytes).into_owned().collect();
    Ok((parts.headers, Form(fields)))
}

#[derive(Debug)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The field `name`, when sent exactly once.
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|(n, _)| n == name);
        match (values.next(), values.next()) {
            (Some((_, v)), None) => Some(v),
            _ => None,
        }
    }
}

/// The session of a state-changing request, when its form carries the session's CSRF token
/// (compared in constant time). Otherwise a `403` page: nothing is changed.
pub async fn authorize_post(
    console: &Console,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(String, Session), Response> {
    let Some((id, session)) = session(console, headers) else {
        return Err(page::message(
            console,
            None,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "You are not signed in (or your session has ended): sign in again. Nothing was changed.",
        )
        .await);
    };
    let valid = form.get("csrf").is_some_and(|given| token::same(given, &session.csrf));
    if !valid {
        tracing::warn!(client = %session.client.name, "console form refused: missing or wrong CSRF token");
        return Err(page::message(
            console,
            Some(&session),
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This form was not sent from this console session (its security token is missing or wrong). Nothing was changed: open the page again and retry.",
        )
        .await);
    }
    Ok((id, session))
}

/// `GET /console`: the sign-in form, or the cancellations when signed in.
pub async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    if session(&console, &headers).is_some() {
        return redirect("/console/cancellations");
    }
    sign_in_page(StatusCode::OK, None)
}

fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    html(status, "signin.html", &json!({"error": error}))
}

/// The address a sign-in comes from (the TCP peer; behind a proxy, the proxy's).
fn peer(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

/// Whether the request came over TLS: the gateway speaks plain HTTP, so only a TLS-terminating
/// proxy can say so (`X-Forwarded-Proto: https` or `Forwarded: proto=https`). The cookie is then
/// `Secure`. (Believing a forged header only makes the cookie stricter.)
fn over_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")));
    let forwarded = headers.get(header::FORWARDED).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split([';', ',']).any(|kv| kv.trim().to_ascii_lowercase().replace('"', "") == "proto=https")
    });
    forwarded_proto || forwarded
}

/// `POST /console/sign-in` with `key`.
pub async fn sign_in(State(console): State<Console>, request: Request) -> Response {
    let address = peer(&request);
    let now = Instant::now();
    let too_many = |wait: std::time::Duration| {
        let mut response = sign_in_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many failed sign-ins from your address: wait a minute, then try again."),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        response
    };
    if let Some(wait) = console.sign_in_limit.shut_out_for(address, now) {
        return too_many(wait);
    }
    let (headers, form) = match read_form(&console, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let client =
        form.get("key").map(str::trim).filter(|k| !k.is_empty()).and_then(|k| console.app.clients.authenticate(k));
    let Some(client) = client else {
        tracing::info!(%address, "console sign-in refused: unknown key");
        if let Err(wait) = console.sign_in_limit.failed(address, now) {
            return too_many(wait);
        }
        return sign_in_page(StatusCode::UNAUTHORIZED, Some("This key is not a client key of this gateway."));
    };
    if !(client.scopes.contains(Scope::Read) || client.scopes.contains(Scope::Operate)) {
        tracing::info!(client = %client.name, "console sign-in refused: no read or operate scope");
        return sign_in_page(
            StatusCode::FORBIDDEN,
            Some("This client may not use the console: its scopes include neither `read` nor `operate`."),
        );
    }
    let opened = match console.sessions.open(client, now) {
        Ok(opened) => opened,
        Err(cause) => {
            tracing::error!(error = %cause, "no console session could be opened");
            return (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.").into_response();
        }
    };
    tracing::info!(client = %opened.session.client.name, "console sign-in");
    let secure = if over_tls(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        opened.id,
        console.sessions.lifetime().as_secs()
    );
    let mut response = redirect("/console/cancellations");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /console/sign-out`: the session ends on the server, the cookie is cleared.
pub async fn sign_out(State(console): State<Console>, request: Request) -> Response {
    let (headers, form) = match read_form(&console, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let (id, session) = match authorize_post(&console, &headers, &form).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    console.sessions.end(&id);
    tracing::info!(client = %session.client.name, "console sign-out");
    let mut response = redirect("/console");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("cg_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_told_by_the_proxy() {
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
            over_tls(&h)
        };
        assert!(!over_tls(&HeaderMap::new()));
        assert!(with("x-forwarded-proto", "https"));
        assert!(with("x-forwarded-proto", "HTTPS, http"));
        assert!(!with("x-forwarded-proto", "http"));
        assert!(with("forwarded", "for=192.0.2.1;proto=https;by=203.0.113.2"));
        assert!(with("forwarded", r#"proto="https""#));
        assert!(!with("forwarded", "proto=http"));
    }
}
