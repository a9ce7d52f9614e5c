//! `StoredJson`: a JSON document kept as its text. The provider's answer a record keeps
//! (`upstream`) is the bulk of the record, and the gateway only ever passes it on: serialized
//! once when the attempt ends, written as is, read back checked but not built into a tree, and
//! written into every answer and replay as is. (As a `serde_json::Value` it was parsed on every
//! read and serialized on every write and answer: ~40 % of a replay's instructions.)

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Clone)]
pub struct StoredJson(Box<RawValue>);

impl StoredJson {
    /// `value` serialized, compact.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// `value` serialized. Infallible: a `Value`'s keys are strings, so its serialization never
    /// fails (the fallback, JSON `null`, is never taken).
    pub fn of_value(value: &Value) -> Self {
        Self::of(value).unwrap_or_else(|_| Self(RawValue::NULL.to_owned()))
    }

    /// Text read back: checked to be one JSON document (nothing is built from it).
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    /// The text, for the database.
    pub(crate) fn into_string(self) -> String {
        Box::<str>::from(self.0).into_string()
    }

    /// JSON `null`, which the ledger stores as absent (SQL NULL), like every JSON column.
    pub fn is_null(&self) -> bool {
        self.as_str() == "null"
    }

    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The document read as `T` (borrowing from the text where `T` does).
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The document as a tree, for the rare reader that walks it.
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }
}

/// The same document, whatever its spelling: PostgreSQL gives `JSONB` back in its own (spaces,
/// key order, `1e-7` as `0.0000001`). The same text is compared without parsing.
impl PartialEq for StoredJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for StoredJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Written into a document as the JSON it is, not as a string.
impl Serialize for StoredJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_document_is_written_into_another_as_json_not_as_a_string() {
        let stored = StoredJson::of_value(&json!({"status": 200, "body": {"a": "é\"\\", "n": [1, 2.5, null]}}));
        let outer = serde_json::to_string(&json!({"upstream": stored.to_value()})).unwrap();
        #[derive(Serialize)]
        struct Outer<'a> {
            upstream: &'a StoredJson,
        }
        assert_eq!(serde_json::to_string(&Outer { upstream: &stored }).unwrap(), outer);
        assert_eq!(stored.to_value()["body"]["a"], "é\"\\");
    }

    #[test]
    fn text_read_back_must_be_one_json_document() {
        assert!(StoredJson::from_text(r#"{"a":1}"#.to_owned()).is_ok());
        for bad in ["", "{", r#"{"a":1} {"b":2}"#, "nul", "{'a':1}"] {
            assert!(StoredJson::from_text(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn equal_documents_compare_equal_and_parse_borrows() {
        let a = StoredJson::of_value(&json!({"status": 502, "body": "x"}));
        let b = StoredJson::from_text(r#"{"status": 502, "body": "x"}"#.to_owned()).unwrap();
        assert_eq!(a, b, "PostgreSQL's spelling of the same document");
        assert_ne!(a, StoredJson::from_text(r#"{"status": 502, "body": "y"}"#.to_owned()).unwrap());
        #[derive(Deserialize)]
        struct Status<'a> {
            status: u16,
            #[serde(borrow)]
            body: &'a RawValue,
        }
        let s: Status<'_> = a.parse().unwrap();
        assert_eq!((s.status, s.body.get()), (502, r#""x""#));
    }
}
