//! `GET /openapi.json` (OpenAPI 3.1, every route, every error code) and `GET /docs` (offline).

use cancelgate_gateway::routes::ROUTES;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{DEMO_KEY, read, spawn_app};
use crate::observability::cancelled_reservation;

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

/// The served document.
async fn document(app: &crate::helpers::TestApp) -> Value {
    let (status, _, doc) = read(app.client.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    doc
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// The structural points Redocly's recommended rules check (tests/api cannot run node; `.ci/run`
/// lints the served document with Redocly itself): a server, `security` on every operation
/// (`[]` where no key is needed), a 4xx answer on every operation, no nullable header parameter.
#[tokio::test]
async fn the_document_passes_the_linters_structural_rules() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let servers = doc["servers"].as_array().expect("servers");
    assert!(!servers.is_empty() && servers.iter().all(|s| s["url"].is_string()), "{servers:?}");
    for (method, path, operation) in operations(&doc) {
        let security = operation["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
        if !path.starts_with("/v1/") {
            assert!(security.is_empty(), "{method} {path}: an operations endpoint needs no key: {security:?}");
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('4')), "{method} {path}: no 4xx answer");
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "header" {
                assert_eq!(parameter["schema"]["type"], "string", "{method} {path}: {parameter}");
            }
        }
    }
}

/// `$ref` into the document's components.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => doc.pointer(reference.trim_start_matches('#')).unwrap_or_else(|| panic!("{reference}")),
        None => schema,
    }
}

/// The JSON Schema keywords the document uses, but `pattern` and `format` (references are
/// checked through the adapters instead): the problems found, empty when `value` is valid.
fn violations(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    if let Some(branches) = schema["oneOf"].as_array() {
        let matching = branches.iter().filter(|b| violations(doc, b, value, at).is_empty()).count();
        if matching != 1 {
            out.push(format!("{at}: {matching} branches of oneOf match"));
        }
    }
    let type_name = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| *t == type_name || (*t == "number" && type_name == "integer")) {
        out.push(format!("{at}: a {type_name}, not {types:?}"));
        return out;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} not in {allowed:?}"));
    }
    if !schema["const"].is_null() && schema["const"] != *value {
        out.push(format!("{at}: {value} is not {}", schema["const"]));
    }
    if let Some(n) = value.as_f64()
        && (schema["minimum"].as_f64().is_some_and(|min| n < min)
            || schema["maximum"].as_f64().is_some_and(|max| n > max))
    {
        out.push(format!("{at}: {n} out of range"));
    }
    if let Some(s) = value.as_str() {
        let chars = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min)
            || schema["maxLength"].as_u64().is_some_and(|max| chars > max)
        {
            out.push(format!("{at}: length {chars} out of range"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(required) {
                out.push(format!("{at}: `{required}` missing"));
            }
        }
        for (key, member) in object {
            let at = format!("{at}/{key}");
            match schema["properties"].get(key) {
                Some(property) => out.extend(violations(doc, property, member, &at)),
                None if schema["additionalProperties"] == false => out.push(format!("{at}: not a property")),
                None if schema["additionalProperties"].is_object() => {
                    out.extend(violations(doc, &schema["additionalProperties"], member, &at))
                }
                None => {}
            }
        }
    }
    if let Some(items) = value.as_array() {
        for (n, item) in items.iter().enumerate() {
            out.extend(violations(doc, &schema["items"], item, &format!("{at}/{n}")));
        }
    }
    out
}

/// The examples a reader (and Swagger UI) sees are real answers: valid against their schema,
/// with the members the gateway really sends, and saying what their status means.
#[tokio::test]
async fn examples_are_real_answers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let post = &doc["paths"]["/v1/cancellations"]["post"];
    let get = &doc["paths"]["/v1/cancellations/{id}"]["get"];
    let list = &doc["paths"]["/v1/cancellations"]["get"];
    let cancelled = &post["responses"]["200"]["content"]["application/json"]["example"];
    let processing = &post["responses"]["202"]["content"]["application/json"]["example"];
    assert_eq!((&cancelled["status"], &cancelled["attempts"]), (&json!("cancelled"), &json!(1)), "{cancelled:#}");
    assert_eq!((&processing["status"], &processing["attempts"]), (&json!("processing"), &json!(1)), "{processing:#}");
    let examples = [
        (&schemas["Cancellation"], cancelled),
        (&schemas["Cancellation"], processing),
        (&schemas["Cancellation"], &get["responses"]["200"]["content"]["application/json"]["example"]),
        (&schemas["CancellationList"], &list["responses"]["200"]["content"]["application/json"]["example"]),
        (&schemas["CancelBody"], &schemas["CancelBody"]["example"]),
        (&schemas["BatchBody"], &schemas["BatchBody"]["example"]),
    ];
    let batches = &doc["paths"]["/v1/cancellation-batches"]["post"]["responses"];
    let batch_get = &doc["paths"]["/v1/cancellation-batches/{id}"]["get"]["responses"]["200"];
    for example in [&batches["200"], &batches["202"], batch_get] {
        let example = &example["content"]["application/json"]["example"];
        assert!(example.is_object(), "a batch example is missing");
        let problems = violations(&doc, &schemas["CancellationBatch"], example, "");
        assert!(problems.is_empty(), "{problems:?} in {example:#}");
    }
    for (schema, example) in examples {
        assert!(example.is_object(), "an example is missing");
        let problems = violations(&doc, schema, example, "");
        assert!(problems.is_empty(), "{problems:?} in {example:#}");
    }

    // The members of a real answer, no more, no fewer.
    let reference = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq";
    Mock::given(method("POST"))
        .and(path(format!("/v1/reservations/{reference}/cancel")))
        .respond_with(ResponseTemplate::new(200).set_body_json(cancelled_reservation(reference)))
        .mount(app.upstreams.of("chargeapi"))
        .await;
    let (status, _, real) = read(app.cancel(schemas["CancelBody"]["example"].clone()).await).await;
    assert_eq!(status, 200, "the body example is accepted: {real:#}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(cancelled), keys(&real));
    assert_eq!(keys(&cancelled["upstream"]["body"]), keys(&real["upstream"]["body"]));
    let problems = violations(&doc, &schemas["Cancellation"], &real, "");
    assert!(problems.is_empty(), "the schema does not fit a real answer: {problems:?}");
}

/// The reference schema states each provider's format, and a body generated from it is accepted:
/// references generated from each provider's pattern pass its adapter's check, and reach the
/// provider (answered, not refused as `invalid_request`).
#[tokio::test]
async fn bodies_generated_from_the_schema_are_accepted() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    let app = spawn_app().await;
    let doc = document(&app).await;
    let body = &doc["components"]["schemas"]["CancelBody"];
    let branches = body["oneOf"].as_array().expect("CancelBody.oneOf: one branch per provider");
    let adapters = cancelgate_gateway::registry::adapters();
    assert_eq!(branches.len(), adapters.len());
    let mut runner = TestRunner::deterministic();
    for adapter in &adapters {
        let id = adapter.id().as_str();
        let branch = branches
            .iter()
            .find(|b| b["properties"]["provider"]["const"] == id)
            .unwrap_or_else(|| panic!("no branch for {id}"));
        let pattern = branch["properties"]["reference"]["pattern"].as_str().unwrap();
        let unanchored = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("an anchored pattern");
        let strategy = proptest::string::string_regex(unanchored).unwrap();
        for n in 0..200 {
            let reference = strategy.new_tree(&mut runner).unwrap().current();
            assert!(
                adapter.parse_reference(&reference).is_ok(),
                "{id}: {reference:?} matches {pattern} and is refused"
            );
            let candidate = json!({"provider": id, "reference": reference});
            assert!(violations(&doc, body, &candidate, "").is_empty(), "{candidate}");
            if n == 0 {
                let (status, _, answer) = read(app.cancel(candidate.clone()).await).await;
                assert_ne!(answer["code"], "invalid_request", "{candidate} refused ({status}): {answer:#}");
            }
        }
    }
}

/// A created cancellation links to reading it (clients and schemathesis's stateful phase follow it).
#[tokio::test]
async fn a_created_cancellation_links_to_reading_it() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let ids: Vec<String> =
        operations(&doc).iter().filter_map(|(_, _, o)| o["operationId"].as_str().map(str::to_owned)).collect();
    for status in ["200", "202"] {
        let link = &doc["paths"]["/v1/cancellations"]["post"]["responses"][status]["links"]["GetCancellation"];
        assert_eq!(link["operationId"], "getCancellation", "{status}: {link}");
        assert!(ids.contains(&"getCancellation".to_owned()));
        assert_eq!(link["parameters"]["id"], "$response.body#/id");
    }
}

#[tokio::test]
async fn the_docs_page_is_titled_after_the_api() {
    let app = spawn_app().await;
    let html = app.client.get(app.url("/docs/")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<title>cancelgate API</title>"), "{html}");
}

/// The route layers of `/v1` (authorize, the client's quota) answer before any handler: every
/// `/v1` operation documents their 401, 403 and 429 (with `Retry-After`), and no operation
/// outside `/v1` documents them.
#[tokio::test]
async fn every_v1_operation_documents_what_its_layers_answer() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        for status in ["401", "403", "429"] {
            let problem = &responses[status]["content"]["application/problem+json"];
            assert_eq!(problem.is_object(), path.starts_with("/v1/"), "{method} {path}: {status}");
        }
        if path.starts_with("/v1/") {
            assert!(responses["429"]["headers"]["Retry-After"].is_object(), "{method} {path}");
            assert!(responses["429"]["description"].as_str().unwrap().contains("`rate_limited`"), "{method} {path}");
        }
    }
}
