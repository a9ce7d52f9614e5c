//! The operator actions' bodies (SPEC §9): `…/resolve`'s, read strictly, and `…/retry`'s
//! (none).

use serde::Serialize;
use utoipa::ToSchema;

use super::*;
use crate::error::ApiError;

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

pub(super) struct ResolveVisitor<'a> {
    pub(super) failure: &'a mut Option<Failure>,
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
