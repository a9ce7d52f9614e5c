//! Request ids, error pages and health endpoints.

use serde_json::json;

use crate::helpers::{read, spawn_app};

#[tokio::test]
async fn request_id_is_echoed_when_well_formed_and_generated_otherwise() {
    let app = spawn_app().await;
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "abc-123");
    let generated = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(generated.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    let hostile = app.client.get(app.url("/healthz")).header("x-request-id", "a\"b{}").send().await.unwrap();
    assert!(hostile.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn every_error_code_has_a_page() {
    let app = spawn_app().await;
    for code in cancelgate_core::ErrorCode::ALL {
        let path = format!("/errors/{}", code.as_str());
        let html = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(html.status(), 200, "{path}");
        assert!(html.text().await.unwrap().contains(code.as_str()));
        let (status, _, doc) =
            read(app.client.get(app.url(&path)).header("accept", "application/json").send().await.unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(doc["status"], code.http_status());
        assert!(doc["meaning"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _, _) = read(app.client.get(app.url("/errors/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn health() {
    let app = spawn_app().await;
    let (status, _, body) = read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn a_second_gateway_on_the_same_sqlite_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = || {
        let env = std::collections::HashMap::from([
            ("CANCELGATE__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("CANCELGATE__LEDGER__URL".to_owned(), format!("sqlite://{}/data/ledger.db", dir.path().display())),
        ]);
        cancelgate_gateway::Settings::load_with_env(&crate::helpers::config_dir(), Some(env)).unwrap()
    };
    let first = cancelgate_gateway::Application::build(settings()).await.unwrap();
    // It resumes every processing record at start: two owners would drive the same records.
    let second = cancelgate_gateway::Application::build(settings()).await.unwrap_err();
    assert!(matches!(second, cancelgate_gateway::StartError::LedgerInUse { .. }), "{second}");
    assert!(second.to_string().contains("in use by another cancelgate process"));
    drop(first);
    let third = cancelgate_gateway::Application::build(settings()).await;
    assert!(third.is_ok(), "the lock goes with its owner: {:?}", third.err());
}
