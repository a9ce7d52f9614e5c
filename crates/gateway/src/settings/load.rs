//! Loading: `gateway.toml`, then `providers/{id}.toml` (as `providers.{id}.*`), then
//! `CANCELGATE__…` environment variables, merged by the `config` crate; `*_file` secrets read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::{Settings, SettingsError};

/// The environment prefix of every override: `CANCELGATE__PROVIDERS__CHARGEAPI__BASE_URL`.
pub const ENV_PREFIX: &str = "CANCELGATE";

impl Settings {
    /// Load from `dir` (holding `gateway.toml` and `providers/*.toml`) and the process environment.
    pub fn load(dir: &Path) -> Result<Self, SettingsError> {
        Self::load_with_env(dir, None)
    }

    /// As [`Settings::load`], with the environment given as a map (tests) instead of the process's.
    pub fn load_with_env(dir: &Path, env: Option<HashMap<String, String>>) -> Result<Self, SettingsError> {
        if !dir.is_dir() {
            return Err(SettingsError::MissingDir(dir.to_path_buf()));
        }
        let gateway = dir.join("gateway.toml");
        let mut builder = config::Config::builder()
            .add_source(config::File::from(gateway.as_path()).format(config::FileFormat::Toml).required(true));
        for (id, path) in provider_files(&dir.join("providers"))? {
            builder = builder.add_source(ProviderFile { id, path });
        }
        let environment = config::Environment::with_prefix(ENV_PREFIX).separator("__").source(env);
        let mut settings: Settings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| config_error(e, dir))?;
        if let Some(path) = &settings.ledger.url_file {
            let url = std::fs::read_to_string(path).map_err(|e| {
                SettingsError::invalid("ledger.url_file", format!("cannot read {}: {e}", path.display()))
            })?;
            settings.ledger.url = SecretString::from(url.trim().to_owned());
        }
        if secrecy::ExposeSecret::expose_secret(&settings.ledger.url).is_empty() {
            return Err(SettingsError::invalid("ledger.url", "missing: set `ledger.url` or `ledger.url_file`"));
        }
        if let Some(redis) = &mut settings.redis
            && let Some(path) = &redis.url_file
        {
            let url = std::fs::read_to_string(path).map_err(|e| {
                SettingsError::invalid("redis.url_file", format!("cannot read {}: {e}", path.display()))
            })?;
            redis.url = SecretString::from(url.trim().to_owned());
        }
        crate::webhooks::config::load_secret_files(&mut settings.webhooks)?;
        settings.check()?;
        Ok(settings)
    }
}

/// `providers/{id}.toml` files, sorted by id.
fn provider_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, SettingsError> {
    let io = |e: std::io::Error| SettingsError::Io { path: dir.to_path_buf(), message: e.to_string() };
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        if let Some(id) = path.file_stem().and_then(|s| s.to_str()) {
            files.push((id.to_owned(), path));
        }
    }
    files.sort();
    Ok(files)
}

/// A provider file read as the table `providers.{id}`.
#[derive(Debug, Clone)]
struct ProviderFile {
    id: String,
    path: PathBuf,
}

impl config::Source for ProviderFile {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let file = config::File::from(self.path.as_path()).format(config::FileFormat::Toml).required(true);
        let table = file.collect()?;
        let origin = self.path.display().to_string();
        let mut by_id = config::Map::new();
        by_id.insert(self.id.clone(), config::Value::new(Some(&origin), config::ValueKind::Table(table)));
        let mut root = config::Map::new();
        root.insert("providers".to_owned(), config::Value::new(Some(&origin), config::ValueKind::Table(by_id)));
        Ok(root)
    }
}

/// Name the file a key comes from: `providers.{id}.*` from `providers/{id}.toml`, the rest
/// from `gateway.toml` (either possibly overridden by a `CANCELGATE__…` variable).
fn config_error(error: config::ConfigError, dir: &Path) -> SettingsError {
    let message = error.to_string();
    let key = message.split("for key `").nth(1).and_then(|rest| rest.split('`').next()).unwrap_or("");
    let file = match key.strip_prefix("providers.").map(|rest| rest.split('.').next().unwrap_or("")) {
        Some(id) if !id.is_empty() => dir.join("providers").join(format!("{id}.toml")),
        _ => dir.join("gateway.toml"),
    };
    let file = format!("{} (or its CANCELGATE__ override)", file.display());
    SettingsError::Config { file, message }
}
