//! The real `cancelgate` binary as a child process: the shipped config plus `CANCELGATE__…`
//! overrides, its listen address read from its JSON log on stdout, SIGKILLed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cancelgate_sandbox::{Sandbox, SimulatedProvider};
use serde_json::Value;

use crate::helpers::{DEMO_KEY, config_dir, poll_until_final, read};

/// Every wait of these tests is bounded by this, so a broken gateway fails a test instead of
/// hanging it.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `cancelgate serve`. Dropping it kills the process (SIGKILL) and reaps it.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    pub addr: String,
    pub client: reqwest::Client,
    /// Every line the gateway wrote to stdout (its JSON log), as it comes.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The overrides that point every provider at `sandbox`.
pub fn sandbox_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    SimulatedProvider::ALL
        .into_iter()
        .map(|p| (format!("CANCELGATE__PROVIDERS__{}__BASE_URL", p.id().to_uppercase()), sandbox.base_url(p)))
        .collect()
}

impl Gateway {
    /// Starts `cancelgate serve` in `workdir` with the shipped config, port 0 and `env`, and
    /// waits (at most [`WAIT`]) until it says where it listens.
    pub async fn start(workdir: &Path, env: &[(String, String)]) -> Gateway {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cancelgate"));
        command
            .arg("serve")
            .current_dir(workdir)
            .env("CANCELGATE_CONFIG_DIR", config_dir())
            .env("CANCELGATE__LISTEN", "127.0.0.1:0")
            .env("CANCELGATE__LOG__FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Reads stdout to its end (a full pipe would block the gateway), after the address too.
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line.clone());
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "cancelgate listening"
                    && let Some(addr) = event["addr"].as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let mut gateway = Gateway { child, addr: String::new(), client: reqwest::Client::new(), logs };
        match tokio::time::timeout(WAIT, rx).await {
            Ok(Ok(addr)) => gateway.addr = addr,
            Ok(Err(_)) => panic!("the gateway exited before listening: {:?}", gateway.child.try_wait()),
            Err(_) => panic!("the gateway did not say where it listens within {WAIT:?}"),
        }
        gateway
    }

    /// kill -9, and wait until the process is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM (a graceful stop), and wait (at most [`WAIT`]) until the process is gone.
    pub async fn terminate(mut self) {
        let pid = self.pid().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs").success());
        assert!(self.wait_exit(WAIT).await.is_some(), "still running {WAIT:?} after SIGTERM");
    }

    /// The gateway's log so far, one JSON event a line.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most `within`) for the process to exit; `None` if it still runs.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `POST /v1/cancellations` as the demo client.
    pub async fn cancel(&self, body: &Value, key: Option<&str>) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.post(self.url("/v1/cancellations")).bearer_auth(DEMO_KEY).json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        read(request.timeout(WAIT).send().await.expect("the gateway answers")).await
    }

    pub async fn get(&self, id: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/v1/cancellations/{id}")))
            .bearer_auth(DEMO_KEY)
            .timeout(WAIT)
            .send()
            .await
            .expect("the gateway answers");
        let (status, _, body) = read(response).await;
        assert_eq!(status, 200, "{body:#}");
        body
    }

    /// Polls the cancellation until it is no longer `processing` (at most `within`).
    pub async fn wait_final(&self, id: &str, within: Duration) -> Value {
        poll_until_final(&self.client, &self.url(""), id, within).await
    }
}

/// Polls `condition` every 10 ms until it holds (at most [`WAIT`]).
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
