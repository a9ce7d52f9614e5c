//! Why settings could not be loaded: each message names the file or key.

use std::path::PathBuf;

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
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), message: message.into() }
    }
}
