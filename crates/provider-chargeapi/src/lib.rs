//! ChargeAPI (EV-charging reservations, Stripe-style REST): builds the cancel request and
//! classifies its answer. Pure: no I/O, see `cancelgate_core::CancelProvider`.

mod map;
mod wire;

use cancelgate_core::{
    Account, AttemptContext, BuildError, CancelProvider, CancelRequest, Capabilities, CredentialField, HttpRequest,
    HttpResponse, InvalidReference, Outcome, ProviderId, Reference, check_reference,
};
use http::Method;
use serde_json::json;

pub const ID: ProviderId = ProviderId::new("chargeapi");

const SECRET_KEY: &str = "secret_key";
const PREFIX: &str = "res_";
const MAX_ID_LEN: usize = 64;
const EXPECTED: &str = "`res_` followed by 1 to 64 ASCII letters or digits";

#[derive(Debug, Default, Clone)]
pub struct ChargeApi;

impl CancelProvider for ChargeApi {
    fn id(&self) -> ProviderId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        // A repeat is answered "already cancelled", which the classifier reads with the context.
        Capabilities {
            repeat_cancel_is_safe: true,
            repeat_settles_review: true,
            cancellation_preview: false,
            status_lookup: false,
        }
    }

    fn credential_fields(&self) -> &'static [CredentialField] {
        &[CredentialField { key: SECRET_KEY, secret: true, required: true }]
    }

    fn reference_pattern(&self) -> &'static str {
        "^res_[A-Za-z0-9]{1,64}$"
    }

    fn parse_reference(&self, raw: &str) -> Result<Reference, InvalidReference> {
        let well_formed = raw
            .strip_prefix(PREFIX)
            .is_some_and(|id| (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !well_formed {
            return Err(InvalidReference { expected: EXPECTED });
        }
        check_reference(raw.to_owned(), EXPECTED)
    }

    fn build_cancel(&self, request: &CancelRequest, account: &Account) -> Result<HttpRequest, BuildError> {
        let key = account.header_secret(SECRET_KEY)?;
        Ok(HttpRequest::new(Method::POST, format!("/v1/reservations/{}/cancel", request.reference))
            .bearer(key)
            .json(&json!({})))
    }

    fn classify_cancel(&self, response: &HttpResponse, context: AttemptContext) -> Outcome {
        map::classify(response, context)
    }
}

#[cfg(test)]
mod tests {
    use cancelgate_core::testing::{answer_body, classify_anything};
    use cancelgate_core::{HeaderValueKind, MissingCredential};
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    const SECRET: &str = "ch_sk_test_51HdQ8zTopSecret";

    fn account() -> Account {
        Account::new("default").with_secret(SECRET_KEY, SECRET)
    }

    fn request(reference: &str) -> CancelRequest {
        CancelRequest {
            reference: ChargeApi.parse_reference(reference).unwrap(),
            reason: Some("Customer changed plans".into()),
            language: Some("EN".into()),
        }
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Vec<&'a HeaderValueKind> {
        request.headers.iter().filter(|h| h.name.as_str() == name).map(|h| &h.value).collect()
    }

    #[test]
    fn identity_and_capabilities() {
        assert_eq!(ChargeApi.id(), ID);
        assert_eq!(ID.as_str(), "chargeapi");
        assert_eq!(
            ChargeApi.capabilities(),
            Capabilities {
                repeat_cancel_is_safe: true,
                repeat_settles_review: true,
                cancellation_preview: false,
                status_lookup: false
            }
        );
        assert_eq!(
            ChargeApi.credential_fields(),
            &[CredentialField { key: "secret_key", secret: true, required: true }]
        );
    }

    #[test]
    fn builds_the_documented_request() {
        // chargeapi-cancel.txt: curl -X POST .../v1/reservations/res_k5VX.../cancel
        //   -H "Authorization: Bearer ch_sk_test_..." --json '{}'
        let http = ChargeApi.build_cancel(&request("res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"), &account()).unwrap();
        assert_eq!(http.method, Method::POST);
        assert_eq!(http.path, "/v1/reservations/res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq/cancel");
        let [HeaderValueKind::Secret(auth)] = header(&http, "authorization")[..] else { panic!("{http:?}") };
        assert_eq!(auth.expose_secret(), format!("Bearer {SECRET}"));
        let [HeaderValueKind::Plain(content_type)] = header(&http, "content-type")[..] else { panic!("{http:?}") };
        assert_eq!(content_type, "application/json");
        let body: serde_json::Value = serde_json::from_slice(http.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, json!({}));
        assert_eq!(http.headers.len(), 2, "reason and language are not sent: {http:?}");
        assert!(!format!("{http:?}").contains(SECRET), "{http:?}");
    }

    #[test]
    fn credentials_that_cannot_be_sent() {
        let req = request("res_a");
        let err = ChargeApi.build_cancel(&req, &Account::new("eu")).unwrap_err();
        assert_eq!(err, BuildError::MissingCredential(MissingCredential { account: "eu".into(), key: "secret_key" }));
        let err = ChargeApi.build_cancel(&req, &Account::new("eu").with_secret(SECRET_KEY, "")).unwrap_err();
        assert!(matches!(err, BuildError::MissingCredential(_)), "{err:?}");
        for bad in ["sk\r\nX-Evil: 1", "sk test", "sk\u{0}", "sk_é"] {
            let err = ChargeApi.build_cancel(&req, &Account::new("eu").with_secret(SECRET_KEY, bad)).unwrap_err();
            assert_eq!(err, BuildError::UnsendableCredential { account: "eu".into(), key: "secret_key" }, "{bad:?}");
            assert!(!err.to_string().contains(bad));
        }
    }

    #[test]
    fn valid_references() {
        let max = format!("res_{}", "Z9".repeat(32));
        for raw in ["res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq", "res_a", "res_0", max.as_str()] {
            assert_eq!(ChargeApi.parse_reference(raw).map(|r| r.as_str().to_owned()), Ok(raw.to_owned()));
        }
    }

    #[test]
    fn hostile_references_are_rejected() {
        let too_long = format!("res_{}", "a".repeat(65));
        for raw in [
            "",
            "res_",
            "res",
            "RES_abc",
            "xres_abc",
            "abc",
            "res_a/b",
            "res_a/../b",
            "res_..",
            "res_a%2Fb",
            "res_a%2e%2e",
            "res_a?x=1",
            "res_a#frag",
            "res_a b",
            " res_a",
            "res_a ",
            "res_a\tb",
            "res_a\nb",
            "res_a\r\n",
            "res_a\u{0}",
            "res_a\u{7f}",
            "res_é",
            "rés_a",
            "res_ａ",
            "res_a_b",
            "res_a-b",
            "res_a.b",
            too_long.as_str(),
        ] {
            let err = ChargeApi.parse_reference(raw).unwrap_err();
            assert_eq!(err.expected, EXPECTED, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn classify_never_panics(status in 100u16..=599, body in answers(), truncated: bool, after_ambiguous: bool) {
            classify_anything(&ChargeApi, status, body, truncated, after_ambiguous)?;
        }

        #[test]
        fn references_are_rejected_or_land_verbatim_in_the_path(
            raw in prop_oneof![any::<String>(), "res_[A-Za-z0-9_/?#%. \t\n-]{0,70}", "(res_)?[a-zA-Z0-9]{0,70}"],
        ) {
            if let Ok(reference) = ChargeApi.parse_reference(&raw) {
                prop_assert_eq!(reference.as_str(), raw.as_str());
                let request = CancelRequest { reference, reason: None, language: None };
                let http = ChargeApi.build_cancel(&request, &account()).unwrap();
                prop_assert_eq!(&http.path, &format!("/v1/reservations/{raw}/cancel"));
                prop_assert!(!http.path.contains(['?', '#', '%']) && !http.path.contains(".."));
                prop_assert!(!http.path.chars().any(char::is_whitespace));
            }
        }
    }

    /// Bodies shaped like ChargeAPI's answers: its keys and the values its classifier tells apart.
    fn answers() -> impl Strategy<Value = Vec<u8>> {
        answer_body(
            &["status", "updated", "error", "code", "message", "type"],
            &["cancelled", "reservation_already_cancelled", "status is completed", "2026-04-01T01:38:06.924Z"],
            &[200, 400, 404],
        )
    }
}
