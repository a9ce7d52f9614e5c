//! The accommodation partner API (hotel bookings): builds the cancel request and classifies its
//! answer. Pure: no I/O, see `cancelgate_core::CancelProvider`.

mod map;
mod wire;

use cancelgate_core::{
    Account, AttemptContext, BuildError, CancelProvider, CancelRequest, Capabilities, CredentialField, HttpRequest,
    HttpResponse, InvalidReference, Outcome, ProviderId, Reference, check_reference,
};
use http::{HeaderName, Method};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

pub const ID: ProviderId = ProviderId::new("accommodation");

const API_KEY: &str = "api_key";
const CONNECTION_CODE: &str = "connection_code";
const API_KEY_HEADER: HeaderName = HeaderName::from_static("api-key");
const MAX_REFERENCE_LEN: usize = 64;
const EXPECTED: &str = "1 to 64 ASCII letters, digits, `_` or `-`";

#[derive(Debug, Default, Clone)]
pub struct Accommodation;

impl CancelProvider for Accommodation {
    fn id(&self) -> ProviderId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        // A repeat is answered "Current status: cancelled", which the classifier reads with the context.
        Capabilities {
            repeat_cancel_is_safe: true,
            repeat_settles_review: true,
            cancellation_preview: false,
            status_lookup: false,
        }
    }

    fn credential_fields(&self) -> &'static [CredentialField] {
        &[
            CredentialField { key: API_KEY, secret: true, required: true },
            CredentialField { key: CONNECTION_CODE, secret: true, required: true },
        ]
    }

    fn reference_pattern(&self) -> &'static str {
        "^[A-Za-z0-9_-]{1,64}$"
    }

    fn parse_reference(&self, raw: &str) -> Result<Reference, InvalidReference> {
        let well_formed = (1..=MAX_REFERENCE_LEN).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(InvalidReference { expected: EXPECTED });
        }
        check_reference(raw.to_owned(), EXPECTED)
    }

    fn build_cancel(&self, request: &CancelRequest, account: &Account) -> Result<HttpRequest, BuildError> {
        let api_key = account.header_secret(API_KEY)?;
        let code = account.nonempty_secret(CONNECTION_CODE)?.expose_secret();
        let mut input = Map::new();
        input.insert("reference".into(), json!({ "bookingReference": request.reference.as_str() }));
        // Optional upstream: an absent language lets the partner use its own default.
        if let Some(language) = request.language.as_deref().filter(|l| !l.trim().is_empty()) {
            input.insert("language".into(), json!(language));
        }
        let body = json!({ "input": input, "settings": { "access": { "code": connection_code(code) } } });
        Ok(HttpRequest::new(Method::POST, "/api/cancel").secret_header(API_KEY_HEADER, api_key.clone()).json(&body))
    }

    fn classify_cancel(&self, response: &HttpResponse, context: AttemptContext) -> Outcome {
        map::classify(response, context)
    }
}

/// The doc's example sends the code as a number (`10001`), so a code that is one goes as one.
/// Leading zeros would be lost in a number, so such a code stays a string.
fn connection_code(code: &str) -> Value {
    let canonical_digits = code.bytes().all(|b| b.is_ascii_digit()) && (code == "0" || !code.starts_with('0'));
    match code.parse::<u64>() {
        Ok(number) if canonical_digits => json!(number),
        _ => json!(code),
    }
}

#[cfg(test)]
mod tests {
    use cancelgate_core::testing::{answer_body, classify_anything};
    use cancelgate_core::{HeaderValueKind, MissingCredential};
    use proptest::prelude::*;

    use super::*;

    const KEY: &str = "ak_live_9f8e7d6c5b4aTopSecret";

    fn account(code: &str) -> Account {
        Account::new("default").with_secret(API_KEY, KEY).with_secret(CONNECTION_CODE, code)
    }

    fn request(reference: &str, language: Option<&str>) -> CancelRequest {
        CancelRequest {
            reference: Accommodation.parse_reference(reference).unwrap(),
            reason: Some("Guest changed plans".into()),
            language: language.map(str::to_owned),
        }
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Vec<&'a HeaderValueKind> {
        request.headers.iter().filter(|h| h.name.as_str() == name).map(|h| &h.value).collect()
    }

    fn body(request: &HttpRequest) -> Value {
        serde_json::from_slice(request.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn identity_and_capabilities() {
        assert_eq!(Accommodation.id(), ID);
        assert_eq!(ID.as_str(), "accommodation");
        assert_eq!(
            Accommodation.capabilities(),
            Capabilities {
                repeat_cancel_is_safe: true,
                repeat_settles_review: true,
                cancellation_preview: false,
                status_lookup: false
            }
        );
        assert_eq!(
            Accommodation.credential_fields(),
            &[
                CredentialField { key: "api_key", secret: true, required: true },
                CredentialField { key: "connection_code", secret: true, required: true },
            ]
        );
    }

    #[test]
    fn builds_the_documented_example_request() {
        let http = Accommodation.build_cancel(&request("BK_EXAMPLE_001", Some("EN")), &account("10001")).unwrap();
        assert_eq!(http.method, Method::POST);
        assert_eq!(http.path, "/api/cancel");
        let [HeaderValueKind::Secret(key)] = header(&http, "api-key")[..] else { panic!("{http:?}") };
        assert_eq!(key.expose_secret(), KEY);
        let [HeaderValueKind::Plain(content_type)] = header(&http, "content-type")[..] else { panic!("{http:?}") };
        assert_eq!(content_type, "application/json");
        assert_eq!(http.headers.len(), 2, "{http:?}");
        let expected: Value =
            serde_json::from_str(include_str!("../tests/fixtures/accommodation-cancel__request-example.json")).unwrap();
        assert_eq!(body(&http), expected);
        assert!(!format!("{http:?}").contains(KEY), "{http:?}");
    }

    #[test]
    fn language_is_omitted_when_not_given() {
        for language in [None, Some(""), Some("  ")] {
            let http = Accommodation.build_cancel(&request("BK_1", language), &account("10001")).unwrap();
            assert_eq!(
                body(&http),
                json!({"input": {"reference": {"bookingReference": "BK_1"}}, "settings": {"access": {"code": 10001}}}),
                "{language:?}"
            );
        }
    }

    #[test]
    fn connection_code_is_a_number_only_when_that_loses_nothing() {
        for (code, sent) in [
            ("10001", json!(10001)),
            ("0", json!(0)),
            ("18446744073709551615", json!(u64::MAX)),
            ("18446744073709551616", json!("18446744073709551616")),
            ("010001", json!("010001")),
            ("+10001", json!("+10001")),
            ("-1", json!("-1")),
            (" 10001", json!(" 10001")),
            ("1e3", json!("1e3")),
            ("CONN-7", json!("CONN-7")),
            ("１２", json!("１２")),
        ] {
            let http = Accommodation.build_cancel(&request("BK_1", None), &account(code)).unwrap();
            assert_eq!(body(&http)["settings"]["access"]["code"], sent, "{code:?}");
        }
    }

    #[test]
    fn credentials_that_cannot_be_sent() {
        let req = request("BK_1", None);
        let only_code = Account::new("eu").with_secret(CONNECTION_CODE, "10001");
        let err = Accommodation.build_cancel(&req, &only_code).unwrap_err();
        assert_eq!(err, BuildError::MissingCredential(MissingCredential { account: "eu".into(), key: "api_key" }));
        let only_key = Account::new("eu").with_secret(API_KEY, KEY);
        let err = Accommodation.build_cancel(&req, &only_key).unwrap_err();
        assert_eq!(
            err,
            BuildError::MissingCredential(MissingCredential { account: "eu".into(), key: "connection_code" })
        );
        let err = Accommodation.build_cancel(&req, &only_key.clone().with_secret(CONNECTION_CODE, "")).unwrap_err();
        assert!(matches!(err, BuildError::MissingCredential(_)), "{err:?}");
        let err = Accommodation.build_cancel(&req, &account("1").with_secret(API_KEY, "")).unwrap_err();
        assert!(matches!(err, BuildError::MissingCredential(_)), "{err:?}");
        for bad in ["ak\r\nX-Evil: 1", "ak key", "ak\u{0}", "ak_ü"] {
            let err = Accommodation.build_cancel(&req, &account("1").with_secret(API_KEY, bad)).unwrap_err();
            assert_eq!(err, BuildError::UnsendableCredential { account: "default".into(), key: "api_key" }, "{bad:?}");
        }
        // The connection code travels in the JSON body, where any text is fine.
        let http = Accommodation.build_cancel(&req, &account("code with \"quotes\"\n")).unwrap();
        assert_eq!(body(&http)["settings"]["access"]["code"], json!("code with \"quotes\"\n"));
    }

    #[test]
    fn valid_references() {
        let max = "A".repeat(64);
        for raw in ["BK_EXAMPLE_001", "a", "0", "-", "_", "bk-2026_04-x", max.as_str()] {
            assert_eq!(Accommodation.parse_reference(raw).map(|r| r.as_str().to_owned()), Ok(raw.to_owned()));
        }
    }

    #[test]
    fn hostile_references_are_rejected() {
        let too_long = "A".repeat(65);
        for raw in [
            "",
            "BK/1",
            "..",
            "BK..1",
            "../etc",
            "BK%2F1",
            "BK?x=1",
            "BK#1",
            "BK 1",
            " BK1",
            "BK1 ",
            "BK\t1",
            "BK\n1",
            "BK1\r\n",
            "BK\u{0}",
            "BK\u{1b}[0m",
            "BK_ÉTÉ",
            "BK＿1",
            "BK.1",
            "BK+1",
            "BK\\1",
            too_long.as_str(),
        ] {
            let err = Accommodation.parse_reference(raw).unwrap_err();
            assert_eq!(err.expected, EXPECTED, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn classify_never_panics(status in 100u16..=599, body in answers(), truncated: bool, after_ambiguous: bool) {
            let outcome = classify_anything(&Accommodation, status, body, truncated, after_ambiguous)?;
            if let Outcome::Refused(r) = &outcome {
                prop_assert_eq!(r.upstream_code.as_ref(), None);
            }
        }

        #[test]
        fn references_are_rejected_or_sent_verbatim(
            raw in prop_oneof![any::<String>(), "[A-Za-z0-9_/?#%. \t\n-]{0,70}"],
        ) {
            if let Ok(reference) = Accommodation.parse_reference(&raw) {
                prop_assert_eq!(reference.as_str(), raw.as_str());
                let request = CancelRequest { reference, reason: None, language: None };
                let http = Accommodation.build_cancel(&request, &account("10001")).unwrap();
                // The reference is never in the URL here, only in the body, verbatim.
                prop_assert_eq!(&http.path, "/api/cancel");
                prop_assert_eq!(&body(&http)["input"]["reference"]["bookingReference"], &json!(raw));
                prop_assert!(!raw.contains(['?', '#', '%', '/']) && !raw.contains(".."));
                prop_assert!(!raw.chars().any(char::is_whitespace));
            }
        }
    }

    /// Bodies shaped like the partner's answers: its keys and the values its classifier tells apart.
    fn answers() -> impl Strategy<Value = Vec<u8>> {
        answer_body(
            &["data", "status", "cancelledAt", "message"],
            &[
                "cancelled",
                "Booking cannot be cancelled. Current status: cancelled",
                "Current status:",
                "2026-02-11T18:46:12.201Z",
            ],
            &[200, 400],
        )
    }
}
