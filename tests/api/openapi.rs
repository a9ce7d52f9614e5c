//! `GET /openapi.json` (OpenAPI 3.1, every route, every error code) and `GET /docs` (offline).

use cancelgate_gateway::routes::ROUTES;

use crate::helpers::{DEMO_KEY, read, spawn_app};

#[tokio::test]
async fn the_document_is_openapi_3_1_with_every_route_and_every_error_code() {
    let app = spawn_app().await;
    let (status, headers, doc) = read(app.client.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/json"));
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);

    // Every route the router serves is documented, and nothing else is.
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in
            item.as_object().unwrap().keys().filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
        {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);

    // And each is served: not the router's "no such route" fallback.
    for (method, path) in ROUTES {
        let url = app.url(&path.replace("{id}", "can_unknown").replace("{code}", "not_found"));
        let request = match *method {
            "POST" => app.client.post(url).json(&serde_json::json!({})),
            _ => app.client.get(url),
        };
        let (status, _, body) = read(request.bearer_auth(DEMO_KEY).send().await.unwrap()).await;
        assert_ne!(body["detail"], "No such route.", "{method} {path} is not routed");
        assert_ne!(status, 405, "{method} {path}");
    }

    // The problem schema enumerates every error code, and each appears as a documented answer.
    let schemas = &doc["components"]["schemas"];
    let codes: Vec<&str> =
        schemas["ErrorCode"]["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for code in cancelgate_core::ErrorCode::ALL {
        assert!(codes.contains(&code.as_str()), "{} missing from the ErrorCode schema", code.as_str());
    }
    assert_eq!(schemas["Problem"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode");
    let text = doc.to_string();
    for code in cancelgate_core::ErrorCode::ALL {
        if code != cancelgate_core::ErrorCode::MethodNotAllowed {
            assert!(text.contains(&format!("`{}`", code.as_str())), "{} is no documented answer", code.as_str());
        }
    }

    // Bodies, headers and security.
    let post = &doc["paths"]["/v1/cancellations"]["post"];
    assert_eq!(post["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/CancelBody");
    assert_eq!(schemas["CancelBody"]["additionalProperties"], false, "unknown fields are rejected");
    assert_eq!(
        post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Cancellation"
    );
    assert!(post["responses"]["202"]["headers"]["Location"].is_object());
    for status in ["200", "202", "400", "409", "502"] {
        assert!(post["responses"][status]["headers"]["X-Request-Id"].is_object(), "{status}");
    }
    for status in ["429", "503"] {
        assert!(post["responses"][status]["headers"]["Retry-After"].is_object(), "{status}");
        assert!(post["responses"][status]["content"]["application/problem+json"].is_object());
    }
    let params: Vec<&str> =
        post["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(params.contains(&"Idempotency-Key") && params.contains(&"X-Request-Id"), "{params:?}");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for operation in item.as_object().unwrap().values().filter(|v| v.is_object()) {
            let secured = operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            assert_eq!(secured, path.starts_with("/v1/"), "{path}: bearer security exactly on /v1");
        }
    }
}

/// `src`/`href` attribute values of an HTML page.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attr) {
            rest = &rest[at + attr.len()..];
            if let Some(end) = rest.find('"') {
                out.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    out
}

#[tokio::test]
async fn docs_work_offline() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let base = response.url().clone();
    assert_eq!(base.path(), "/docs/");
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    let assets = links(&html);
    assert!(assets.len() >= 3, "{assets:?}");
    let mut fetched: Vec<(String, String)> = Vec::new();
    for asset in &assets {
        assert!(!asset.contains("//"), "an absolute or external URL in /docs: {asset}");
        let url = base.join(asset).unwrap();
        assert_eq!(url.host_str(), base.host_str());
        let response = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        fetched.push((asset.clone(), response.text().await.unwrap()));
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "an external URL in the page: {html}");
    // Stylesheets load nothing from elsewhere (their `url(…)`s are inline data).
    for (asset, text) in fetched.iter().filter(|(a, _)| a.ends_with(".css")) {
        for reference in text.split("url(").skip(1) {
            let target = reference.trim_start_matches(['"', '\'']);
            assert!(
                !target.starts_with("http") && !target.starts_with("//"),
                "{asset} loads {}",
                &target[..40.min(target.len())]
            );
        }
    }
    // The initializer points at our document and turns the online validator off.
    let initializer = fetched.iter().find(|(a, _)| a.contains("initializer")).map(|(_, t)| t.clone());
    let initializer = match initializer {
        Some(text) => text,
        None => {
            app.client.get(base.join("swagger-initializer.js").unwrap()).send().await.unwrap().text().await.unwrap()
        }
    };
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(initializer.contains("\"validatorUrl\":\"none\"") || initializer.contains("validatorUrl"), "{initializer}");
    assert!(!initializer.contains("http://") && !initializer.contains("https://"), "{initializer}");
}
