//! The webhook tests' own tools, checked without the gateway: the receiver records requests
//! faithfully and answers as scripted (status and headers, resets, hangs, huge bodies), and the
//! independent verifier accepts a delivery signed for its secret and refuses one signed for
//! another secret or whose body was changed (so that `assert_signed` passing means something).

use std::process::Command;
use std::time::Duration;

use crate::receiver::{Answer, Receiver};
use crate::webhook_verifier::{verdicts, with_only_signature};
use crate::webhooks_support::{SECRET_A, SECRET_B};

/// Signs `body` for `secret` now with the `standardwebhooks` package: (webhook-timestamp,
/// webhook-signature); `None` where the verifier's venv is not installed (outside CI).
fn sign(secret: &str, id: &str, body: &str, at: Option<&str>) -> Option<(String, String)> {
    let python = std::env::var("CANCELGATE_TEST_WEBHOOK_PYTHON").map(std::path::PathBuf::from).ok().or_else(|| {
        let venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/webhooks-venv/bin/python");
        venv.exists().then_some(venv)
    })?;
    let program = "import sys, datetime\n\
        from standardwebhooks.webhooks import Webhook\n\
        now = datetime.datetime.fromtimestamp(int(sys.argv[4]), tz=datetime.timezone.utc) if len(sys.argv) > 4 else datetime.datetime.now(tz=datetime.timezone.utc)\n\
        print(int(now.timestamp()))\n\
        print(Webhook(sys.argv[1]).sign(sys.argv[2], now, sys.argv[3]))\n";
    let mut args = vec!["-c", program, secret, id, body];
    args.extend(at);
    let output = Command::new(python).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    Some((lines.next()?.to_owned(), lines.next()?.to_owned()))
}

#[tokio::test]
async fn the_verifier_accepts_the_right_secret_only_and_sees_a_changed_body() {
    let test = "the_verifier_accepts_the_right_secret_only";
    let body = r#"{"id":"evt_1","object":"event","type":"cancellation.cancelled","data":{"note":"é ✓"}}"#;
    let Some((timestamp, a)) = sign(SECRET_A, "evt_1", body, None) else {
        assert!(std::env::var_os("CI").is_none(), "{test}: the verifier's venv is missing under CI");
        return;
    };
    // The same timestamp for both (a second may pass between the two calls).
    let (_, b) = sign(SECRET_B, "evt_1", body, Some(&timestamp)).unwrap();
    let receiver = Receiver::ok().await;
    let client = reqwest::Client::new();
    for (signature, body) in [(format!("{a} {b}"), body), (a.clone(), body), (a.clone(), &body.replace("✓", "x"))] {
        let response = client
            .post(receiver.url("/hooks"))
            .header("webhook-id", "evt_1")
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = receiver.deliveries();
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].body.as_str(), seen[0].path.as_str(), seen[0].id()), (body, "/hooks", "evt_1".to_owned()));
    let for_a = verdicts(test, SECRET_A, &seen).unwrap();
    assert_eq!(for_a.iter().map(Option::is_none).collect::<Vec<_>>(), [true, true, false], "{for_a:?}");
    let for_b = verdicts(test, SECRET_B, &seen).unwrap();
    assert_eq!(for_b.iter().map(Option::is_none).collect::<Vec<_>>(), [true, false, false], "{for_b:?}");
    let second_alone = with_only_signature(&seen[0], 1);
    assert_eq!(verdicts(test, SECRET_B, std::slice::from_ref(&second_alone)).unwrap(), [None]);
    assert!(verdicts(test, SECRET_A, &[second_alone]).unwrap()[0].is_some());
}

#[tokio::test]
async fn the_receiver_answers_as_scripted() {
    let receiver = Receiver::sequence(vec![
        Answer::WithHeaders(429, vec![("retry-after".to_owned(), "3".to_owned())]),
        Answer::Delay(Duration::from_millis(300), Box::new(Answer::Status(503))),
        Answer::Reset,
        Answer::Hang,
        Answer::Huge(50 * 1024 * 1024),
    ])
    .await;
    let client = reqwest::Client::new();
    let post = |n: usize| client.post(receiver.url(&format!("/n/{n}"))).body(format!("{{\"n\":{n}}}"));

    let first = post(0).send().await.unwrap();
    assert_eq!((first.status().as_u16(), first.headers()["retry-after"].to_str().unwrap()), (429, "3"));
    let started = std::time::Instant::now();
    assert_eq!(post(1).send().await.unwrap().status(), 503);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(post(2).send().await.is_err(), "a reset is an error, not an answer");
    let hung = post(3).timeout(Duration::from_millis(500)).send().await;
    assert!(hung.is_err_and(|e| e.is_timeout()), "a hang never answers");
    let huge = post(4).send().await.unwrap();
    assert_eq!(huge.content_length(), Some(50 * 1024 * 1024));
    // Read a little of it only, as a bounded client would.
    let mut huge = huge;
    assert!(huge.chunk().await.unwrap().is_some_and(|c| !c.is_empty()));
    drop(huge);
    assert_eq!(post(5).send().await.unwrap().status(), 200, "then 200");

    let seen = receiver.deliveries();
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().enumerate().all(|(n, d)| d.path == format!("/n/{n}") && d.json()["n"] == n));
}
