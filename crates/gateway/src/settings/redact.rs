//! `Redacted`: the merged configuration as `check-config` prints it, one `key = value` line per
//! setting. It prints the settings' own serialization (`#[derive(Serialize)]` on every type,
//! secrets written by `secret.rs`), so a new setting is shown without anyone listing it here.

use std::fmt;

use serde_json::Value;

use super::Settings;

/// Prints the merged configuration with every secret replaced (used by `check-config`).
#[derive(Debug)]
pub struct Redacted<'a>(pub &'a Settings);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tree = serde_json::to_value(self.0).map_err(|_| fmt::Error)?;
        lines(f, "", &tree)
    }
}

/// One line per leaf of the tree, its dotted path as the key; an empty table is one `{}` line.
fn lines(f: &mut fmt::Formatter<'_>, path: &str, value: &Value) -> fmt::Result {
    match value {
        Value::Object(table) if !table.is_empty() => {
            for (key, value) in table {
                let path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                lines(f, &path, value)?;
            }
            Ok(())
        }
        value => writeln!(f, "{path} = {}", Shown(value)),
    }
}

/// A value as TOML-like text: strings quoted, lists `[a, b]`, unset values `null`.
struct Shown<'a>(&'a Value);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::String(s) => write!(f, "{s:?}"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Shown(item))?;
                }
                f.write_str("]")
            }
            Value::Object(table) if table.is_empty() => f.write_str("{}"),
            other => write!(f, "{other}"),
        }
    }
}
