//! `POST /v1/cancellation-batches`'s body (SPEC §10): its items, each read by the single
//! cancel's own visitor and rules, and the batch's fingerprint.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::*;
use crate::error::ApiError;

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
    pub(super) metadata_null: bool,
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

pub(super) struct BatchVisitor<'a> {
    pub(super) failure: &'a mut Option<Failure>,
    /// The item being read, while one is.
    pub(super) at: &'a mut Option<usize>,
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
pub(super) struct ItemsSeed<'a> {
    pub(super) failure: &'a mut Option<Failure>,
    pub(super) at: &'a mut Option<usize>,
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

pub(super) struct ItemSeed<'a> {
    pub(super) failure: &'a mut Option<Failure>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = CancelBody;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(BodyVisitor { failure: self.failure })
    }
}
