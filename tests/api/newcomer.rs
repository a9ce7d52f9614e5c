//! README's first command, run as a newcomer would: the real binary, `serve --sandbox`, the
//! shipped config, a fresh working directory (so a fresh `data/`), nothing else set up.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{DEMO_KEY, config_dir, copy_dir, read};

/// Kills the gateway when the test ends, whatever way it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cancelgate serve --sandbox` in `workdir` and wait for the address it listens on.
fn start(workdir: &Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cancelgate"))
        .args(["serve", "--sandbox"])
        .current_dir(workdir)
        // Port 0: tests run in parallel. Everything else is the shipped default.
        .env("CANCELGATE__LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env_remove("CANCELGATE_CONFIG_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                && event["message"] == "cancelgate listening"
                && let Some(addr) = event["addr"].as_str()
            {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the gateway says where it listens");
    (running, addr)
}

#[tokio::test]
async fn serve_sandbox_on_a_fresh_checkout_cancels_one_seeded_reference_per_provider() {
    let workdir = tempfile::tempdir().unwrap();
    copy_dir(&config_dir(), &workdir.path().join("config"));
    let (_gateway, addr) = start(workdir.path());
    let client = reqwest::Client::new();

    for (provider, reference) in [
        ("chargeapi", "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"),
        ("frontpayment", "9b2f6a3e-1c4d-4e8f-a7b6-5d4c3b2a1f00"),
        ("accommodation", "BK_EXAMPLE_001"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let response = client
            .post(format!("http://{addr}/v1/cancellations"))
            .bearer_auth(DEMO_KEY)
            .json(&json!({"provider": provider, "reference": reference}))
            .timeout(deadline - Instant::now())
            .send()
            .await
            .unwrap();
        let (status, _, body) = read(response).await;
        assert_eq!(status, 200, "{provider}: {body:#}");
        assert_eq!(body["status"], "cancelled", "{provider}");
    }
    assert!(workdir.path().join("data").is_dir(), "the SQLite ledger lives under data/");
}
