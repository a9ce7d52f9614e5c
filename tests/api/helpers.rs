use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cancelgate_gateway::{Application, Settings};
use cancelgate_sandbox::{Fault, FaultRule, Sandbox, SimulatedProvider, bench_reference};
use serde_json::Value;
use wiremock::MockServer;

pub const DEMO_KEY: &str = "cg_demo_key_local_only";

/// The shipped configuration directory (the tests use it as a newcomer would).
pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Copies a directory tree (a config directory a test then edits).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// One mock upstream per provider, keyed by provider id: one for each simulated provider
/// (`SimulatedProvider::ALL`, which `provider_units` checks is the registry's list).
pub struct Upstreams {
    servers: BTreeMap<&'static str, MockServer>,
}

impl Upstreams {
    pub async fn start() -> Self {
        let mut servers = BTreeMap::new();
        for p in SimulatedProvider::ALL {
            servers.insert(p.id(), MockServer::start().await);
        }
        Self { servers }
    }

    /// The mock upstream of provider `id`.
    #[track_caller]
    pub fn of(&self, id: &str) -> &MockServer {
        self.servers.get(id).unwrap_or_else(|| panic!("no mock upstream for provider {id:?}"))
    }

    /// The provider ids with a mock upstream.
    pub fn ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.servers.keys().copied()
    }

    /// `CANCELGATE__PROVIDERS__<ID>__BASE_URL` for every provider, pointing at its mock.
    fn base_url_env(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.servers.iter().map(|(id, server)| (provider_key(id, "BASE_URL"), server.uri()))
    }

    pub async fn received_count(&self) -> usize {
        let mut n = 0;
        for server in self.servers.values() {
            n += server.received_requests().await.map_or(0, |r| r.len());
        }
        n
    }
}

/// The environment key of one provider setting, e.g. `CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL`.
pub fn provider_key(id: &str, key: &str) -> String {
    format!("CANCELGATE__PROVIDERS__{}__{key}", id.to_uppercase())
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub upstreams: Upstreams,
    pub logs: LogCapture,
    /// The gateway's state (its ledger, registry and settings).
    pub state: cancelgate_gateway::state::AppState,
    _dir: tempfile::TempDir,
}

/// Start the gateway with the shipped config, pointed at fresh mock upstreams.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(HashMap::new()).await
}

pub async fn spawn_app_with(extra_env: HashMap<String, String>) -> TestApp {
    spawn_app_in(&config_dir(), extra_env).await
}

/// As [`spawn_app_with`], with the configuration read from `config` instead of the shipped one.
pub async fn spawn_app_in(config: &Path, extra_env: HashMap<String, String>) -> TestApp {
    let upstreams = Upstreams::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = HashMap::from([
        ("CANCELGATE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/ledger.db", dir.path().display())),
        // Short timeouts and backoff keep the fault tests fast.
        ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS".to_owned(), "500".to_owned()),
    ]);
    env.extend(upstreams.base_url_env());
    env.extend(upstreams.ids().map(|id| (provider_key(id, "RETRY__BACKOFF_BASE_MS"), "5".to_owned())));
    env.extend(extra_env);
    let settings = Settings::load_with_env(config, Some(env)).expect("the config loads");
    let logs = LogCapture::install();
    let app = Application::build(settings).await.expect("gateway starts");
    let addr = app.local_addr();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { addr, client: reqwest::Client::new(), upstreams, logs, state, _dir: dir }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn cancel(&self, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .json(&body)
            .send()
            .await
            .expect("gateway answers")
    }
}

impl TestApp {
    pub async fn get_cancellation(&self, id: &str) -> (u16, Value) {
        let response =
            self.client.get(self.url(&format!("/v1/cancellations/{id}"))).bearer_auth(DEMO_KEY).send().await.unwrap();
        let (status, _, body) = read(response).await;
        (status, body)
    }

    /// Poll until the cancellation is no longer `processing` (10 s at most).
    pub async fn wait_final(&self, id: &str) -> Value {
        poll_until_final(&self.client, &self.url(""), id, std::time::Duration::from_secs(10)).await
    }
}

/// Poll `GET {base}/v1/cancellations/{id}` (as the demo client) until the cancellation is no
/// longer `processing`, at most `within`; every answer on the way must be a 200.
pub async fn poll_until_final(client: &reqwest::Client, base: &str, id: &str, within: std::time::Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let response = client
            .get(format!("{base}/v1/cancellations/{id}"))
            .bearer_auth(DEMO_KEY)
            .timeout(within)
            .send()
            .await
            .expect("the gateway answers");
        let (status, _, body) = read(response).await;
        assert_eq!(status, 200, "{body:#}");
        if body["status"] != "processing" {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "still processing after {within:?}: {body:#}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Read an answer: status, headers, JSON body.
pub async fn read(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Assert a problem answer: status, code, and the members every problem has.
#[track_caller]
pub fn assert_problem(status: u16, headers: &reqwest::header::HeaderMap, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body:#}");
    assert_eq!(body["code"], code, "{body:#}");
    assert_eq!(body["status"], want_status);
    assert_eq!(body["type"], format!("/errors/{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body:#}");
    assert!(body["retryable"].is_boolean());
    assert_eq!(headers["content-type"], "application/problem+json");
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(body["request_id"], request_id);
}

/// Captures every log line written while a test runs (current-thread runtime: the gateway's
/// tasks run on the test's thread, so a thread-local default subscriber sees them all).
#[derive(Clone, Default)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: Option<Arc<tracing::subscriber::DefaultGuard>>,
}

impl LogCapture {
    fn install() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        let subscriber =
            tracing_subscriber::fmt().with_env_filter("trace").with_writer(move || writer.clone()).json().finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Self { buffer, _guard: Some(Arc::new(guard)) }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }
}

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The gateway in front of the project's own provider simulators.
pub struct SandboxApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub sandbox: Sandbox,
    _dir: tempfile::TempDir,
}

pub async fn spawn_on_sandbox(extra_env: &[(&str, &str)]) -> SandboxApp {
    use cancelgate_sandbox::SandboxConfig;
    let sandbox = Sandbox::start(SandboxConfig::default()).await.expect("sandbox starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = HashMap::from([
        ("CANCELGATE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/ledger.db", dir.path().display())),
    ]);
    for p in SimulatedProvider::ALL {
        let id = p.id().to_uppercase();
        env.insert(format!("CANCELGATE__PROVIDERS__{id}__BASE_URL"), sandbox.base_url(p));
        env.insert(format!("CANCELGATE__PROVIDERS__{id}__TIMEOUT_MS"), "300".to_owned());
        env.insert(format!("CANCELGATE__PROVIDERS__{id}__RETRY__BACKOFF_BASE_MS"), "5".to_owned());
        env.insert(format!("CANCELGATE__PROVIDERS__{id}__RETRY__BACKOFF_MAX_MS"), "50".to_owned());
    }
    env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load_with_env(&config_dir(), Some(env)).expect("shipped config loads");
    let app = Application::build(settings).await.expect("gateway starts");
    let addr = app.local_addr();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    SandboxApp { addr, client: reqwest::Client::new(), sandbox, _dir: dir }
}

impl SandboxApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn cancel(&self, provider: &str, reference: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let body = serde_json::json!({"provider": provider, "reference": reference});
        let response =
            self.client.post(self.url("/v1/cancellations")).bearer_auth(DEMO_KEY).json(&body).send().await.unwrap();
        read(response).await
    }

    pub async fn wait_final(&self, id: &str) -> Value {
        poll_until_final(&self.client, &self.url(""), id, std::time::Duration::from_secs(15)).await
    }

    /// The final cancellation behind an answer (polling when it was a 202).
    pub async fn settle(&self, status: u16, body: &Value) -> Value {
        if status == 202 && body["status"] == "processing" {
            self.wait_final(body["id"].as_str().unwrap()).await
        } else {
            body.clone()
        }
    }
}

/// A gateway running in front of the sandbox (for helpers that drive both).
pub trait OnSandbox {
    fn client(&self) -> &reqwest::Client;
    /// `http://addr`, no trailing slash.
    fn base(&self) -> String;
    fn sandbox(&self) -> &Sandbox;
}

impl OnSandbox for SandboxApp {
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

/// Front Payment cancels, then the connection is reset before the gateway hears: the repeat's
/// answer cannot tell "we cancelled" from "already cancelled by someone", so the record needs
/// review. The `n`-th Front Payment bench reference, cancelled as the demo client; the settled record.
pub async fn in_review(app: &impl OnSandbox, n: u64) -> Value {
    let p = SimulatedProvider::FrontPayment;
    let reference = bench_reference(p, n);
    app.sandbox().inject(p, FaultRule::reference(reference.clone(), Fault::Reset).times(1).commit_then_fail());
    let body = serde_json::json!({"provider": p.id(), "reference": reference});
    let base = app.base();
    let response =
        app.client().post(format!("{base}/v1/cancellations")).bearer_auth(DEMO_KEY).json(&body).send().await.unwrap();
    let (status, _, body) = read(response).await;
    let record = if status == 202 && body["status"] == "processing" {
        let id = body["id"].as_str().unwrap();
        poll_until_final(app.client(), &base, id, std::time::Duration::from_secs(15)).await
    } else {
        body
    };
    assert_eq!(record["status"], "needs_review", "{record:#}");
    record
}
