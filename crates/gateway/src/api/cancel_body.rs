//! `POST /v1/cancellations`'s body: its members, their bounds, and its fingerprint (the
//! canonical JSON an idempotency key is checked against).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::*;
use crate::error::ApiError;

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
    pub(super) nulls: Members,
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
    pub(super) fn read(bytes: &[u8]) -> Result<Self, ApiError> {
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
    pub(super) fn check_lengths(&self) -> Result<(), ApiError> {
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
pub(super) fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
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
pub(super) enum Member {
    Provider,
    Reference,
    Account,
    Reason,
    Language,
    Metadata,
}

impl Member {
    /// In the byte order of their names (the canonical JSON's order).
    pub(super) const SORTED: [Self; 6] =
        [Self::Account, Self::Language, Self::Metadata, Self::Provider, Self::Reason, Self::Reference];

    pub(super) const fn name(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Reference => "reference",
            Self::Account => "account",
            Self::Reason => "reason",
            Self::Language => "language",
            Self::Metadata => "metadata",
        }
    }

    pub(super) fn named(name: &str) -> Option<Self> {
        Self::SORTED.into_iter().find(|m| m.name() == name)
    }

    pub(super) const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Members(u8);

impl Members {
    pub(super) const fn has(self, member: Member) -> bool {
        self.0 & member.bit() != 0
    }

    pub(super) fn add(&mut self, member: Member) {
        self.0 |= member.bit();
    }
}

/// One member's value in the canonical form.
pub(super) enum Canonical<'a> {
    Absent,
    Null,
    Str(&'a str),
    Map(&'a BTreeMap<String, String>),
}

/// `s` as a JSON string, escaped exactly as serde_json escapes (the fingerprint depends on it).
pub(super) fn push_json_str(out: &mut Vec<u8>, s: &str) {
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
