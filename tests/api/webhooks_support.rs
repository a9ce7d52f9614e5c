//! What the webhook tests share (SPEC §8): endpoint secrets, a config directory with a
//! `[webhooks]` section, the gateway in this process on the sandbox with that config, and the
//! reads of `/v1/events`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cancelgate_gateway::{Application, Settings};
use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider};
use serde_json::{Value, json};

use crate::helpers::{DEMO_KEY, config_dir, copy_dir, poll_until_final, read};

/// Endpoint secrets (`whsec_` + base64 of that many bytes).
pub const SECRET_A: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A="; // 32 bytes
pub const SECRET_B: &str = "whsec_QkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGE="; // 32 bytes
pub const SECRET_24: &str = "whsec_Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFla";
pub const SECRET_64: &str =
    "whsec_REVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2BhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCgw==";
pub const SECRET_16: &str = "whsec_RUZHSElKS0xNTk9QUVJTVA==";
pub const SECRET_23: &str = "whsec_R0hJSktMTU5PUFFSU1RVVldYWVpbXF0=";
pub const SECRET_65: &str =
    "whsec_RkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9gYWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYY=";

/// A client with the default scopes (`cancel`, `read`): no `operate`.
pub const PLAIN_KEY: &str = "cg_plain_webhooks_test_key";

/// Every wait of the webhook tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(20);

/// A `[webhooks]` section: the fastest retry schedule (eight retries a second apart: a failing
/// delivery stays pending for about 8 s), a short poll, and `endpoints` (`name = url`, with
/// [`SECRET_A`]); `extra` is appended (more keys of the section's tables).
pub fn webhooks_toml(endpoints: &[(&str, &str)], extra: &str) -> String {
    let mut toml = String::from("\n[webhooks]\nretry_schedule_s = [1, 1, 1, 1, 1, 1, 1, 1]\npoll_ms = 100\n");
    for (name, url) in endpoints {
        toml.push_str(&format!(
            "\n[webhooks.endpoints.{name}]\nurl = \"{url}\"\nsecret = \"{SECRET_A}\"\ntimeout_ms = 2000\n"
        ));
    }
    toml.push_str(extra);
    toml
}

/// A copy of the shipped config whose `gateway.toml` ends with `webhooks` (TOML).
pub fn config_with(webhooks: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&config_dir(), dir.path());
    let gateway = dir.path().join("gateway.toml");
    let mut text = std::fs::read_to_string(&gateway).unwrap();
    text.push_str(webhooks);
    std::fs::write(&gateway, text).unwrap();
    dir
}

/// The gateway in this process, on the sandbox, with a `[webhooks]` section of its own.
pub struct WebhookApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub sandbox: Sandbox,
    _config: tempfile::TempDir,
    _data: tempfile::TempDir,
}

/// Starts a [`WebhookApp`] with `webhooks` appended to the shipped config, plus `env`; a client
/// `plain` (key [`PLAIN_KEY`], scopes `cancel`, `read`) besides `demo`.
pub async fn spawn_webhooks(webhooks: &str, env: &[(&str, &str)]) -> WebhookApp {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.expect("sandbox starts");
    let config = config_with(webhooks);
    let data = tempfile::tempdir().unwrap();
    let mut vars = HashMap::from([
        ("CANCELGATE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/ledger.db", data.path().display())),
        ("CANCELGATE__CLIENTS__PLAIN__KEY_SHA256".to_owned(), cancelgate_gateway::clients::sha256_hex(PLAIN_KEY)),
        ("CANCELGATE__CLIENTS__PLAIN__PROVIDERS".to_owned(), "*".to_owned()),
    ]);
    for p in SimulatedProvider::ALL {
        let id = p.id().to_uppercase();
        vars.insert(format!("CANCELGATE__PROVIDERS__{id}__BASE_URL"), sandbox.base_url(p));
        vars.insert(format!("CANCELGATE__PROVIDERS__{id}__TIMEOUT_MS"), "300".to_owned());
        vars.insert(format!("CANCELGATE__PROVIDERS__{id}__RETRY__BACKOFF_BASE_MS"), "5".to_owned());
        vars.insert(format!("CANCELGATE__PROVIDERS__{id}__RETRY__BACKOFF_MAX_MS"), "50".to_owned());
    }
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_with_env(config.path(), Some(vars)).expect("the config loads");
    let app = Application::build(settings).await.expect("gateway starts");
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    WebhookApp { addr, client: reqwest::Client::new(), sandbox, _config: config, _data: data }
}

impl WebhookApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `POST /v1/cancellations` as `key`'s client; the final record (polled after a 202) and the
    /// first answer's status.
    pub async fn cancel_as(&self, key: &str, provider: SimulatedProvider, reference: &str) -> (u16, Value) {
        let body = json!({"provider": provider.id(), "reference": reference});
        let response = self.client.post(self.url("/v1/cancellations")).bearer_auth(key).json(&body).send().await;
        let (status, _, body) = read(response.unwrap()).await;
        if status == 202 && body["status"] == "processing" {
            let id = body["id"].as_str().unwrap();
            return (status, poll_until_final(&self.client, &self.url(""), id, WAIT).await);
        }
        (status, body)
    }

    pub async fn cancel(&self, provider: SimulatedProvider, reference: &str) -> (u16, Value) {
        self.cancel_as(DEMO_KEY, provider, reference).await
    }

    /// `GET path` as the demo client: status and body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = read(self.client.get(self.url(path)).bearer_auth(DEMO_KEY).send().await.unwrap()).await;
        (status, body)
    }

    /// `GET path`, which must answer 200.
    pub async fn get_ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body:#}");
        body
    }

    pub async fn post(&self, key: &str, path: &str, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let request = self.client.post(self.url(path)).bearer_auth(key).header("content-type", "application/json");
        read(request.body(body.to_owned()).send().await.unwrap()).await
    }

    /// The cancellation's record as `GET /v1/cancellations/{id}` returns it.
    pub async fn record(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/cancellations/{id}")).await
    }

    /// `GET /v1/events/{id}`.
    pub async fn event(&self, id: &str) -> Value {
        self.get_ok(&format!("/v1/events/{id}")).await
    }

    /// Polls `GET /v1/events/{id}` until the delivery to `endpoint` has `status` (at most [`WAIT`]).
    pub async fn wait_delivery(&self, id: &str, endpoint: &str, status: &str) -> Value {
        wait_delivery(&self.client, &self.url(""), id, endpoint, status).await
    }
}

/// The delivery to `endpoint` in an event of `GET /v1/events/{id}`.
pub fn delivery<'a>(event: &'a Value, endpoint: &str) -> &'a Value {
    event["deliveries"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["endpoint"] == endpoint))
        .unwrap_or_else(|| panic!("no delivery to {endpoint} in {event:#}"))
}

/// Polls `GET {base}/v1/events/{id}` until the delivery to `endpoint` has `status`.
pub async fn wait_delivery(client: &reqwest::Client, base: &str, id: &str, endpoint: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let response = client.get(format!("{base}/v1/events/{id}")).bearer_auth(DEMO_KEY).send().await.unwrap();
        let (code, _, event) = read(response).await;
        if code == 200
            && event["deliveries"]
                .as_array()
                .is_some_and(|all| all.iter().any(|d| d["endpoint"] == endpoint && d["status"] == status))
        {
            return event;
        }
        assert!(Instant::now() < deadline, "event {id}: no {status} delivery to {endpoint} within {WAIT:?}: {event:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts the payload of §8 around `data`: an `evt_` id equal to `webhook-id`, `object`,
/// `type`, an RFC 3339 `created_at`, and JSON content type.
#[track_caller]
pub fn assert_envelope(delivery: &crate::receiver::Delivery, event_type: &str) {
    let body = delivery.json();
    assert_eq!(body["object"], "event", "{body:#}");
    assert_eq!(body["type"], event_type, "{body:#}");
    let id = body["id"].as_str().unwrap_or_default();
    assert!(id.starts_with("evt_"), "{body:#}");
    assert_eq!(delivery.header("webhook-id"), Some(id), "webhook-id is the event id");
    assert!(
        body["created_at"].as_str().is_some_and(|t| time::OffsetDateTime::parse(
            t,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()),
        "{body:#}"
    );
    assert!(
        delivery.header("content-type").is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        delivery.headers
    );
    let timestamp: u64 = delivery.header("webhook-timestamp").and_then(|t| t.parse().ok()).expect("webhook-timestamp");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(timestamp.abs_diff(now) < 120, "webhook-timestamp {timestamp} is not this attempt's UNIX seconds");
    let signature = delivery.header("webhook-signature").unwrap_or_default();
    assert!(signature.starts_with("v1,"), "{signature}");
}

impl crate::helpers::OnSandbox for WebhookApp {
    fn client(&self) -> &reqwest::Client {
        &self.client
    }
    fn base(&self) -> String {
        self.url("")
    }
    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }
}
