//! The public JSON shapes of `/v1`: what callers send and what they get back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use sha2::{Digest, Sha256};

use crate::error::ApiError;

pub const MAX_REASON_CHARS: usize = 500;
pub const MAX_METADATA_ENTRIES: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
pub const MAX_ACCOUNT_CHARS: usize = 64;
pub const MAX_LANGUAGE_CHARS: usize = 16;
pub const MAX_PROVIDER_CHARS: usize = 64;

/// `POST /v1/cancellations` body. Unknown fields are refused so typos are not ignored, and so is
/// a member named twice at any depth (`param` names it: `metadata.k` for an entry of `metadata`).
// (The doc comment above is the OpenAPI description.) "Last one wins" would let a proxy or a log
// that reads the first member see another cancel than the one performed. Parsed by
// `CancelBody::parse` in one pass over the bytes straight into this struct, no intermediate JSON
// value; the `serde` attributes only describe the wire shape to utoipa.
#[derive(Debug, Clone, ToSchema)]
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
    /// The optional members the body gave as `null`. They mean what an absent member means, but
    /// the fingerprint is of the JSON value, where `"account": null` is not `{}`.
    #[serde(skip)]
    nulls: Members,
}

impl CancelBody {
    /// Parse a body, naming the offending member in `param` when it does not fit (`metadata.k`
    /// for an entry of `metadata`). Every detail is the gateway's own text, never serde's.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let body = Self::read(bytes)?;
        body.check_lengths()?;
        Ok(body)
    }

    /// The body's members, before their lengths are checked.
    fn read(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = serde::Deserializer::deserialize_map(&mut de, BodyVisitor { failure: &mut failure })
            .and_then(|body| de.end().map(|()| body));
        parsed.map_err(|e| refusal(&e, failure))
    }

    /// SHA-256 (hex) of the body's canonical JSON: members sorted by name at every level, no
    /// spacing. The same JSON value gives the same fingerprint whatever its key order or
    /// spacing. Byte for byte the form earlier releases computed from a parsed JSON value, so
    /// idempotency keys stored before an upgrade still replay.
    pub fn fingerprint(&self) -> String {
        let mut out = Vec::with_capacity(128 + self.reason.as_ref().map_or(0, String::len));
        out.push(b'{');
        // In the byte order of the member names, as the canonical form sorts them.
        for member in Member::SORTED {
            let value = match member {
                Member::Provider => Canonical::Str(&self.provider),
                Member::Reference => Canonical::Str(&self.reference),
                Member::Account => self.optional(member, self.account.as_deref()),
                Member::Reason => self.optional(member, self.reason.as_deref()),
                Member::Language => self.optional(member, self.language.as_deref()),
                Member::Metadata => match &self.metadata {
                    Some(map) => Canonical::Map(map),
                    None if self.nulls.has(member) => Canonical::Null,
                    None => Canonical::Absent,
                },
            };
            if matches!(value, Canonical::Absent) {
                continue;
            }
            if out.len() > 1 {
                out.push(b',');
            }
            push_json_str(&mut out, member.name());
            out.push(b':');
            match value {
                Canonical::Absent => {}
                Canonical::Null => out.extend_from_slice(b"null"),
                Canonical::Str(s) => push_json_str(&mut out, s),
                Canonical::Map(map) => {
                    out.push(b'{');
                    // A BTreeMap of Strings iterates in byte order: the canonical order.
                    for (i, (k, v)) in map.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        push_json_str(&mut out, k);
                        out.push(b':');
                        push_json_str(&mut out, v);
                    }
                    out.push(b'}');
                }
            }
        }
        out.push(b'}');
        hex::encode(Sha256::digest(&out))
    }

    fn optional<'a>(&self, member: Member, value: Option<&'a str>) -> Canonical<'a> {
        match value {
            Some(s) => Canonical::Str(s),
            None if self.nulls.has(member) => Canonical::Null,
            None => Canonical::Absent,
        }
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
            check_metadata(metadata)?;
        }
        Ok(())
    }
}

/// The bounds of `metadata` (a cancellation's or a batch's).
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let too_long = |s: &str, max: usize| s.chars().count() > max;
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
    Ok(())
}

/// A member of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Provider,
    Reference,
    Account,
    Reason,
    Language,
    Metadata,
}

impl Member {
    /// In the byte order of their names (the canonical JSON's order).
    const SORTED: [Self; 6] =
        [Self::Account, Self::Language, Self::Metadata, Self::Provider, Self::Reason, Self::Reference];

    const fn name(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Reference => "reference",
            Self::Account => "account",
            Self::Reason => "reason",
            Self::Language => "language",
            Self::Metadata => "metadata",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::SORTED.into_iter().find(|m| m.name() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Members(u8);

impl Members {
    const fn has(self, member: Member) -> bool {
        self.0 & member.bit() != 0
    }

    fn add(&mut self, member: Member) {
        self.0 |= member.bit();
    }
}

/// One member's value in the canonical form.
enum Canonical<'a> {
    Absent,
    Null,
    Str(&'a str),
    Map(&'a BTreeMap<String, String>),
}

/// `s` as a JSON string, escaped exactly as serde_json escapes (the fingerprint depends on it).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Why the visitor stopped, in the gateway's words (serde's own messages never reach a caller).
#[derive(Debug)]
enum Failure {
    /// The value of `param` could not be read as `expected`: a type mismatch when serde_json
    /// classifies the error as data, else the JSON itself was broken there.
    Value { param: String, expected: &'static str },
    /// A member the body may not have: unknown, repeated, or a required one missing.
    Refused(ApiError),
}

/// The answer to a body that did not parse.
fn refusal(error: &serde_json::Error, failure: Option<Failure>) -> ApiError {
    match (error.classify(), failure) {
        (serde_json::error::Category::Data, Some(Failure::Refused(e))) => e,
        (serde_json::error::Category::Data, Some(Failure::Value { param, expected })) => {
            let detail = format!("`{param}` must be {expected}.");
            ApiError::invalid(param, detail)
        }
        (serde_json::error::Category::Data, None) => ApiError::invalid("body", "The body must be a JSON object."),
        _ => ApiError::invalid(
            "body",
            format!("The body is not valid JSON (line {}, column {}).", error.line(), error.column()),
        ),
    }
}

/// Stops the parse: what went wrong is in the visitor's `failure`, this text is never shown.
fn stop<E: serde::de::Error>(failure: &mut Option<Failure>, why: Failure) -> E {
    *failure = Some(why);
    E::custom("refused")
}

fn repeated(param: String) -> Failure {
    Failure::Refused(ApiError::invalid(param, "This member appears more than once; send each member once."))
}

/// A member name: known ones without allocating, an unknown one kept for `param`.
enum Key {
    Known(Member),
    Unknown(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Member::named(v).map_or_else(|| Key::Unknown(v.to_owned()), Key::Known))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The body object. serde's derive would refuse a repeated top-level member too, but not one
/// inside `metadata`, and its messages are serde's: this visitor does both in the same pass.
struct BodyVisitor<'a> {
    failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::Visitor<'de> for BodyVisitor<'_> {
    type Value = CancelBody;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a cancellation request object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<CancelBody, A::Error> {
        let failure = self.failure;
        let mut seen = Members::default();
        let mut nulls = Members::default();
        let (mut provider, mut reference) = (None, None);
        let (mut account, mut reason, mut language, mut metadata) = (None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            let member = match key {
                Key::Known(member) => member,
                Key::Unknown(name) => {
                    let error = ApiError::invalid(
                        name,
                        "Unknown member: a body has only provider, reference, account, reason, language and metadata.",
                    );
                    return Err(stop(failure, Failure::Refused(error)));
                }
            };
            if seen.has(member) {
                return Err(stop(failure, repeated(member.name().to_owned())));
            }
            seen.add(member);
            let string = |failure: &mut Option<Failure>, e: A::Error| {
                *failure = Some(Failure::Value { param: member.name().to_owned(), expected: "a string" });
                e
            };
            match member {
                Member::Provider => provider = Some(map.next_value::<String>().map_err(|e| string(failure, e))?),
                Member::Reference => reference = Some(map.next_value::<String>().map_err(|e| string(failure, e))?),
                Member::Account | Member::Reason | Member::Language => {
                    let value = map.next_value::<Option<String>>().map_err(|e| string(failure, e))?;
                    if value.is_none() {
                        nulls.add(member);
                    }
                    match member {
                        Member::Account => account = value,
                        Member::Reason => reason = value,
                        _ => language = value,
                    }
                }
                Member::Metadata => {
                    let value = map.next_value_seed(MetadataSeed { failure: &mut *failure }).inspect_err(|_| {
                        if failure.is_none() {
                            *failure = Some(Failure::Value {
                                param: "metadata".to_owned(),
                                expected: "an object whose values are strings",
                            });
                        }
                    })?;
                    if value.is_none() {
                        nulls.add(member);
                    }
                    metadata = value;
                }
            }
        }
        let required = |failure: &mut Option<Failure>, member: Member| {
            let name = member.name();
            stop(failure, Failure::Refused(ApiError::invalid(name, format!("`{name}` is required."))))
        };
        let provider = provider.ok_or_else(|| required(failure, Member::Provider))?;
        let reference = reference.ok_or_else(|| required(failure, Member::Reference))?;
        Ok(CancelBody { provider, reference, account, reason, language, metadata, nulls })
    }
}

/// `metadata`: `null` or an object of strings, each key at most once.
struct MetadataSeed<'a> {
    failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::DeserializeSeed<'de> for MetadataSeed<'_> {
    type Value = Option<BTreeMap<String, String>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> serde::de::Visitor<'de> for MetadataSeed<'_> {
    type Value = Option<BTreeMap<String, String>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(MetadataEntries { failure: self.failure }).map(Some)
    }
}

struct MetadataEntries<'a> {
    failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::Visitor<'de> for MetadataEntries<'_> {
    type Value = BTreeMap<String, String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of strings")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let param = format!("metadata.{key}");
            if entries.contains_key(&key) {
                return Err(stop(self.failure, repeated(param)));
            }
            let value = map
                .next_value::<String>()
                .inspect_err(|_| *self.failure = Some(Failure::Value { param, expected: "a string" }))?;
            entries.insert(key, value);
        }
        Ok(entries)
    }
}

/// The most items a batch may have (SPEC §10).
pub const MAX_BATCH_ITEMS: usize = 50;

/// `POST /v1/cancellation-batches` body: 1–50 items, each with exactly the members and rules of
/// a single cancel's body, and the batch's own `metadata`. Unknown and repeated members are
/// refused at any depth; `param` names an item's member as `items[2].reference`.
// Parsed by `BatchBody::parse` in one pass, each item by the single cancel's own visitor.
#[derive(Debug, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [
    {"provider": "chargeapi", "reference": "res_k5VXjQAdSJx6Mg9iPw7OAjGzXP42Lvqq"},
    {"provider": "frontpayment", "reference": "3f1c0a9e-5b7d-4c2e-9a61-2d8f4b6e7a10", "reason": "Trip cancelled"},
    {"provider": "accommodation", "reference": "BK_EXAMPLE_001", "language": "EN"}],
    "metadata": {"trip_id": "T-9"}}))]
pub struct BatchBody {
    /// The cancellations, 1 to 50; no two may name the same (provider, account, reference).
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<CancelBody>,
    /// At most 20 entries: stored and returned with the batch, never sent upstream.
    #[serde(default)]
    #[schema(schema_with = crate::openapi::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// `"metadata": null` was given (the fingerprint is of the JSON value).
    #[serde(skip)]
    metadata_null: bool,
}

impl BatchBody {
    /// Parse a batch body; every item is checked by the single cancel's rules, its problems
    /// named `items[i].member` (`items[i]` when the item is not an object).
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut failure = None;
        let mut at = None;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = serde::Deserializer::deserialize_map(&mut de, BatchVisitor { failure: &mut failure, at: &mut at })
            .and_then(|body| de.end().map(|()| body));
        let body = parsed.map_err(|e| match (at, e.classify()) {
            (Some(i), serde_json::error::Category::Data) => match failure {
                None => ApiError::invalid(format!("items[{i}]"), "Each item must be a JSON object."),
                failure => in_item(refusal(&e, failure), i),
            },
            _ => refusal(&e, failure),
        })?;
        if body.items.is_empty() {
            return Err(ApiError::invalid("items", format!("A batch has 1 to {MAX_BATCH_ITEMS} items.")));
        }
        if let Some(metadata) = &body.metadata {
            check_metadata(metadata)?;
        }
        for (i, item) in body.items.iter().enumerate() {
            item.check_lengths().map_err(|e| in_item(e, i))?;
        }
        Ok(body)
    }

    /// SHA-256 (hex) over the items' fingerprints in order and the batch's canonical metadata:
    /// the same JSON value gives the same fingerprint whatever its key order or spacing.
    pub fn fingerprint(&self) -> String {
        let mut out = Vec::with_capacity(16 + 65 * self.items.len());
        out.extend_from_slice(b"batch:");
        for item in &self.items {
            out.extend_from_slice(item.fingerprint().as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"|metadata:");
        match &self.metadata {
            Some(map) => {
                for (k, v) in map {
                    push_json_str(&mut out, k);
                    out.push(b':');
                    push_json_str(&mut out, v);
                    out.push(b',');
                }
            }
            None if self.metadata_null => out.extend_from_slice(b"null"),
            None => {}
        }
        hex::encode(Sha256::digest(&out))
    }
}

/// An item's problem, its `param` placed inside the item.
pub fn in_item(mut error: ApiError, index: usize) -> ApiError {
    error.param = Some(match error.param.take() {
        Some(param) if param != "body" => format!("items[{index}].{param}"),
        _ => format!("items[{index}]"),
    });
    error
}

struct BatchVisitor<'a> {
    failure: &'a mut Option<Failure>,
    /// The item being read, while one is.
    at: &'a mut Option<usize>,
}

impl<'de> serde::de::Visitor<'de> for BatchVisitor<'_> {
    type Value = BatchBody;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a cancellation batch object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<BatchBody, A::Error> {
        let (failure, at) = (self.failure, self.at);
        let (mut items, mut metadata, mut metadata_null) = (None, None, false);
        let mut seen_metadata = false;
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "items" => {
                    if items.is_some() {
                        return Err(stop(failure, repeated(name)));
                    }
                    let seed = ItemsSeed { failure: &mut *failure, at: &mut *at };
                    let value = map.next_value_seed(seed).inspect_err(|_| {
                        if failure.is_none() && at.is_none() {
                            *failure = Some(Failure::Value {
                                param: "items".to_owned(),
                                expected: "an array of 1 to 50 cancellation objects",
                            });
                        }
                    })?;
                    items = Some(value);
                }
                "metadata" => {
                    if std::mem::replace(&mut seen_metadata, true) {
                        return Err(stop(failure, repeated(name)));
                    }
                    let value = map.next_value_seed(MetadataSeed { failure: &mut *failure }).inspect_err(|_| {
                        if failure.is_none() {
                            *failure = Some(Failure::Value {
                                param: "metadata".to_owned(),
                                expected: "an object whose values are strings",
                            });
                        }
                    })?;
                    metadata_null = value.is_none();
                    metadata = value;
                }
                _ => {
                    let error = ApiError::invalid(name, "Unknown member: a batch has only items and metadata.");
                    return Err(stop(failure, Failure::Refused(error)));
                }
            }
        }
        let Some(items) = items else {
            return Err(stop(failure, Failure::Refused(ApiError::invalid("items", "`items` is required."))));
        };
        Ok(BatchBody { items, metadata, metadata_null })
    }
}

/// `items`: an array of cancellation bodies, each read by the single cancel's visitor.
struct ItemsSeed<'a> {
    failure: &'a mut Option<Failure>,
    at: &'a mut Option<usize>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = Vec<CancelBody>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ItemsSeed<'_> {
    type Value = Vec<CancelBody>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of cancellation objects")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let index = items.len();
            *self.at = Some(index);
            let Some(item) = seq.next_element_seed(ItemSeed { failure: &mut *self.failure })? else { break };
            if index == MAX_BATCH_ITEMS {
                *self.at = None;
                let error = ApiError::invalid("items", format!("A batch has 1 to {MAX_BATCH_ITEMS} items."));
                return Err(stop(self.failure, Failure::Refused(error)));
            }
            items.push(item);
        }
        *self.at = None;
        Ok(items)
    }
}

struct ItemSeed<'a> {
    failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = CancelBody;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(BodyVisitor { failure: self.failure })
    }
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
    pub error: Option<crate::error::Problem>,
    pub metadata: BTreeMap<String, String>,
    pub upstream: Option<UpstreamSnapshot>,
    /// The batch (`cb_…`, SPEC §10) this cancellation is an item of; null for a single cancel.
    #[schema(example = json!(null))]
    pub batch_id: Option<String>,
    /// How an operator settled it out of `needs_review`; null for a cancellation never resolved.
    pub resolution: Option<ResolutionView>,
}

/// The status of a batch (SPEC §10), from its items: `processing` while any item is; else
/// `needs_review` if any is; else `completed` when every item is cancelled, `failed` when none
/// is, `partially_failed` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Processing,
    NeedsReview,
    Completed,
    Failed,
    PartiallyFailed,
}

impl BatchStatus {
    /// The batch's status from its items' statuses (an item that was never recorded is `failed`).
    pub fn of(items: impl IntoIterator<Item = Status> + Clone) -> Self {
        let any = |s: Status| items.clone().into_iter().any(|x| x == s);
        if any(Status::Processing) {
            BatchStatus::Processing
        } else if any(Status::NeedsReview) {
            BatchStatus::NeedsReview
        } else if items.clone().into_iter().all(|x| x == Status::Cancelled) {
            BatchStatus::Completed
        } else if !any(Status::Cancelled) {
            BatchStatus::Failed
        } else {
            BatchStatus::PartiallyFailed
        }
    }
}

/// One item of a batch: its Cancellation, or (shed by a limit, never recorded) its problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItemView {
    /// The item's position in the request, from 0.
    pub index: u32,
    pub cancellation: Option<Cancellation>,
    /// The item's problem (SPEC §3) when it has no cancellation.
    #[schema(value_type = Option<crate::openapi::ProblemSchema>)]
    pub error: Option<serde_json::Value>,
}

/// The CancellationBatch object.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CancellationBatch {
    #[schema(example = "cb_01JD7Q2Z3X4Y5W6V7U8T9S0R1P")]
    pub id: String,
    /// Always `cancellation_batch`.
    #[schema(value_type = String, pattern = "^cancellation_batch$", example = "cancellation_batch")]
    pub object: &'static str,
    pub status: BatchStatus,
    pub items: Vec<BatchItemView>,
    pub metadata: BTreeMap<String, String>,
    /// Whether this answer replays an earlier request with the same idempotency key.
    pub replayed: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The latest change of the batch or of any of its items.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An operator's resolution of a cancellation that needed review (SPEC §9).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"by": "ops-desk", "at": "2026-12-01T10:00:00.000Z",
    "note": "Checked with the provider's support: cancelled on their side.", "status": "cancelled"}))]
pub struct ResolutionView {
    /// The client that resolved it.
    pub by: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub note: String,
    /// The status it was resolved to: `cancelled` or `failed`.
    pub status: Status,
}

/// One upstream attempt of a cancellation, as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"n": 1, "started_at": "2026-12-01T10:00:00.000Z", "finished_at": "2026-12-01T10:00:05.001Z",
    "latency_ms": 5001, "outcome": "ambiguous", "http_status": null, "body": null,
    "error": "upstream timeout: no answer within 5000 ms"}))]
pub struct AttemptView {
    /// 1 for the first attempt.
    pub n: u32,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Null while in flight, or for good when the gateway stopped during the attempt.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    pub latency_ms: Option<u64>,
    /// `sent` (no answer recorded), `cancelled`, `refused`, `rate_limited`, `needs_review`,
    /// `ambiguous` (its effect upstream is unknown), `transient` or `not_sent`.
    pub outcome: String,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// The provider's answer as recorded (JSON, or a string when it was not JSON), secrets
    /// scrubbed.
    pub body: Option<serde_json::Value>,
    /// Why no answer came (timeout, connection reset…).
    pub error: Option<String>,
}

/// `GET /v1/cancellations/{id}/attempts`: oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptList {
    /// Always `list`.
    #[schema(value_type = String, pattern = "^list$", example = "list")]
    pub object: &'static str,
    pub data: Vec<AttemptView>,
}

pub const MAX_NOTE_CHARS: usize = 1000;

/// `POST /v1/cancellations/{id}/resolve` body. Unknown fields and a member named twice are
/// refused (`param` names it).
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "cancelled", "note": "Checked with the provider's support: cancelled on their side."}))]
pub struct ResolveBody {
    /// What the operator found: `cancelled` or `failed`.
    #[schema(value_type = ResolveStatus)]
    pub status: ResolveStatus,
    /// Why: 1–1000 characters, no control characters other than newline and tab. Stored with the
    /// resolution and, for `failed`, as the error's `detail`.
    #[schema(min_length = 1, max_length = 1000, pattern = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]+$")]
    pub note: String,
}

/// The statuses a resolution may choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveStatus {
    Cancelled,
    Failed,
}

impl ResolveBody {
    /// Parse a body, naming the offending member in `param` (the gateway's own words).
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let mut failure = None;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = serde::Deserializer::deserialize_map(&mut de, ResolveVisitor { failure: &mut failure })
            .and_then(|body| de.end().map(|()| body));
        let body = parsed.map_err(|e| refusal(&e, failure))?;
        let chars = body.note.chars().count();
        if chars == 0 || chars > MAX_NOTE_CHARS {
            return Err(ApiError::invalid("note", format!("The note has 1 to {MAX_NOTE_CHARS} characters.")));
        }
        if body.note.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(ApiError::invalid("note", "The note must not contain control characters."));
        }
        Ok(body)
    }
}

struct ResolveVisitor<'a> {
    failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::Visitor<'de> for ResolveVisitor<'_> {
    type Value = ResolveBody;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a resolution object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ResolveBody, A::Error> {
        let failure = self.failure;
        let (mut status, mut note): (Option<ResolveStatus>, Option<String>) = (None, None);
        while let Some(name) = map.next_key::<String>()? {
            let param = name.clone();
            let string = |failure: &mut Option<Failure>, e: A::Error| {
                *failure = Some(Failure::Value { param: param.clone(), expected: "a string" });
                e
            };
            match name.as_str() {
                "status" if status.is_some() => return Err(stop(failure, repeated(name))),
                "note" if note.is_some() => return Err(stop(failure, repeated(name))),
                "status" => {
                    let value = map.next_value::<String>().map_err(|e| string(failure, e))?;
                    status = Some(match value.as_str() {
                        "cancelled" => ResolveStatus::Cancelled,
                        "failed" => ResolveStatus::Failed,
                        _ => {
                            let error = ApiError::invalid("status", "`status` is `cancelled` or `failed`.");
                            return Err(stop(failure, Failure::Refused(error)));
                        }
                    });
                }
                "note" => note = Some(map.next_value::<String>().map_err(|e| string(failure, e))?),
                _ => {
                    let error = ApiError::invalid(name, "Unknown member: a resolution has only status and note.");
                    return Err(stop(failure, Failure::Refused(error)));
                }
            }
        }
        let required = |failure: &mut Option<Failure>, name: &str| {
            stop(failure, Failure::Refused(ApiError::invalid(name, format!("`{name}` is required."))))
        };
        let status = status.ok_or_else(|| required(failure, "status"))?;
        let note = note.ok_or_else(|| required(failure, "note"))?;
        Ok(ResolveBody { status, note })
    }
}

/// `POST /v1/cancellations/{id}/retry` takes no members: an empty body or `{}`.
pub fn parse_empty_body(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes) {
        Ok(map) => match map.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid(name.clone(), "Unknown member: a retry takes no members.")),
        },
        Err(_) => Err(ApiError::invalid("body", "The body of a retry is empty or `{}`.")),
    }
}

/// RFC 3339 in UTC with exactly three fractional digits (the engine's, which logs them too).
pub use cancelgate_engine::rfc3339;

#[cfg(test)]
mod tests {
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
    }
}
