//! Why settings could not be loaded: each message names the file or key.

use std::path::{Path, PathBuf};

/// Configuration could not be loaded; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config directory {0}: not found (use --config-dir or CANCELGATE_CONFIG_DIR)")]
    MissingDir(PathBuf),
    /// A file or override does not fit; `file` is where the key lives (or its env override).
    #[error("{file}: {message}")]
    Config { file: String, message: String },
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl SettingsError {
    /// Name the file a key comes from: `providers.{id}.*` from `providers/{id}.toml`, the rest
    /// from `gateway.toml` (either possibly overridden by a `CANCELGATE__…` variable).
    pub(super) fn config(error: config::ConfigError, dir: &Path) -> Self {
        let message = error.to_string();
        let key = message.split("for key `").nth(1).and_then(|rest| rest.split('`').next()).unwrap_or("");
        let file = match key.strip_prefix("providers.").map(|rest| rest.split('.').next().unwrap_or("")) {
            Some(id) if !id.is_empty() => dir.join("providers").join(format!("{id}.toml")),
            _ => dir.join("gateway.toml"),
        };
        let file = format!("{} (or its CANCELGATE__ override)", file.display());
        Self::Config { file, message }
    }
}

impl SettingsError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), message: message.into() }
    }
}
