//! The independent verifier of webhook signatures: `tests/webhooks/verify.py`, which verifies
//! with the `standardwebhooks` package from PyPI (an implementation the gateway's authors did not
//! write), in the venv `scripts/test` makes (`target/webhooks-venv`, or the Python named by
//! `CANCELGATE_TEST_WEBHOOK_PYTHON`). Without that venv the verification is skipped with a
//! message, except under CI (`CI` set), where it fails: CI never skips it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::receiver::Delivery;

const PYTHON_VAR: &str = "CANCELGATE_TEST_WEBHOOK_PYTHON";

fn python() -> Option<PathBuf> {
    if let Ok(path) = std::env::var(PYTHON_VAR) {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/webhooks-venv/bin/python");
    venv.exists().then_some(venv)
}

/// Whether the independent verifier can run here (else, outside CI, verification is skipped).
fn available(test: &str) -> Option<PathBuf> {
    match python() {
        Some(python) => Some(python),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: the webhook verifier's venv is missing (run scripts/test, or set {PYTHON_VAR})")
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: signature verification in {test} (no target/webhooks-venv: run scripts/test)"
            );
            None
        }
    }
}

/// One verdict per delivery: `None` when its signature is valid for `secret`, else why not.
pub fn verdicts(test: &str, secret: &str, deliveries: &[Delivery]) -> Option<Vec<Option<String>>> {
    let python = available(test)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/verify.py");
    let input = json!({
        "secret": secret,
        "deliveries": deliveries.iter().map(|d| json!({
            "headers": d.headers.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>(),
            "body": d.body,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{test}: cannot run the verifier {}: {e}", python.display()));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{test}: the verifier failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Option<String>> = serde_json::from_slice(&output.stdout).expect("the verifier prints JSON");
    assert_eq!(results.len(), deliveries.len());
    Some(results)
}

/// Asserts that every delivery carries a signature valid for `secret` (standardwebhooks).
#[track_caller]
pub fn assert_signed(test: &str, secret: &str, deliveries: &[Delivery]) {
    let Some(results) = verdicts(test, secret, deliveries) else { return };
    for (delivery, result) in deliveries.iter().zip(results) {
        assert!(
            result.is_none(),
            "{test}: delivery {} ({}) is not validly signed: {result:?}; headers {:?}",
            delivery.id(),
            delivery.event_type(),
            delivery.headers
        );
    }
}

/// The same delivery with its `webhook-signature` reduced to its `i`-th signature (rotation).
pub fn with_only_signature(delivery: &Delivery, i: usize) -> Delivery {
    let mut one = delivery.clone();
    let signatures: Vec<String> =
        delivery.header("webhook-signature").unwrap_or_default().split(' ').map(str::to_owned).collect();
    let chosen = signatures.get(i).cloned().unwrap_or_default();
    for (name, value) in &mut one.headers {
        if name == "webhook-signature" {
            value.clone_from(&chosen);
        }
    }
    one
}
