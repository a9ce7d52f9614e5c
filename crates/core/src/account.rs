use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::BuildError;

/// One configuration key a provider needs in each of its accounts (`providers.{id}.accounts.{name}.{key}`).
///
/// Providers declare their credentials as data; the gateway reads exactly these keys (and their
/// `{key}_file` variants) from configuration and hands the result over as an [`Account`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialField {
    pub key: &'static str,
    /// A secret is held in a [`SecretString`] and never printed; a plain setting is not secret.
    pub secret: bool,
    pub required: bool,
}

/// A named credential set of one provider, resolved from configuration.
///
/// `Debug` never shows secret values.
#[derive(Clone, Default)]
pub struct Account {
    name: String,
    secrets: BTreeMap<&'static str, SecretString>,
    settings: BTreeMap<&'static str, String>,
}

/// A credential the provider needs is absent from the account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("account `{account}` has no `{key}`")]
pub struct MissingCredential {
    pub account: String,
    pub key: &'static str,
}

impl Account {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }

    pub fn with_secret(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.secrets.insert(key, SecretString::from(value.into()));
        self
    }

    pub fn with_setting(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.settings.insert(key, value.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The secret under `key`, still wrapped: expose it only where it is put on the wire.
    pub fn secret(&self, key: &'static str) -> Result<&SecretString, MissingCredential> {
        self.secrets.get(key).ok_or_else(|| self.missing(key))
    }

    /// The secret under `key`, present and not empty: an empty value is as missing as no value.
    pub fn nonempty_secret(&self, key: &'static str) -> Result<&SecretString, MissingCredential> {
        let secret = self.secret(key)?;
        if secret.expose_secret().is_empty() {
            return Err(self.missing(key));
        }
        Ok(secret)
    }

    /// The secret under `key`, if it can go into an HTTP header as is (non-empty, visible ASCII).
    /// Checked when the request is built, so a bad value in configuration fails there, not in the
    /// executor (or worse, in the header line).
    pub fn header_secret(&self, key: &'static str) -> Result<&SecretString, BuildError> {
        let secret = self.nonempty_secret(key)?;
        if !secret.expose_secret().bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BuildError::UnsendableCredential { account: self.name.clone(), key });
        }
        Ok(secret)
    }

    pub fn setting(&self, key: &'static str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// Every secret value of this account, exposed: for leak checks only (log scrubbing, tests).
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.secrets.values().map(|s| s.expose_secret())
    }

    fn missing(&self, key: &'static str) -> MissingCredential {
        MissingCredential { account: self.name.clone(), key }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_values() {
        let account = Account::new("default").with_secret("token", "tok_very_secret").with_setting("default_note", "n");
        let printed = format!("{account:?}");
        assert!(!printed.contains("tok_very_secret"), "{printed}");
        assert!(printed.contains("token"));
    }

    #[test]
    fn missing_secret_names_account_and_key() {
        let err = Account::new("eu").secret("api_key").unwrap_err();
        assert_eq!(err.to_string(), "account `eu` has no `api_key`");
    }
}
