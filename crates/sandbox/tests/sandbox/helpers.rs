use std::time::Duration;

use cancelgate_sandbox::{Sandbox, SandboxConfig, SimulatedProvider, credentials};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub use SimulatedProvider::{Accommodation, ChargeApi, FrontPayment};

/// Client timeout for every test request (hang tests use their own, shorter one).
pub const TIMEOUT: Duration = Duration::from_secs(2);

pub struct TestSandbox {
    pub sandbox: Sandbox,
    pub client: reqwest::Client,
}

/// A fresh sandbox on three free ports and a client with a bounded timeout.
pub async fn spawn() -> TestSandbox {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.expect("sandbox starts");
    let client = reqwest::Client::builder().timeout(TIMEOUT).build().expect("client");
    TestSandbox { sandbox, client }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Answer { status, headers, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl TestSandbox {
    pub fn url(&self, p: SimulatedProvider, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url(p))
    }

    pub fn chargeapi_request(&self, id: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(ChargeApi, &format!("/v1/reservations/{id}/cancel")))
            .bearer_auth(credentials::CHARGEAPI_SECRET_KEY)
    }

    /// The documented ChargeAPI cancel: bearer key, body `{}`.
    pub async fn chargeapi_cancel(&self, id: &str) -> Answer {
        self.send(self.chargeapi_request(id).json(&json!({}))).await
    }

    pub fn frontpayment_request(&self, uuid: &str) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(FrontPayment, &format!("/api/v1/connect/reservations/cancel/{uuid}")))
            .bearer_auth(credentials::FRONTPAYMENT_TOKEN)
    }

    /// The documented Front Payment cancel: a GET with the JSON body `{"note": ...}`.
    pub async fn frontpayment_cancel(&self, uuid: &str) -> Answer {
        self.send(self.frontpayment_request(uuid).json(&json!({"note": "Customer changed plans"}))).await
    }

    pub fn accommodation_request(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(Accommodation, "/api/cancel"))
            .header("api-key", credentials::ACCOMMODATION_API_KEY)
            .json(body)
    }

    /// The documented accommodation cancel, as partner_demo (code 10001 as a number).
    pub async fn accommodation_cancel(&self, reference: &str) -> Answer {
        self.send(self.accommodation_request(&accommodation_body(reference, json!(10001)))).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        Answer::read(request.send().await.expect("an answer")).await
    }

    pub async fn admin_post(&self, p: SimulatedProvider, path: &str, body: &Value) -> Answer {
        self.send(self.client.post(self.url(p, path)).json(body)).await
    }

    pub async fn admin_get(&self, p: SimulatedProvider, path: &str) -> Answer {
        self.send(self.client.get(self.url(p, path))).await
    }

    pub async fn admin_delete(&self, p: SimulatedProvider, path: &str) -> Answer {
        self.send(self.client.delete(self.url(p, path))).await
    }

    /// `GET /_sandbox/state/{ref}`'s `status`.
    pub async fn status_of(&self, p: SimulatedProvider, reference: &str) -> Value {
        self.admin_get(p, &format!("/_sandbox/state/{reference}")).await.json()["status"].clone()
    }

    /// The documented cancel of any provider; answers the status only.
    pub async fn cancel(&self, p: SimulatedProvider, reference: &str) -> Answer {
        match p {
            ChargeApi => self.chargeapi_cancel(reference).await,
            FrontPayment => self.frontpayment_cancel(reference).await,
            Accommodation => self.accommodation_cancel(reference).await,
        }
    }
}

/// The documented accommodation request body.
pub fn accommodation_body(reference: &str, code: Value) -> Value {
    json!({
        "input": { "reference": { "bookingReference": reference }, "language": "EN" },
        "settings": { "access": { "code": code } }
    })
}

/// `2026-04-01T01:38:06.924Z`: RFC 3339, UTC, exactly three fractional digits.
pub fn is_rfc3339_ms_z(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}
