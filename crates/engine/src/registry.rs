//! The one place that knows which providers exist: adding a provider is a line here.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cancelgate_core::{Account, CancelProvider};
use secrecy::ExposeSecret;

use crate::executor::Executor;
use crate::resilience::{ProviderGuard, QuotaStore};
use crate::settings::{EngineSettings, ProviderSettings, RateLimitScope, SettingsError};

/// Every adapter the gateway was built with.
pub fn adapters() -> Vec<Arc<dyn CancelProvider>> {
    vec![
        Arc::new(cancelgate_provider_chargeapi::ChargeApi),
        Arc::new(cancelgate_provider_frontpayment::FrontPayment),
        Arc::new(cancelgate_provider_accommodation::Accommodation),
    ]
}

/// A configured provider, ready to be called.
#[derive(Debug)]
pub struct ProviderEntry {
    pub adapter: Arc<dyn CancelProvider>,
    pub settings: ProviderSettings,
    pub accounts: BTreeMap<String, Account>,
    pub executor: Executor,
    /// Rate limit, circuit breaker, bulkhead and retry budget of this provider.
    pub guard: ProviderGuard,
}

impl ProviderEntry {
    pub fn id(&self) -> &'static str {
        self.adapter.id().as_str()
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    providers: BTreeMap<&'static str, Arc<ProviderEntry>>,
}

/// What a request for a provider id finds.
#[derive(Debug)]
pub enum Lookup<'a> {
    Ready(&'a Arc<ProviderEntry>),
    /// Known but disabled, or not configured on this gateway.
    Unavailable,
    Unknown,
}

impl Registry {
    /// Every configured provider, checked: its adapter known, its accounts resolved, its
    /// executor and guard built.
    pub fn build<'a>(settings: impl Into<EngineSettings<'a>>) -> Result<Self, SettingsError> {
        let settings = settings.into();
        let adapters = adapters();
        let mut providers = BTreeMap::new();
        // One connection for every shared quota; made (and checked) only when a provider uses one.
        let uses_store = settings.providers.values().any(|p| p.rate_limit.scope == RateLimitScope::Shared);
        let store = match settings.redis {
            Some(redis) if uses_store => Some(QuotaStore::new(redis).map_err(|e| {
                SettingsError::invalid("redis.url", format!("not a usable Redis URL ({:?})", e.kind()))
            })?),
            _ => None,
        };
        for (id, provider_settings) in settings.providers {
            let Some(adapter) = adapters.iter().find(|a| a.id().as_str() == id) else {
                let known: Vec<_> = adapters.iter().map(|a| a.id().as_str()).collect();
                return Err(SettingsError::invalid(
                    format!("providers.{id}"),
                    format!("unknown provider (known: {})", known.join(", ")),
                ));
            };
            let accounts = resolve_accounts(adapter.as_ref(), id, provider_settings)?;
            let executor = Executor::new(provider_settings)
                .map_err(|e| SettingsError::invalid(format!("providers.{id}"), e.to_string()))?;
            let guard = ProviderGuard::new(adapter.id().as_str(), provider_settings, store.as_ref());
            let entry = ProviderEntry {
                adapter: adapter.clone(),
                settings: provider_settings.clone(),
                accounts,
                executor,
                guard,
            };
            providers.insert(adapter.id().as_str(), Arc::new(entry));
        }
        Ok(Self { providers })
    }

    pub fn lookup(&self, id: &str) -> Lookup<'_> {
        match self.providers.get(id) {
            Some(entry) if entry.settings.enabled => Lookup::Ready(entry),
            Some(_) => Lookup::Unavailable,
            None if adapters().iter().any(|a| a.id().as_str() == id) => Lookup::Unavailable,
            None => Lookup::Unknown,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ProviderEntry>> {
        self.providers.get(id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<ProviderEntry>> {
        self.providers.values()
    }

    /// Every configured secret value, for scrubbing and leak tests.
    pub fn secret_values(&self) -> Vec<String> {
        self.entries()
            .flat_map(|e| e.accounts.values().flat_map(|a| a.secret_values().map(str::to_owned).collect::<Vec<_>>()))
            .collect()
    }
}

/// Turn raw account tables into [`Account`]s: exactly the adapter's credential fields, each given
/// inline or as `{key}_file` (a path whose content, without the trailing newline, is the value).
fn resolve_accounts(
    adapter: &dyn CancelProvider,
    id: &str,
    settings: &ProviderSettings,
) -> Result<BTreeMap<String, Account>, SettingsError> {
    let mut accounts = BTreeMap::new();
    for (name, raw) in &settings.accounts {
        let key_of = |k: &str| format!("providers.{id}.accounts.{name}.{k}");
        for given in raw.keys() {
            let base = given.strip_suffix("_file").unwrap_or(given);
            if !adapter.credential_fields().iter().any(|f| f.key == base) {
                let expected: Vec<_> = adapter.credential_fields().iter().map(|f| f.key).collect();
                return Err(SettingsError::invalid(
                    key_of(given),
                    format!("unknown key (expected: {})", expected.join(", ")),
                ));
            }
        }
        let mut account = Account::new(name.clone());
        for field in adapter.credential_fields() {
            let file_key = format!("{}_file", field.key);
            let value = match (raw.get(field.key), raw.get(&file_key)) {
                (Some(_), Some(_)) => {
                    return Err(SettingsError::invalid(
                        key_of(field.key),
                        format!("set either it or `{file_key}`, not both"),
                    ));
                }
                (Some(v), None) => Some(v.expose_secret().to_owned()),
                (None, Some(path)) => Some(read_secret_file(Path::new(path.expose_secret()), &key_of(&file_key))?),
                (None, None) if field.required => {
                    return Err(SettingsError::invalid(key_of(field.key), format!("missing (or `{file_key}`)")));
                }
                (None, None) => None,
            };
            if let Some(value) = value {
                if field.required && value.is_empty() {
                    return Err(SettingsError::invalid(key_of(field.key), "must not be empty"));
                }
                account = if field.secret {
                    account.with_secret(field.key, value)
                } else {
                    account.with_setting(field.key, value)
                };
            }
        }
        accounts.insert(name.clone(), account);
    }
    Ok(accounts)
}

fn read_secret_file(path: &Path, key: &str) -> Result<String, SettingsError> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::invalid(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(content.trim_end_matches(['\n', '\r']).to_owned())
}
