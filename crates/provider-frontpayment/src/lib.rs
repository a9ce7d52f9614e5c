//! Front Payment (payment reservations, connect API): builds the cancel request and classifies
//! its answer. Pure: no I/O, see `cancelgate_core::CancelProvider`.

mod map;
mod wire;

use cancelgate_core::{
    Account, AttemptContext, BuildError, CancelProvider, CancelRequest, Capabilities, CredentialField, HttpRequest,
    HttpResponse, InvalidReference, Outcome, ProviderId, Reference, check_reference,
};
use http::Method;
use serde_json::json;

pub const ID: ProviderId = ProviderId::new("frontpayment");

const TOKEN: &str = "token";
const DEFAULT_NOTE: &str = "default_note";
/// The note is required upstream; this is sent when neither the caller nor the account has one.
const FALLBACK_NOTE: &str = "Cancelled via cancelgate";
const EXPECTED: &str = "an RFC 4122 UUID (8-4-4-4-12 hexadecimal digits)";

#[derive(Debug, Default, Clone)]
pub struct FrontPayment;

impl CancelProvider for FrontPayment {
    fn id(&self) -> ProviderId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        // A repeat is answered `reservationStatusAlreadyCompleted`, which after an ambiguous
        // attempt the classifier turns into needs_review: never a second cancellation.
        Capabilities {
            repeat_cancel_is_safe: true,
            repeat_settles_review: false,
            cancellation_preview: false,
            status_lookup: false,
        }
    }

    fn credential_fields(&self) -> &'static [CredentialField] {
        &[
            CredentialField { key: TOKEN, secret: true, required: true },
            CredentialField { key: DEFAULT_NOTE, secret: false, required: false },
        ]
    }

    fn reference_pattern(&self) -> &'static str {
        "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    }

    fn parse_reference(&self, raw: &str) -> Result<Reference, InvalidReference> {
        if !is_uuid(raw) {
            return Err(InvalidReference { expected: EXPECTED });
        }
        // One spelling per reservation, so the gateway sees "either case" as the same reference.
        check_reference(raw.to_ascii_lowercase(), EXPECTED)
    }

    fn build_cancel(&self, request: &CancelRequest, account: &Account) -> Result<HttpRequest, BuildError> {
        let token = account.header_secret(TOKEN)?;
        Ok(HttpRequest::new(Method::GET, format!("/api/v1/connect/reservations/cancel/{}", request.reference))
            .bearer(token)
            .json(&json!({ "note": note(request, account) })))
    }

    fn classify_cancel(&self, response: &HttpResponse, context: AttemptContext) -> Outcome {
        map::classify(response, context)
    }
}

/// 8-4-4-4-12 hexadecimal digits. Version and variant bits are not checked: the provider makes
/// its ids, and a stricter rule than its own would only refuse real reservations.
fn is_uuid(raw: &str) -> bool {
    raw.len() == 36
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// The caller's reason, else the account's default note, else ours. A blank one would fail the
/// provider's validation (417), so it counts as none.
fn note<'a>(request: &'a CancelRequest, account: &'a Account) -> &'a str {
    let given = |note: &&str| !note.trim().is_empty();
    request
        .reason
        .as_deref()
        .filter(given)
        .or_else(|| account.setting(DEFAULT_NOTE).filter(given))
        .unwrap_or(FALLBACK_NOTE)
}

#[cfg(test)]
mod tests {
    use cancelgate_core::testing::{answer_body, classify_anything};
    use cancelgate_core::{HeaderValueKind, MissingCredential};
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

    use super::*;

    const SECRET: &str = "fp_live_eyJhbGciOiJIUzI1NiJ9TopSecret";
    const UUID: &str = "5f0c6a8e-3b1d-4c2e-9a7f-1e2d3c4b5a69";

    fn account() -> Account {
        Account::new("default").with_secret(TOKEN, SECRET)
    }

    fn request(reference: &str, reason: Option<&str>) -> CancelRequest {
        CancelRequest {
            reference: FrontPayment.parse_reference(reference).unwrap(),
            reason: reason.map(str::to_owned),
            language: Some("NO".into()),
        }
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Vec<&'a HeaderValueKind> {
        request.headers.iter().filter(|h| h.name.as_str() == name).map(|h| &h.value).collect()
    }

    fn body(request: &HttpRequest) -> serde_json::Value {
        serde_json::from_slice(request.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn identity_and_capabilities() {
        assert_eq!(FrontPayment.id(), ID);
        assert_eq!(ID.as_str(), "frontpayment");
        assert_eq!(
            FrontPayment.capabilities(),
            Capabilities {
                repeat_cancel_is_safe: true,
                repeat_settles_review: false,
                cancellation_preview: false,
                status_lookup: false
            }
        );
        assert_eq!(
            FrontPayment.credential_fields(),
            &[
                CredentialField { key: "token", secret: true, required: true },
                CredentialField { key: "default_note", secret: false, required: false },
            ]
        );
    }

    #[test]
    fn builds_the_documented_request() {
        // frontpayment-cancel.md: GET .../api/v1/connect/reservations/cancel/{{RESERVATION_UUID}},
        // Authorization: Bearer, JSON body {"note": "..."}.
        let http = FrontPayment.build_cancel(&request(UUID, Some("Customer changed plans")), &account()).unwrap();
        assert_eq!(http.method, Method::GET);
        assert_eq!(http.path, format!("/api/v1/connect/reservations/cancel/{UUID}"));
        let [HeaderValueKind::Secret(auth)] = header(&http, "authorization")[..] else { panic!("{http:?}") };
        assert_eq!(auth.expose_secret(), format!("Bearer {SECRET}"));
        let [HeaderValueKind::Plain(content_type)] = header(&http, "content-type")[..] else { panic!("{http:?}") };
        assert_eq!(content_type, "application/json");
        assert_eq!(body(&http), json!({"note": "Customer changed plans"}));
        assert_eq!(http.headers.len(), 2, "{http:?}");
        assert!(!format!("{http:?}").contains(SECRET), "{http:?}");
    }

    #[test]
    fn upper_case_uuid_is_sent_in_lower_case() {
        let http = FrontPayment.build_cancel(&request(&UUID.to_ascii_uppercase(), None), &account()).unwrap();
        assert_eq!(http.path, format!("/api/v1/connect/reservations/cancel/{UUID}"));
    }

    #[test]
    fn note_falls_back_to_the_account_then_to_ours() {
        let with_default = account().with_setting(DEFAULT_NOTE, "Cancelled by the booking desk");
        let cases = [
            (Some("Customer changed plans"), &with_default, "Customer changed plans"),
            (None, &with_default, "Cancelled by the booking desk"),
            (Some("   "), &with_default, "Cancelled by the booking desk"),
            (Some(""), &with_default, "Cancelled by the booking desk"),
            (None, &account(), "Cancelled via cancelgate"),
            (None, &account().with_setting(DEFAULT_NOTE, " "), "Cancelled via cancelgate"),
            (Some("Ny dato: \"17.05\" ✓\n"), &account(), "Ny dato: \"17.05\" ✓\n"),
        ];
        for (reason, account, expected) in cases {
            let http = FrontPayment.build_cancel(&request(UUID, reason), account).unwrap();
            assert_eq!(body(&http), json!({ "note": expected }), "{reason:?}");
        }
    }

    #[test]
    fn credentials_that_cannot_be_sent() {
        let req = request(UUID, None);
        let err = FrontPayment.build_cancel(&req, &Account::new("eu").with_setting(DEFAULT_NOTE, "n")).unwrap_err();
        assert_eq!(err, BuildError::MissingCredential(MissingCredential { account: "eu".into(), key: "token" }));
        let err = FrontPayment.build_cancel(&req, &Account::new("eu").with_secret(TOKEN, "")).unwrap_err();
        assert!(matches!(err, BuildError::MissingCredential(_)), "{err:?}");
        for bad in ["tok\r\nX-Evil: 1", "tok en", "tok\u{7f}", "tøk"] {
            let err = FrontPayment.build_cancel(&req, &Account::new("eu").with_secret(TOKEN, bad)).unwrap_err();
            assert_eq!(err, BuildError::UnsendableCredential { account: "eu".into(), key: "token" }, "{bad:?}");
        }
    }

    #[test]
    fn valid_references() {
        for (raw, stored) in [
            (UUID, UUID),
            ("5F0C6A8E-3B1D-4C2E-9A7F-1E2D3C4B5A69", UUID),
            ("5f0C6a8E-3b1D-4c2E-9a7F-1e2D3c4B5a69", UUID),
            ("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        ] {
            assert_eq!(
                FrontPayment.parse_reference(raw).map(|r| r.as_str().to_owned()),
                Ok(stored.to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn hostile_references_are_rejected() {
        let bad = [
            String::new(),
            format!("{{{UUID}}}"),
            UUID.replace('-', ""),
            format!("urn:uuid:{UUID}"),
            format!("{UUID}0"),
            format!("0{UUID}"),
            UUID[1..].to_owned(),
            UUID.replacen('5', "g", 1),
            UUID.replacen('-', "_", 1),
            "5f0c6a8e3-b1d-4c2e-9a7f-1e2d3c4b5a69".to_owned(),
            format!("{}/..", &UUID[..33]),
            format!("../{}", &UUID[3..]),
            format!("{}%2F", &UUID[..33]),
            format!("{}?x", &UUID[..34]),
            format!("{}#x", &UUID[..34]),
            format!("{} ", &UUID[..35]),
            format!(" {}", &UUID[1..]),
            format!("{}\t", &UUID[..35]),
            format!("{}\n", &UUID[..35]),
            format!("{}\u{0}", &UUID[..35]),
            format!("{}é", &UUID[..34]),
            UUID.replacen('5', "５", 1),
            format!("{UUID}\n"),
            "------------------------------------".to_owned(),
        ];
        for raw in bad {
            let err = FrontPayment.parse_reference(&raw).unwrap_err();
            assert_eq!(err.expected, EXPECTED, "{raw:?}");
        }
    }

    proptest! {
        #[test]
        fn classify_never_panics(status in 100u16..=599, body in answers(), truncated: bool, after_ambiguous: bool) {
            classify_anything(&FrontPayment, status, body, truncated, after_ambiguous)?;
        }

        #[test]
        fn references_are_rejected_or_land_lower_case_in_the_path(
            raw in prop_oneof![
                any::<String>(),
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "[0-9a-fA-F/?#%. \t-]{30,40}",
            ],
        ) {
            if let Ok(reference) = FrontPayment.parse_reference(&raw) {
                let lower = raw.to_ascii_lowercase();
                prop_assert_eq!(reference.as_str(), lower.as_str());
                let request = CancelRequest { reference, reason: None, language: None };
                let http = FrontPayment.build_cancel(&request, &account()).unwrap();
                prop_assert_eq!(&http.path, &format!("/api/v1/connect/reservations/cancel/{lower}"));
                prop_assert!(!http.path.contains(['?', '#', '%']) && !http.path.contains(".."));
                prop_assert!(!http.path.chars().any(char::is_whitespace));
            }
        }
    }

    /// Bodies shaped like Front Payment's envelope: its keys and the values its classifier tells apart.
    fn answers() -> impl Strategy<Value = Vec<u8>> {
        answer_body(
            &["status_code", "status_message", "message", "is_error", "errors", "data"],
            &["reservationStatusAlreadyCompleted", "prerequisiteFailedToCancelReservation", "orderNotFound"],
            &[202, 400, 404, 510],
        )
    }
}
