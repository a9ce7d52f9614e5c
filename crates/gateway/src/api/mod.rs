//! The public JSON shapes of `/v1`, by job: what callers send, read strictly (`cancel_body.rs`,
//! `batch_body.rs`, `resolve_body.rs`, over the one-pass reader of `strict.rs`), and what they get
//! back (`views.rs`). Every bound a caller's field has is here.

mod batch_body;
mod cancel_body;
mod resolve_body;
mod strict;
mod views;

pub use batch_body::*;
pub use cancel_body::*;
pub use resolve_body::*;
use strict::*;
use time::OffsetDateTime;
pub use views::*;

pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_METADATA_ENTRIES: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
pub const MAX_ACCOUNT_CHARS: usize = 64;
pub const MAX_LANGUAGE_CHARS: usize = 16;
pub const MAX_PROVIDER_CHARS: usize = 64;

/// RFC 3339 in UTC with exactly three fractional digits, as the providers' own examples are:
/// one fixed width, so timestamps sort as strings.
/// Written digit by digit: `time`'s formatter walks its format description on every call, ~2,500
/// instructions, 5 % of a replay's (the ledger's `time_text` does the same for its own width; the
/// ledger may not depend on the crates the gateway's code lives in). [`RFC3339_FORMAT`] writes the
/// same text, and still writes years the fixed width cannot hold.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let Ok(year @ 0..=9999) = u32::try_from(t.year()) else {
        return t.format(RFC3339_FORMAT).unwrap_or_default();
    };
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (at, width, n) in [
        (0, 4, year),
        (5, 2, u32::from(u8::from(t.month()))),
        (8, 2, u32::from(t.day())),
        (11, 2, u32::from(t.hour())),
        (14, 2, u32::from(t.minute())),
        (17, 2, u32::from(t.second())),
        (20, 3, u32::from(t.millisecond())),
    ] {
        let mut n = n;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

const RFC3339_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[track_caller]
    fn param_of(body: &str) -> String {
        CancelBody::parse(body.as_bytes()).unwrap_err().param.clone().unwrap_or_default()
    }

    #[track_caller]
    fn resolve_param(body: &str) -> String {
        ResolveBody::parse(body.as_bytes()).unwrap_err().param.clone().unwrap_or_default()
    }

    #[test]
    fn a_resolution_body_is_parsed_strictly() {
        let ok = ResolveBody::parse(br#"{"note":"checked","status":"failed"}"#).unwrap();
        assert_eq!(ok, ResolveBody { status: ResolveStatus::Failed, note: "checked".into() });
        assert_eq!(resolve_param(r#"{"status":"cancelled"}"#), "note");
        assert_eq!(resolve_param(r#"{"note":"x"}"#), "status");
        assert_eq!(resolve_param(r#"{"status":"done","note":"x"}"#), "status");
        assert_eq!(resolve_param(r#"{"status":"failed","note":"x","by":"me"}"#), "by");
        assert_eq!(resolve_param(r#"{"status":"failed","note":"x","note":"y"}"#), "note");
        assert_eq!(resolve_param(r#"{"status":"failed","status":"cancelled","note":"y"}"#), "status");
        assert_eq!(resolve_param(r#"{"status":"failed","note":""}"#), "note");
        assert_eq!(resolve_param(r#"{"status":"failed","note":5}"#), "note");
        assert_eq!(resolve_param(r#"{"status":"failed","note":"a\u0000b"}"#), "note");
        let long = "é".repeat(1001);
        assert_eq!(resolve_param(&format!(r#"{{"status":"failed","note":"{long}"}}"#)), "note");
        assert!(
            ResolveBody::parse(format!(r#"{{"status":"failed","note":"{}"}}"#, "é".repeat(1000)).as_bytes()).is_ok()
        );
        assert_eq!(resolve_param("[]"), "body");
        assert_eq!(resolve_param(r#"{"status":"failed","note":"x"} x"#), "body");
        assert!(parse_empty_body(b"").is_ok() && parse_empty_body(b" {} ").is_ok());
        assert_eq!(parse_empty_body(br#"{"force":true}"#).unwrap_err().param.as_deref(), Some("force"));
        assert_eq!(parse_empty_body(b"[").unwrap_err().param.as_deref(), Some("body"));
    }

    #[test]
    fn a_batch_status_follows_from_its_items() {
        use Status::{Cancelled as C, Failed as F, NeedsReview as R, Processing as P};
        let of = |items: &[Status]| BatchStatus::of(items.to_vec());
        assert_eq!(of(&[C, C, C]), BatchStatus::Completed);
        assert_eq!(of(&[C, F, C]), BatchStatus::PartiallyFailed);
        assert_eq!(of(&[F, F]), BatchStatus::Failed);
        assert_eq!(of(&[C, R, F]), BatchStatus::NeedsReview);
        assert_eq!(of(&[R, P, C]), BatchStatus::Processing, "processing wins over review");
    }

    #[test]
    fn batch_items_are_parsed_by_the_single_cancels_rules() {
        let param = |body: &str| BatchBody::parse(body.as_bytes()).unwrap_err().param.clone().unwrap_or_default();
        let ok = r#"{"provider":"chargeapi","reference":"res_1"}"#;
        assert_eq!(param(&format!(r#"{{"items":[{ok},{{"provider":"chargeapi"}}]}}"#)), "items[1].reference");
        assert_eq!(param(&format!(r#"{{"items":[{ok},{ok}],"items":[{ok}]}}"#)), "items");
        assert_eq!(param(&format!(r#"{{"items":[{ok}],"metadata":{{"a":"1","a":"2"}}}}"#)), "metadata.a");
        assert_eq!(param(r#"{"items":{}}"#), "items");
        assert_eq!(param(r#"{"metadata":{}}"#), "items");
        assert_eq!(param(&format!(r#"{{"items":[{ok},"x"]}}"#)), "items[1]");
        let long = "x".repeat(501);
        let item = format!(r#"{{"provider":"chargeapi","reference":"r","reason":"{long}"}}"#);
        assert_eq!(param(&format!(r#"{{"items":[{ok},{item}]}}"#)), "items[1].reason");
        // The fingerprint is of the JSON value.
        let a = BatchBody::parse(format!(r#"{{"items":[{ok}],"metadata":{{"a":"1","b":"2"}}}}"#).as_bytes()).unwrap();
        let b = BatchBody::parse(format!(r#"{{ "metadata":{{"b":"2","a":"1"}}, "items":[{ok}]}}"#).as_bytes()).unwrap();
        let c = BatchBody::parse(format!(r#"{{"items":[{ok}],"metadata":null}}"#).as_bytes()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(param_of(r#"{"provider":"chargeapi"}"#), "reference");
        assert_eq!(param_of(r#"{"provider":"chargeapi","reference":"r","refrence":"x"}"#), "refrence");
        assert_eq!(param_of(r#"{"provider":"chargeapi","reference":"r","a`b":"x"}"#), "a`b");
        assert_eq!(param_of(r#"{"provider":"chargeapi","reference":5}"#), "reference");
        assert_eq!(param_of(r#"{"provider":"chargeapi","reference":"r","metadata":{"a":1}}"#), "metadata.a");
        assert_eq!(param_of(r#"[]"#), "body");
        assert_eq!(param_of(r#"{"#), "body");
        let long = "x".repeat(501);
        assert_eq!(param_of(&format!(r#"{{"provider":"chargeapi","reference":"r","reason":"{long}"}}"#)), "reason");
    }

    #[test]
    fn deep_nesting_is_a_400_not_a_stack_overflow() {
        // Nothing in a body nests deeper than `metadata`'s object of strings: the parser refuses
        // the first value of the wrong type without descending into it, whatever its depth.
        for depth in [129, 10_000, 60_000] {
            let array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(param_of(&array), "body");
            let in_metadata = format!(r#"{{"provider":"chargeapi","reference":"r","metadata":{{"a":{array}}}}}"#);
            assert_eq!(param_of(&in_metadata), "metadata.a");
            let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            assert_eq!(param_of(&objects), "a", "an unknown member, refused before its value is read");
            let in_reason = format!(r#"{{"provider":"chargeapi","reference":"r","reason":{array}}}"#);
            assert_eq!(param_of(&in_reason), "reason");
        }
        let shallow = format!(
            r#"{{"provider":"chargeapi","reference":"r","metadata":{{"a":{}1{}}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(param_of(&shallow), "metadata.a");
    }

    #[test]
    fn a_repeated_member_is_refused_at_any_depth() {
        for (body, param) in [
            (r#"{"provider":"chargeapi","provider":"frontpayment","reference":"r"}"#, "provider"),
            (r#"{"provider":"chargeapi","reference":"r","reference":"r"}"#, "reference"),
            // The same name however it is escaped: the decoded names are compared.
            (r#"{"provider":"chargeapi","provid\u0065r":"frontpayment","reference":"r"}"#, "provider"),
            // `null` then a value is still two members.
            (r#"{"provider":"chargeapi","reference":"r","account":null,"account":"eu"}"#, "account"),
            (r#"{"provider":"chargeapi","reference":"r","reason":"a","reason":"a"}"#, "reason"),
            (r#"{"provider":"chargeapi","reference":"r","language":"EN","language":"DE"}"#, "language"),
            (r#"{"provider":"chargeapi","reference":"r","metadata":{},"metadata":{}}"#, "metadata"),
            (
                r#"{"provider":"chargeapi","reference":"r","metadata":{"order_id":"1","order_id":"2"}}"#,
                "metadata.order_id",
            ),
            (r#"{"provider":"chargeapi","reference":"r","metadata":{"a":"1","b":"2","\u0061":"1"}}"#, "metadata.a"),
        ] {
            let error = CancelBody::parse(body.as_bytes()).unwrap_err();
            assert_eq!(
                (error.code, error.param.as_deref()),
                (cancelgate_core::ErrorCode::InvalidRequest, Some(param)),
                "{body}"
            );
            assert!(error.detail.contains("more than once"), "{body}: {}", error.detail);
        }
        // Distinct names are fine, and so are equal values under distinct names.
        let ok = r#"{"provider":"chargeapi","reference":"r","metadata":{"a":"1","A":"1","a ":"1"}}"#;
        assert_eq!(CancelBody::parse(ok.as_bytes()).unwrap().metadata.unwrap().len(), 3);
    }

    #[test]
    fn details_are_the_gateways_own_words() {
        for (body, detail) in [
            ("{", "The body is not valid JSON (line 1, column 1)."),
            ("[]", "The body must be a JSON object."),
            (r#"{"provider":"chargeapi"}"#, "`reference` is required."),
            (r#"{"provider":"chargeapi","reference":5}"#, "`reference` must be a string."),
            (r#"{"provider":"chargeapi","reference":"r","metadata":{"a":1}}"#, "`metadata.a` must be a string."),
            (
                r#"{"provider":"chargeapi","reference":"r","metadata":[]}"#,
                "`metadata` must be an object whose values are strings.",
            ),
        ] {
            assert_eq!(CancelBody::parse(body.as_bytes()).unwrap_err().detail, detail, "{body}");
        }
    }

    #[test]
    fn fingerprint_ignores_key_order_and_spacing() {
        let fp = |body: &str| CancelBody::parse(body.as_bytes()).unwrap().fingerprint();
        let a = fp(r#"{"provider":"chargeapi","reference":"r","metadata":{"y":"1","x":"s"}}"#);
        let b = fp(r#"{ "metadata" : { "x":"s", "y":"1" }, "reference" : "r",  "provider":"chargeapi" }"#);
        let c = fp(r#"{"provider":"chargeapi","reference":"r","metadata":{"y":"2","x":"s"}}"#);
        let d = fp(r#"{"provider":"chargeapi","reference":"r","metadata":null}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(d, fp(r#"{"provider":"chargeapi","reference":"r"}"#), "a JSON null is part of the value");
    }

    /// The fingerprint as earlier releases computed it, from a parsed JSON value (sorted keys at
    /// every level, no spacing): the new one must give the same bytes for every accepted body.
    fn value_fingerprint(body: &[u8]) -> String {
        use serde_json::Value;
        fn canonical(value: &Value, out: &mut Sha256) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<_> = map.keys().collect();
                    keys.sort();
                    out.update(b"{");
                    for (i, k) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.update(b",");
                        }
                        out.update(Value::String(k.clone()).to_string().as_bytes());
                        out.update(b":");
                        canonical(&map[k], out);
                    }
                    out.update(b"}");
                }
                scalar => out.update(scalar.to_string().as_bytes()),
            }
        }
        let value: Value = serde_json::from_slice(body).unwrap();
        let mut hasher = Sha256::new();
        canonical(&value, &mut hasher);
        hex::encode(hasher.finalize())
    }

    /// Every field a request may name, and what the `param` of its errors may be.
    fn documented_param(param: &str) -> bool {
        matches!(param, "body" | "provider" | "reference" | "account" | "reason" | "language" | "metadata")
            || param.starts_with("metadata.")
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(".{0,12}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A string that is sometimes plausible, sometimes hostile: any Unicode, control characters,
    /// and lengths around every limit.
    fn field_string() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,80}",
            "[A-Za-z_-]{0,20}",
            "[\\x00-\\x20\\x7f\"\\\\/]{0,10}",
            (0usize..3, 0usize..8).prop_map(|(limit, extra)| {
                let n = [MAX_ACCOUNT_CHARS, MAX_REASON_CHARS, MAX_METADATA_KEY_CHARS][limit] + extra - 4;
                "é".repeat(n)
            }),
        ]
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = CancelBody::parse(&bytes) {
                prop_assert_eq!(e.code, cancelgate_core::ErrorCode::InvalidRequest);
                prop_assert!(e.param.as_deref().is_some_and(|p| !p.is_empty()), "{:?}", e);
            }
        }

        #[test]
        fn arbitrary_json_gets_a_body_or_a_400_naming_a_field(
            fields in proptest::collection::btree_map(
                prop_oneof![
                    Just("provider".to_owned()), Just("reference".to_owned()), Just("account".to_owned()),
                    Just("reason".to_owned()), Just("language".to_owned()), Just("metadata".to_owned()),
                    ".{0,10}",
                ],
                json_value(),
                0..8,
            )
        ) {
            let known = ["provider", "reference", "account", "reason", "language", "metadata"];
            let body = serde_json::Value::Object(fields.clone().into_iter().collect()).to_string();
            match CancelBody::parse(body.as_bytes()) {
                Ok(parsed) => {
                    prop_assert!(fields.keys().all(|k| known.contains(&k.as_str())));
                    prop_assert!(!parsed.provider.is_empty());
                }
                Err(e) => {
                    let param = e.param.clone().unwrap_or_default();
                    let unknown_field = fields.contains_key(&param) && !known.contains(&param.as_str());
                    prop_assert!(documented_param(&param) || unknown_field, "{} -> {:?}", body, e);
                }
            }
        }

        #[test]
        fn no_detail_carries_serdes_words(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = CancelBody::parse(&bytes) {
                for serde_words in ["invalid type", "expected", "unknown field", "missing field", "duplicate field", "at line"] {
                    prop_assert!(!e.detail.contains(serde_words), "{:?}", e);
                }
            }
        }

        /// Any body the parser accepts, written with its members in any order and any spacing,
        /// `null`s included: one pass, the same fingerprint as the value-based one, and a copy
        /// of any one member (top level or in `metadata`) makes it a 400 naming that member.
        #[test]
        fn accepted_bodies_keep_their_fingerprint_and_refuse_any_repeated_member(
            provider in field_string(), reference in field_string(),
            optional in proptest::collection::vec(proptest::option::of(proptest::option::of(field_string())), 3),
            metadata in proptest::option::of(proptest::option::of(
                proptest::collection::btree_map("[a-z\\\\\"\x00-\x1f]{1,4}|.{1,6}", field_string(), 0..5))),
            order in any::<proptest::sample::Index>(),
            spacing in "[ \t\r\n]{0,2}",
            duplicate in any::<proptest::sample::Index>(),
        ) {
            let json = |v: &str| serde_json::Value::from(v).to_string();
            let mut members = vec![("provider".to_owned(), json(&provider)), ("reference".to_owned(), json(&reference))];
            for (name, value) in ["account", "reason", "language"].into_iter().zip(&optional) {
                match value {
                    None => {}
                    Some(None) => members.push((name.to_owned(), "null".to_owned())),
                    Some(Some(v)) => members.push((name.to_owned(), json(v))),
                }
            }
            let entries: Vec<(String, String)> =
                metadata.clone().flatten().unwrap_or_default().iter().map(|(k, v)| (json(k), json(v))).collect();
            let object = |entries: &[(String, String)]| {
                let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}{spacing}:{spacing}{v}")).collect();
                format!("{{{spacing}{}{spacing}}}", inner.join(&format!(",{spacing}")))
            };
            match &metadata {
                None => {}
                Some(None) => members.push(("metadata".to_owned(), "null".to_owned())),
                Some(Some(_)) => members.push(("metadata".to_owned(), object(&entries))),
            }
            let rotate = order.index(members.len());
            members.rotate_left(rotate);
            let top: Vec<(String, String)> = members.iter().map(|(k, v)| (json(k), v.clone())).collect();
            let body = object(&top);
            let parsed = CancelBody::read(body.as_bytes());
            prop_assert!(parsed.is_ok(), "{} -> {:?}", body, parsed);
            if let Ok(parsed) = parsed {
                prop_assert_eq!(parsed.fingerprint(), value_fingerprint(body.as_bytes()), "{}", body);
            }

            // Repeat one member: a top-level one, or an entry of `metadata` when there is one.
            let pick = duplicate.index(top.len() + entries.len());
            let (repeated_body, param) = if pick < top.len() {
                let mut twice = top.clone();
                twice.push(top[pick].clone());
                (object(&twice), members[pick].0.clone())
            } else {
                let mut twice = entries.clone();
                let (k, v) = &entries[pick - top.len()];
                twice.insert(0, (k.clone(), v.clone()));
                let with: Vec<(String, String)> = top.iter().map(|(name, value)| {
                    if name == "\"metadata\"" { (name.clone(), object(&twice)) } else { (name.clone(), value.clone()) }
                }).collect();
                let key: String = serde_json::from_str(k).unwrap();
                (object(&with), format!("metadata.{key}"))
            };
            let error = CancelBody::read(repeated_body.as_bytes()).unwrap_err();
            prop_assert_eq!(error.param.as_deref(), Some(param.as_str()), "{}", repeated_body);
            prop_assert!(CancelBody::parse(repeated_body.as_bytes()).is_err());
        }

        #[test]
        fn arbitrary_strings_in_each_field_fit_the_limits_or_are_named(
            provider in field_string(), reference in field_string(), account in proptest::option::of(field_string()),
            reason in proptest::option::of(field_string()), language in proptest::option::of(field_string()),
            metadata in proptest::option::of(proptest::collection::btree_map(field_string(), field_string(), 0..24)),
        ) {
            let mut body = serde_json::json!({"provider": provider, "reference": reference});
            for (name, value) in [("account", &account), ("reason", &reason), ("language", &language)] {
                if let Some(v) = value {
                    body[name] = serde_json::Value::from(v.as_str());
                }
            }
            if let Some(m) = &metadata {
                body["metadata"] = serde_json::json!(m);
            }
            match CancelBody::parse(body.to_string().as_bytes()) {
                Ok(parsed) => {
                    let chars = |s: &str| s.chars().count();
                    prop_assert!(chars(&parsed.provider) <= MAX_PROVIDER_CHARS);
                    prop_assert!(parsed.account.as_deref().is_none_or(|a| (1..=MAX_ACCOUNT_CHARS).contains(&chars(a))));
                    prop_assert!(parsed.reason.as_deref().is_none_or(|r| chars(r) <= MAX_REASON_CHARS));
                    prop_assert!(parsed.language.as_deref().is_none_or(|l| l.len() <= MAX_LANGUAGE_CHARS
                        && l.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_')));
                    let m = parsed.metadata.unwrap_or_default();
                    prop_assert!(m.len() <= MAX_METADATA_ENTRIES);
                    prop_assert!(m.iter().all(|(k, v)| chars(k) <= MAX_METADATA_KEY_CHARS && chars(v) <= MAX_METADATA_VALUE_CHARS));
                }
                Err(e) => {
                    let param = e.param.clone().unwrap_or_default();
                    prop_assert!(documented_param(&param) && param != "body", "{:?}", e);
                }
            }
        }
    }

    #[test]
    fn timestamps_are_utc_millis() {
        let t = time::macros::datetime!(2026-04-01 03:38:06.924_567 +02:00);
        assert_eq!(rfc3339(t), "2026-04-01T01:38:06.924Z");
        assert_eq!(rfc3339(time::macros::datetime!(2026-04-01 01:38:06 UTC)), "2026-04-01T01:38:06.000Z");
        // What the format description writes, for ~20,000 instants from 1970 to 9999.
        let step = time::Duration::new(15_778_463, 123_457_891);
        let mut next = Some(time::macros::datetime!(1970-01-01 00:00:00 UTC));
        while let Some(t) = next {
            assert_eq!(rfc3339(t), t.format(RFC3339_FORMAT).unwrap());
            next = t.checked_add(step);
        }
    }
}
