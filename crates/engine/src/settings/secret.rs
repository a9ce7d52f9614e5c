//! How secrets are serialized: as `"[REDACTED]"`, always. `SecretString` has no `Serialize` of
//! its own, so a settings type with a secret field does not compile until that field names one
//! of these: a new secret cannot be printed by mistake.

use std::collections::{BTreeMap, HashMap};

use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;
use serde::ser::SerializeMap;

/// What is printed in place of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A secret: its place is shown, never its value.
pub fn secret<S: Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

/// A secret that may be absent: whether it is set is shown, never its value.
pub fn optional_secret<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some(REDACTED),
        None => s.serialize_none(),
    }
}

/// A value that is not a secret but is not shown either (a client key's hash).
pub fn hidden<S: Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

/// A database URL (it may hold a password): only its backend is shown.
pub fn database_url<S: Serializer>(url: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    let url = url.expose_secret();
    let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgres"
    } else if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "unknown"
    };
    s.serialize_str(&format!("{REDACTED} (backend: {backend})"))
}

/// Provider accounts: every account and credential field is named, no value is shown.
pub fn accounts<S: Serializer>(
    accounts: &BTreeMap<String, HashMap<String, SecretString>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(accounts.len()))?;
    for (name, fields) in accounts {
        let keys: BTreeMap<&str, &str> = fields.keys().map(|k| (k.as_str(), REDACTED)).collect();
        map.serialize_entry(name, &keys)?;
    }
    map.end()
}
