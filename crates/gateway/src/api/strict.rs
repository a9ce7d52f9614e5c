//! The one-pass strict reading of a cancellation body (the single cancel's and each batch
//! item's): unknown and repeated members refused at any depth, every detail the gateway's own
//! words, never serde's.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::error::ApiError;

/// Why the visitor stopped, in the gateway's words (serde's own messages never reach a caller).
#[derive(Debug)]
pub(super) enum Failure {
    /// The value of `param` could not be read as `expected`: a type mismatch when serde_json
    /// classifies the error as data, else the JSON itself was broken there.
    Value { param: String, expected: &'static str },
    /// A member the body may not have: unknown, repeated, or a required one missing.
    Refused(ApiError),
}

/// The answer to a body that did not parse.
pub(super) fn refusal(error: &serde_json::Error, failure: Option<Failure>) -> ApiError {
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
pub(super) fn stop<E: serde::de::Error>(failure: &mut Option<Failure>, why: Failure) -> E {
    *failure = Some(why);
    E::custom("refused")
}

pub(super) fn repeated(param: String) -> Failure {
    Failure::Refused(ApiError::invalid(param, "This member appears more than once; send each member once."))
}

/// A member name: known ones without allocating, an unknown one kept for `param`.
pub(super) enum Key {
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
pub(super) struct BodyVisitor<'a> {
    pub(super) failure: &'a mut Option<Failure>,
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
pub(super) struct MetadataSeed<'a> {
    pub(super) failure: &'a mut Option<Failure>,
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

pub(super) struct MetadataEntries<'a> {
    pub(super) failure: &'a mut Option<Failure>,
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
