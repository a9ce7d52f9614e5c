//! The operator console (SPEC §9) over real HTTP: sign-in and its cookie, session expiry and
//! sign-out, CSRF, scopes, the failed sign-in limit, escaping of what callers and providers
//! wrote, and no key on any page. The browser's side is `scripts/browser-test`.

use std::time::Duration;

use cancelgate_sandbox::{Fault, FaultRule, SimulatedProvider, bench_reference};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, SandboxApp, in_review, spawn_app, spawn_on_sandbox};

/// A client with only `read`: it sees the console, it does not act.
const READER_KEY: &str = "cg_console_reader_test_key";

const HOSTILE_SCRIPT: &str = "<script>alert('x')</script>";
const HOSTILE_IMG: &str = "\"><img src=x onerror=alert(1)>";

/// A form body, `application/x-www-form-urlencoded`.
fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn spawn(extra: &[(&str, &str)]) -> SandboxApp {
    let hash = cancelgate_gateway::clients::sha256_hex(READER_KEY);
    let mut env = vec![
        ("CANCELGATE__CLIENTS__READER__KEY_SHA256", hash.as_str()),
        ("CANCELGATE__CLIENTS__READER__PROVIDERS", "*"),
        ("CANCELGATE__CLIENTS__READER__SCOPES", "read"),
    ];
    env.extend_from_slice(extra);
    spawn_on_sandbox(&env).await
}

struct Page {
    status: u16,
    headers: HeaderMap,
    html: String,
}

async fn page(response: reqwest::Response) -> Page {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Page { status, headers, html: response.text().await.unwrap() }
}

/// Sign in with `key` from `base`: the answer.
async fn sign_in_raw(base: &str, key: &str, extra: &[(&str, &str)]) -> Page {
    let mut request = no_redirects()
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("key", key)]));
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    page(request.send().await.unwrap()).await
}

/// The session cookie (`name=value`) a sign-in set.
fn cookie_of(p: &Page) -> String {
    let set = p.headers.get(SET_COOKIE).expect("a cookie").to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

async fn signed_in(base: &str, key: &str) -> String {
    let p = sign_in_raw(base, key, &[]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    cookie_of(&p)
}

async fn get(base: &str, cookie: &str, path: &str) -> Page {
    page(no_redirects().get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap()).await
}

async fn post_form(base: &str, cookie: &str, path: &str, form: &[(&str, &str)]) -> Page {
    page(
        no_redirects()
            .post(format!("{base}{path}"))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The CSRF token a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + r#"name="csrf" value=""#.len();
    html[at..at + 64].to_owned()
}

async fn api_get(app: &SandboxApp, path: &str) -> Value {
    let response = app.client.get(app.url(path)).bearer_auth(DEMO_KEY).send().await.unwrap();
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_bad_key_is_refused_without_a_cookie_and_a_good_one_gets_a_strict_cookie() {
    let app = spawn(&[]).await;
    let base = app.url("");
    for bad in ["cg_wrong_key", "", DEMO_KEY.trim_end_matches('y')] {
        let p = sign_in_raw(&base, bad, &[]).await;
        assert_eq!(p.status, 401, "{}", p.html);
        assert!(p.headers.get(SET_COOKIE).is_none(), "no cookie for a bad key");
        assert!(p.html.contains("This key is not a client key of this gateway."), "{}", p.html);
        assert!(bad.is_empty() || !p.html.contains(bad), "the key typed is not shown back");
    }
    // Unsigned, a page is the sign-in form.
    let p = get(&base, "cg_console=0000", "/console/cancellations").await;
    assert_eq!((p.status, p.headers[LOCATION].to_str().unwrap()), (303, "/console"));

    let p = sign_in_raw(&base, DEMO_KEY, &[]).await;
    assert_eq!((p.status, p.headers[LOCATION].to_str().unwrap()), (303, "/console/cancellations"));
    let set = p.headers[SET_COOKIE].to_str().unwrap();
    let attributes: Vec<&str> = set.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age=28800"] {
        assert!(attributes.contains(&want), "{want} in {set}");
    }
    assert!(!attributes.contains(&"Secure"), "plain HTTP: no Secure ({set})");
    let id = cookie_of(&p).trim_start_matches("cg_console=").to_owned();
    assert_eq!(id.len(), 64, "256 random bits: {id}");
    assert!(!set.contains(DEMO_KEY) && !set.contains(&cancelgate_gateway::clients::sha256_hex(DEMO_KEY)));
    // Two sign-ins, two sessions.
    assert_ne!(signed_in(&base, DEMO_KEY).await, cookie_of(&p));

    // Behind a TLS-terminating proxy the cookie is Secure too.
    let tls = sign_in_raw(&base, DEMO_KEY, &[("x-forwarded-proto", "https")]).await;
    assert!(tls.headers[SET_COOKIE].to_str().unwrap().split(';').any(|a| a.trim() == "Secure"));

    let home = get(&base, &cookie_of(&p), "/console/cancellations").await;
    assert_eq!(home.status, 200, "{}", home.html);
    assert!(home.html.contains(r#"<strong id="client-name">demo</strong>"#), "{}", home.html);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'") && csp.contains("script-src 'none'"), "{csp}");
    assert_eq!(home.headers["cache-control"], "no-store");
    assert_eq!(home.headers["x-frame-options"], "DENY");
}

#[tokio::test]
async fn a_session_expires_on_the_server_and_sign_out_ends_it() {
    let app = spawn(&[("CANCELGATE__CONSOLE__SESSION_S", "1")]).await;
    let base = app.url("");
    let p = sign_in_raw(&base, DEMO_KEY, &[]).await;
    assert!(p.headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=1"));
    let cookie = cookie_of(&p);
    assert_eq!(get(&base, &cookie, "/console/providers").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The browser would have dropped it; a cookie kept past its age opens nothing either.
    let expired = get(&base, &cookie, "/console/providers").await;
    assert_eq!((expired.status, expired.headers[LOCATION].to_str().unwrap()), (303, "/console"));

    let app = spawn(&[]).await;
    let base = app.url("");
    let cookie = signed_in(&base, DEMO_KEY).await;
    let list = get(&base, &cookie, "/console/cancellations").await;
    // Without the token, sign-out is refused (and the session lives on).
    assert_eq!(post_form(&base, &cookie, "/console/sign-out", &[]).await.status, 403);
    assert_eq!(get(&base, &cookie, "/console/cancellations").await.status, 200);
    let out = post_form(&base, &cookie, "/console/sign-out", &[("csrf", &csrf_of(&list.html))]).await;
    assert_eq!((out.status, out.headers[LOCATION].to_str().unwrap()), (303, "/console"));
    assert!(out.headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let after = get(&base, &cookie, "/console/cancellations").await;
    assert_eq!(after.status, 303, "the old cookie opens nothing: the session ended on the server");
}

#[tokio::test]
async fn a_form_without_its_csrf_token_changes_nothing_and_with_it_resolves() {
    let app = spawn(&[]).await;
    let base = app.url("");
    let review = in_review(&app, 41).await;
    let id = review["id"].as_str().unwrap();
    let cookie = signed_in(&base, DEMO_KEY).await;
    let detail = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.html.contains(r#"id="resolve-form""#), "an operator may resolve: {}", detail.html);
    assert!(
        detail.html.contains("cannot settle a review. Resolve it instead."),
        "Front Payment's repeat is not safe: why there is no retry button"
    );
    let token = csrf_of(&detail.html);
    let resolve = format!("/console/cancellations/{id}/resolve");
    let note = "Checked with Front Payment support.";
    let other_session = signed_in(&base, DEMO_KEY).await;
    let other_token = csrf_of(&get(&base, &other_session, "/console/cancellations").await.html);
    for form in [
        vec![("status", "cancelled"), ("note", note)],
        vec![("status", "cancelled"), ("note", note), ("csrf", "0".repeat(64).as_str())],
        vec![("status", "cancelled"), ("note", note), ("csrf", &token[..63])],
        vec![("status", "cancelled"), ("note", note), ("csrf", &other_token)],
    ] {
        let p = post_form(&base, &cookie, &resolve, &form).await;
        assert_eq!(p.status, 403, "{form:?}: {}", p.html);
        assert!(p.html.contains("Nothing was changed"), "{}", p.html);
        assert!(!p.html.trim_start().starts_with('{'), "a page, not JSON");
    }
    // No session at all: refused too.
    let p = post_form(&base, "cg_console=nope", &resolve, &[("status", "cancelled"), ("note", note), ("csrf", &token)])
        .await;
    assert_eq!(p.status, 403);
    let unchanged = api_get(&app, &format!("/v1/cancellations/{id}")).await;
    assert_eq!((unchanged["status"].as_str(), &unchanged["resolution"]), (Some("needs_review"), &Value::Null));

    // The API's own rules for the note: an empty one is a readable 400 on the page.
    let p = post_form(&base, &cookie, &resolve, &[("status", "cancelled"), ("note", ""), ("csrf", &token)]).await;
    assert_eq!(p.status, 400, "{}", p.html);
    assert!(p.html.contains("(field `note`)"), "{}", p.html);

    let p = post_form(&base, &cookie, &resolve, &[("status", "cancelled"), ("note", note), ("csrf", &token)]).await;
    assert_eq!(
        (p.status, p.headers[LOCATION].to_str().unwrap()),
        (303, format!("/console/cancellations/{id}?done=resolved").as_str())
    );
    let resolved = api_get(&app, &format!("/v1/cancellations/{id}")).await;
    assert_eq!(resolved["status"], "cancelled");
    assert_eq!(
        (resolved["resolution"]["by"].as_str(), resolved["resolution"]["note"].as_str()),
        (Some("demo"), Some(note))
    );
    let shown = get(&base, &cookie, &format!("/console/cancellations/{id}?done=resolved")).await;
    assert!(shown.html.contains("Resolved: this cancellation is now cancelled."), "{}", shown.html);
    assert!(shown.html.contains(note));

    // Again with another note: the API's 409, as a sentence on the page.
    let p = post_form(&base, &cookie, &resolve, &[("status", "failed"), ("note", "other"), ("csrf", &token)]).await;
    assert_eq!(p.status, 409, "{}", p.html);
    assert!(p.html.contains("not awaiting review"), "{}", p.html);
    // An unknown id: a readable 404.
    let p = get(&base, &cookie, "/console/cancellations/can_nope").await;
    assert_eq!(p.status, 404);
    assert!(p.html.contains("No cancellation with this id."), "{}", p.html);
}

#[tokio::test]
async fn a_read_client_sees_but_cannot_resolve_or_retry() {
    let app = spawn(&[]).await;
    let base = app.url("");
    let review = in_review(&app, 42).await;
    let id = review["id"].as_str().unwrap();
    let cookie = signed_in(&base, READER_KEY).await;
    let detail = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.html.contains("you may look, not act"), "{}", detail.html);
    assert!(!detail.html.contains(r#"id="resolve-form""#));
    let token = csrf_of(&detail.html);
    for (path, form) in [
        ("resolve", vec![("status", "cancelled"), ("note", "I should not"), ("csrf", token.as_str())]),
        ("retry", vec![("csrf", token.as_str())]),
    ] {
        let p = post_form(&base, &cookie, &format!("/console/cancellations/{id}/{path}"), &form).await;
        assert_eq!(p.status, 403, "{path}: {}", p.html);
        assert!(p.html.contains("do not include `operate`"), "{}", p.html);
    }
    let unchanged = api_get(&app, &format!("/v1/cancellations/{id}")).await;
    assert_eq!((unchanged["status"].as_str(), &unchanged["resolution"]), (Some("needs_review"), &Value::Null));
    assert_eq!(unchanged["updated_at"], review["updated_at"]);
    // The queue shows it, with its count.
    let queue = get(&base, &cookie, "/console/review").await;
    assert!(queue.html.contains(id) && queue.html.contains(r#"id="review-count">1<"#), "{}", queue.html);

    // A client with neither read nor operate may not sign in.
    let hash = cancelgate_gateway::clients::sha256_hex("cg_cancel_only");
    let app = spawn_on_sandbox(&[
        ("CANCELGATE__CLIENTS__CANCELLER__KEY_SHA256", hash.as_str()),
        ("CANCELGATE__CLIENTS__CANCELLER__PROVIDERS", "*"),
        ("CANCELGATE__CLIENTS__CANCELLER__SCOPES", "cancel"),
    ])
    .await;
    let p = sign_in_raw(&app.url(""), "cg_cancel_only", &[]).await;
    assert_eq!(p.status, 403);
    assert!(p.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn the_eleventh_failed_sign_in_in_a_minute_is_429_even_with_the_right_key() {
    let app = spawn(&[]).await;
    let base = app.url("");
    for n in 1..=10 {
        assert_eq!(sign_in_raw(&base, &format!("guess-{n}"), &[]).await.status, 401, "failure {n}");
    }
    let p = sign_in_raw(&base, "guess-11", &[]).await;
    assert_eq!(p.status, 429, "{}", p.html);
    assert!(p.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert!(p.html.contains("Too many failed sign-ins"), "{}", p.html);
    let right = sign_in_raw(&base, DEMO_KEY, &[]).await;
    assert_eq!(right.status, 429, "shut out: the key is not even checked");
    assert!(right.headers.get(SET_COOKIE).is_none());
}

#[tokio::test]
async fn what_callers_and_providers_wrote_is_text_and_no_page_shows_a_key() {
    let app = spawn_app().await;
    let hostile = json!({"error": {"type": "invalid_request_error", "code": HOSTILE_IMG, "message": HOSTILE_SCRIPT}});
    Mock::given(method("POST"))
        .and(path("/v1/reservations/res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq/cancel"))
        .respond_with(ResponseTemplate::new(400).set_body_json(hostile))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let response = app
        .cancel(json!({"provider": "chargeapi", "reference": "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq",
            "metadata": {"note": HOSTILE_SCRIPT, HOSTILE_IMG: HOSTILE_IMG}}))
        .await;
    let body: Value = response.json().await.unwrap();
    let id = body["cancellation_id"].as_str().expect("a refusal is recorded").to_owned();
    let base = app.url("");
    let cookie = signed_in(&base, DEMO_KEY).await;
    let detail = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.html);
    for raw in ["<script>alert", "<img src=x", "onerror=alert(1)>"] {
        assert!(!detail.html.contains(raw), "{raw} unescaped: {}", detail.html);
    }
    assert!(detail.html.matches("&lt;script&gt;alert(").count() >= 2, "metadata and the upstream body, as text");
    assert!(detail.html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), "{}", detail.html);

    // Every page, signed in as an operator: never a key, a key's hash or a provider secret.
    let hash = cancelgate_gateway::clients::sha256_hex(DEMO_KEY);
    let mut pages = vec![detail];
    for path in ["/console/cancellations", "/console/review", "/console/providers", "/console/nope"] {
        pages.push(get(&base, &cookie, path).await);
    }
    pages.push(page(no_redirects().get(format!("{base}/console")).send().await.unwrap()).await);
    pages.push(sign_in_raw(&base, "cg_wrong", &[]).await);
    for p in &pages {
        for secret in [DEMO_KEY, hash.as_str(), "ch_sk_test_sandbox", "fp_sandbox_token", "acc_sandbox_key"] {
            assert!(!p.html.contains(secret), "a page shows {secret}");
        }
        assert!(!p.html.contains("src=\"http") && !p.html.contains("href=\"http"), "no other host");
    }
    assert_eq!(pages[4].status, 404, "an unknown console page");
    // Nor do the logs: no key (right or wrong), no session id, no CSRF token.
    let logs = app.logs.text();
    let session_id = cookie.trim_start_matches("cg_console=");
    let token = csrf_of(&pages[1].html);
    for secret in [DEMO_KEY, "cg_wrong", session_id, token.as_str()] {
        assert!(!logs.contains(secret), "the logs show {secret}");
    }
    assert!(logs.contains("console sign-in"), "sign-ins are logged (without their keys)");
}

#[tokio::test]
async fn the_retry_button_drives_a_repeat_safe_review_to_its_end() {
    let app = spawn(&[
        ("CANCELGATE__PROVIDERS__CHARGEAPI__RETRY__MAX_ATTEMPTS", "2"),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S", ""),
    ])
    .await;
    let p = SimulatedProvider::ChargeApi;
    let reference = bench_reference(p, 43);
    app.sandbox.inject(p, FaultRule::reference(reference.clone(), Fault::Hang { ms: Some(1_000) }));
    let (status, _, body) = app.cancel(p.id(), &reference).await;
    let review = app.settle(status, &body).await;
    assert_eq!(review["status"], "needs_review", "{review:#}");
    let id = review["id"].as_str().unwrap();
    app.sandbox.clear_faults();

    let base = app.url("");
    let cookie = signed_in(&base, DEMO_KEY).await;
    let detail = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert!(detail.html.contains(r#"id="retry-form""#), "ChargeAPI's repeat is safe: {}", detail.html);
    let retry = format!("/console/cancellations/{id}/retry");
    assert_eq!(post_form(&base, &cookie, &retry, &[]).await.status, 403, "no token, no retry");
    assert_eq!(api_get(&app, &format!("/v1/cancellations/{id}")).await["status"], "needs_review");
    let p = post_form(&base, &cookie, &retry, &[("csrf", &csrf_of(&detail.html))]).await;
    assert_eq!(p.headers[LOCATION].to_str().unwrap(), format!("/console/cancellations/{id}?done=retried"));
    let done = app.wait_final(id).await;
    assert_eq!((done["status"].as_str(), &done["attempts"]), (Some("cancelled"), &json!(3)), "{done:#}");
    let shown = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert!(shown.html.contains(r#"id="status">cancelled<"#), "{}", shown.html);
    assert!(shown.html.contains("Only a cancellation in"), "settled: neither form is offered");
}

/// The receiver's requests once it has `n` (or after 10 s, what it has).
async fn deliveries(receiver: &wiremock::MockServer, n: usize) -> Vec<wiremock::Request> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = receiver.received_requests().await.unwrap_or_default();
        if got.len() >= n || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cancellation_page_shows_its_events_and_deliveries_and_redelivers_with_its_token() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    let receiver = MockServer::start().await;
    Mock::given(matchers::method("POST")).respond_with(ResponseTemplate::new(204)).mount(&receiver).await;
    let url = format!("{}/hooks", receiver.uri());
    let app = spawn(&[
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__URL", url.as_str()),
        ("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ])
    .await;
    let review = in_review(&app, 61).await;
    let id = review["id"].as_str().unwrap();
    let first = deliveries(&receiver, 1).await;
    assert_eq!(first.len(), 1, "the needs_review event was delivered");
    let webhook_id = first[0].headers["webhook-id"].to_str().unwrap().to_owned();

    let base = app.url("");
    let cookie = signed_in(&base, DEMO_KEY).await;
    let detail = get(&base, &cookie, &format!("/console/cancellations/{id}")).await;
    assert_eq!(detail.status, 200);
    assert!(detail.html.contains("cancellation.needs_review"), "{}", detail.html);
    assert!(detail.html.contains(&webhook_id), "the event's id is shown");
    assert!(detail.html.contains("badge delivery-delivered"), "its delivery is shown delivered: {}", detail.html);
    assert!(!detail.html.contains("/hooks"), "an endpoint's URL is never shown, only its name");
    let redeliver = format!("/console/cancellations/{id}/events/{webhook_id}/redeliver");
    assert!(detail.html.contains(&redeliver), "an operate client gets the Redeliver button");

    // Without its token: refused, nothing sent.
    assert_eq!(post_form(&base, &cookie, &redeliver, &[]).await.status, 403);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received_requests().await.unwrap_or_default().len(), 1, "no token, no redelivery");
    // Another cancellation's path with this event: not found, nothing sent.
    let csrf = csrf_of(&detail.html);
    let elsewhere = format!("/console/cancellations/can_00000000000000000000000000/events/{webhook_id}/redeliver");
    assert_eq!(post_form(&base, &cookie, &elsewhere, &[("csrf", &csrf)]).await.status, 404);
    // With it: the same event (same webhook-id) is sent again.
    let p = post_form(&base, &cookie, &redeliver, &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 303, "{}", p.html);
    let again = deliveries(&receiver, 2).await;
    assert_eq!(again.len(), 2, "redelivered");
    assert_eq!(again[1].headers["webhook-id"].to_str().unwrap(), webhook_id, "the same event id");
    let shown = get(&base, &cookie, &format!("/console/cancellations/{id}?done=redelivered")).await;
    assert!(shown.html.contains("Redelivery queued"), "{}", shown.html);
    let event = api_get(&app, &format!("/v1/events/{webhook_id}")).await;
    assert_eq!(event["deliveries"].as_array().map(Vec::len), Some(2), "{event:#}");

    // A `read` client sees the events, without the button.
    let reader = signed_in(&base, READER_KEY).await;
    let read_only = get(&base, &reader, &format!("/console/cancellations/{id}")).await;
    assert!(read_only.html.contains(&webhook_id) && !read_only.html.contains(&redeliver), "{}", read_only.html);
}
