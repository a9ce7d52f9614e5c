//! The public JSON shapes of `/v1`: what callers send and what they get back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;

pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_METADATA_ENTRIES: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
pub const MAX_ACCOUNT_CHARS: usize = 64;
pub const MAX_LANGUAGE_CHARS: usize = 16;
pub const MAX_PROVIDER_CHARS: usize = 64;

/// `POST /v1/cancellations` body. Unknown fields are refused so typos are not ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "chargeapi", "reference": "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq",
    "account": "default", "reason": "Customer changed plans", "metadata": {"order_id": "A-1001"}}))]
pub struct CancelBody {
    /// The provider's id.
    #[schema(value_type = crate::openapi::ProviderIdSchema)]
    pub provider: String,
    /// The provider's own id of the reservation or booking, checked against that provider's
    /// format before anything is sent: chargeapi `res_` and 1–64 letters/digits; frontpayment a
    /// UUID; accommodation 1–64 of `A–Z a–z 0–9 _ -`.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"
    )]
    pub reference: String,
    /// Which configured credential set of the provider; `default` when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, example = "default")]
    pub account: Option<String>,
    /// Sent where the provider takes a note (Front Payment's `note`). No control characters
    /// other than newline and tab.
    #[serde(default)]
    #[schema(max_length = 500, pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$")]
    pub reason: Option<String>,
    /// Passed to providers that take one (accommodation).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 16, pattern = "^[A-Za-z_-]+$", example = "EN")]
    pub language: Option<String>,
    /// At most 20 entries (keys 1–40 characters, values at most 500): stored and returned,
    /// never sent upstream.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl CancelBody {
    /// Parse a body, naming the offending field in `param` when it does not fit.
    pub fn parse(bytes: &[u8]) -> Result<(Self, serde_json::Value), ApiError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid("body", format!("The body is not valid JSON: {e}.")))?;
        if !value.is_object() {
            return Err(ApiError::invalid("body", "The body must be a JSON object."));
        }
        let body: CancelBody = serde_path_to_error::deserialize(&value).map_err(|e| {
            let inner = e.inner().to_string();
            let param = field_named_in(&inner).unwrap_or_else(|| e.path().to_string());
            let param = if param.is_empty() || param == "." { "body".to_owned() } else { param };
            ApiError::invalid(param, format!("The body does not fit the API: {inner}."))
        })?;
        body.check_lengths()?;
        Ok((body, value))
    }

    fn check_lengths(&self) -> Result<(), ApiError> {
        let too_long = |s: &str, max: usize| s.chars().count() > max;
        if self.provider.is_empty() || too_long(&self.provider, MAX_PROVIDER_CHARS) {
            return Err(ApiError::invalid("provider", "Unknown provider."));
        }
        if let Some(account) = &self.account
            && (account.is_empty() || too_long(account, MAX_ACCOUNT_CHARS))
        {
            return Err(ApiError::invalid(
                "account",
                format!("An account name has 1 to {MAX_ACCOUNT_CHARS} characters."),
            ));
        }
        if let Some(reason) = &self.reason
            && too_long(reason, MAX_REASON_CHARS)
        {
            return Err(ApiError::invalid("reason", format!("The reason has at most {MAX_REASON_CHARS} characters.")));
        }
        if let Some(reason) = &self.reason
            && reason.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ApiError::invalid("reason", "The reason must not contain control characters."));
        }
        if let Some(language) = &self.language
            && (language.is_empty()
                || language.len() > MAX_LANGUAGE_CHARS
                || !language.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_'))
        {
            return Err(ApiError::invalid("language", "The language is a code such as `EN` or `en-GB`."));
        }
        if let Some(metadata) = &self.metadata {
            if metadata.len() > MAX_METADATA_ENTRIES {
                return Err(ApiError::invalid("metadata", format!("At most {MAX_METADATA_ENTRIES} metadata entries.")));
            }
            for (k, v) in metadata {
                if k.is_empty() || too_long(k, MAX_METADATA_KEY_CHARS) || too_long(v, MAX_METADATA_VALUE_CHARS) {
                    return Err(ApiError::invalid(
                        "metadata",
                        format!(
                            "Metadata keys have 1 to {MAX_METADATA_KEY_CHARS} characters, values at most {MAX_METADATA_VALUE_CHARS}."
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// serde names the field in "unknown field `x`, expected …" and "missing field `x`" messages.
/// (A caller's unknown field may itself hold a backtick: the name ends where serde's text resumes.)
fn field_named_in(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("missing field `"))?;
    let end = rest.find("`, expected").or_else(|| rest.rfind('`'))?;
    Some(rest[..end].to_owned())
}

/// The status of a cancellation (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Processing,
    Cancelled,
    Failed,
    NeedsReview,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::NeedsReview => "needs_review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Processing, Self::Cancelled, Self::Failed, Self::NeedsReview].into_iter().find(|x| x.as_str() == s)
    }
}

/// What the provider answered, kept on the cancellation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct UpstreamSnapshot {
    /// The provider's HTTP status.
    pub status: u16,
    /// The provider's JSON, verbatim (a string when it was not JSON; secrets scrubbed).
    pub body: serde_json::Value,
}

/// The Cancellation object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cancellation {
    #[schema(example = "can_01JD7Q2Z3X4Y5W6V7U8T9S0R1P")]
    pub id: String,
    /// Always `cancellation`.
    #[schema(value_type = String, pattern = "^cancellation$", example = "cancellation")]
    pub object: &'static str,
    pub provider: String,
    pub account: String,
    pub reference: String,
    pub status: Status,
    /// When the provider cancelled (its own time where it gives one), RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub cancelled_at: Option<String>,
    /// Upstream requests sent for this cancellation.
    pub attempts: u32,
    /// Whether this answer replays an earlier one.
    pub replayed: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The final error of a `failed` cancellation.
    #[schema(value_type = Option<crate::openapi::ProblemSchema>)]
    pub error: Option<serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    pub upstream: Option<UpstreamSnapshot>,
}

/// RFC 3339 in UTC with exactly three fractional digits, as the providers' own examples are:
/// one fixed width, so timestamps sort as strings.
pub fn rfc3339(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn param_of(body: &str) -> String {
        CancelBody::parse(body.as_bytes()).unwrap_err().param.clone().unwrap_or_default()
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
        // serde_json stops at 128 levels; the fingerprint and the typed parse only ever see less.
        for depth in [129, 10_000, 60_000] {
            let array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(param_of(&array), "body");
            let in_metadata = format!(r#"{{"provider":"chargeapi","reference":"r","metadata":{{"a":{array}}}}}"#);
            assert_eq!(param_of(&in_metadata), "body");
            let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            assert_eq!(param_of(&objects), "body");
        }
        let shallow = format!(
            r#"{{"provider":"chargeapi","reference":"r","metadata":{{"a":{}1{}}}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(param_of(&shallow), "metadata.a");
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
                Ok((parsed, _)) => {
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
                Ok((parsed, _)) => {
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
    }
}
