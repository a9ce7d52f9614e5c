//! The `webhooks.*` settings of SPEC §8, as read, and the checked endpoints built from them.
//! Every bad value fails at start naming its key; a URL is only ever shown as
//! scheme://host:port (it may carry a token) and a secret never.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::sign::Signer;
use crate::settings::{SettingsError, secret};

/// SPEC §8's default retry schedule (delays before each retry, seconds): about three days.
pub const DEFAULT_RETRY_SCHEDULE_S: [u64; 9] = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

/// The event types an endpoint may subscribe to (`events`).
pub use cancelgate_ledger::EVENT_TYPES;

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointSettings>,
    #[serde(default = "default_schedule")]
    pub retry_schedule_s: Vec<u64>,
    /// How often the outbox is polled besides the wake-up after each commit that stores an event
    /// (deliveries of other replicas, retries coming due, leases expired).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// Deliveries in flight at once in this process (each holds one connection).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            endpoints: BTreeMap::new(),
            retry_schedule_s: default_schedule(),
            poll_ms: default_poll_ms(),
            max_in_flight: default_max_in_flight(),
        }
    }
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("endpoints", &self.endpoints)
            .field("retry_schedule_s", &self.retry_schedule_s)
            .field("poll_ms", &self.poll_ms)
            .field("max_in_flight", &self.max_in_flight)
            .finish()
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// `http://` or `https://`; may hold a token (never printed whole).
    #[serde(default, serialize_with = "shown_url_of")]
    pub url: String,
    #[serde(default, serialize_with = "secret::optional_secret")]
    pub secret: Option<SecretString>,
    /// A file holding the secret; read at load, it wins over `secret`.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The secret being rotated out: deliveries carry both signatures while it is set.
    #[serde(default, serialize_with = "secret::optional_secret")]
    pub previous_secret: Option<SecretString>,
    #[serde(default)]
    pub previous_secret_file: Option<PathBuf>,
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    #[serde(default = "all_clients")]
    pub clients: Vec<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl fmt::Debug for EndpointSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointSettings")
            .field("url", &shown_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("secret_file", &self.secret_file)
            .field("previous_secret", &self.previous_secret.as_ref().map(|_| "[REDACTED]"))
            .field("previous_secret_file", &self.previous_secret_file)
            .field("events", &self.events)
            .field("clients", &self.clients)
            .field("timeout_ms", &self.timeout_ms)
            .field("enabled", &self.enabled)
            .finish()
    }
}

fn default_schedule() -> Vec<u64> {
    DEFAULT_RETRY_SCHEDULE_S.to_vec()
}
fn default_poll_ms() -> u64 {
    1_000
}
fn default_max_in_flight() -> usize {
    32
}
fn all_events() -> Vec<String> {
    EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect()
}
fn all_clients() -> Vec<String> {
    vec!["*".to_owned()]
}
fn default_timeout_ms() -> u64 {
    15_000
}
fn yes() -> bool {
    true
}

/// An endpoint URL as it may be shown: scheme://host:port, nothing of its path, query or user.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            _ => "[unparsable URL]".to_owned(),
        },
        Err(_) => "[unparsable URL]".to_owned(),
    }
}

/// An endpoint URL as the redacted view shows it (`shown_url`).
fn shown_url_of<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&shown_url(url))
}

/// Reads every `*_file` secret into its key (called at load, like the other `*_file` keys).
pub fn load_secret_files(webhooks: &mut WebhookSettings) -> Result<(), SettingsError> {
    for (name, e) in &mut webhooks.endpoints {
        for (file, target, key) in [
            (&e.secret_file, &mut e.secret, "secret_file"),
            (&e.previous_secret_file, &mut e.previous_secret, "previous_secret_file"),
        ] {
            if let Some(path) = file {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    SettingsError::invalid(
                        format!("webhooks.endpoints.{name}.{key}"),
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                *target = Some(SecretString::from(text.trim().to_owned()));
            }
        }
    }
    Ok(())
}

/// One endpoint, checked. `Debug` shows the URL as scheme://host:port only.
#[derive(Clone)]
pub struct Endpoint {
    pub name: String,
    pub url: url::Url,
    /// scheme://host:port, for logs and answers.
    pub shown: String,
    pub signer: Signer,
    pub events: Vec<&'static str>,
    /// Client names whose cancellations it takes; `*` takes all.
    pub clients: Vec<String>,
    pub timeout: Duration,
    pub enabled: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.shown)
            .field("signer", &self.signer)
            .field("events", &self.events)
            .field("clients", &self.clients)
            .field("timeout", &self.timeout)
            .field("enabled", &self.enabled)
            .finish()
    }
}

impl Endpoint {
    /// Whether this endpoint takes events of `kind` about a cancellation of `client`.
    pub fn takes(&self, kind: &str, client: &str) -> bool {
        self.enabled && self.events.contains(&kind) && self.clients.iter().any(|c| c == "*" || c == client)
    }
}

/// The checked `webhooks` section.
#[derive(Debug, Clone)]
pub struct Webhooks {
    pub endpoints: Vec<Endpoint>,
    pub retry_schedule: Vec<Duration>,
    pub poll: Duration,
    pub max_in_flight: usize,
}

impl Webhooks {
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// Checks the section; each failure names its key.
    pub fn from_settings(s: &WebhookSettings) -> Result<Webhooks, SettingsError> {
        if s.retry_schedule_s.is_empty() {
            return Err(SettingsError::invalid("webhooks.retry_schedule_s", "must list at least one delay"));
        }
        if s.retry_schedule_s.iter().any(|d| *d == 0 || *d > 7 * 86_400) {
            return Err(SettingsError::invalid(
                "webhooks.retry_schedule_s",
                "each delay is a whole number of seconds from 1 to 604800 (7 days)",
            ));
        }
        if s.poll_ms == 0 {
            return Err(SettingsError::invalid("webhooks.poll_ms", "must be at least 1 ms"));
        }
        if s.max_in_flight == 0 {
            return Err(SettingsError::invalid("webhooks.max_in_flight", "must be at least 1"));
        }
        let mut endpoints = Vec::with_capacity(s.endpoints.len());
        for (name, e) in &s.endpoints {
            endpoints.push(endpoint(name, e)?);
        }
        Ok(Webhooks {
            endpoints,
            retry_schedule: s.retry_schedule_s.iter().map(|d| Duration::from_secs(*d)).collect(),
            poll: Duration::from_millis(s.poll_ms),
            max_in_flight: s.max_in_flight,
        })
    }
}

fn endpoint(name: &str, e: &EndpointSettings) -> Result<Endpoint, SettingsError> {
    let key = |k: &str| format!("webhooks.endpoints.{name}.{k}");
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if !name_ok {
        return Err(SettingsError::invalid(format!("webhooks.endpoints.{name}"), "a name is 1-64 of A-Z a-z 0-9 _ -"));
    }
    // The URL's text is never quoted back: it may hold a token.
    let url = match url::Url::parse(&e.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => u,
        Ok(_) => return Err(SettingsError::invalid(key("url"), "must be an http:// or https:// URL with a host")),
        Err(_) if e.url.is_empty() => return Err(SettingsError::invalid(key("url"), "missing")),
        Err(_) => return Err(SettingsError::invalid(key("url"), "is not a valid URL")),
    };
    let Some(secret) = &e.secret else {
        return Err(SettingsError::invalid(key("secret"), "missing: set `secret` or `secret_file`"));
    };
    let mut secrets = vec![check_secret(&key("secret"), secret)?];
    if let Some(previous) = &e.previous_secret {
        secrets.push(check_secret(&key("previous_secret"), previous)?);
    }
    let mut events = Vec::with_capacity(e.events.len());
    for event in &e.events {
        let Some(known) = EVENT_TYPES.iter().find(|t| **t == event.as_str()) else {
            return Err(SettingsError::invalid(
                key("events"),
                format!("unknown event type {event:?}; known: {}", EVENT_TYPES.join(", ")),
            ));
        };
        events.push(*known);
    }
    if e.clients.is_empty() || e.clients.iter().any(String::is_empty) {
        return Err(SettingsError::invalid(key("clients"), "list client names, or [\"*\"] for all"));
    }
    if e.timeout_ms == 0 || e.timeout_ms > 300_000 {
        return Err(SettingsError::invalid(key("timeout_ms"), "must be from 1 to 300000 ms"));
    }
    Ok(Endpoint {
        name: name.to_owned(),
        shown: shown_url(url.as_str()),
        url,
        signer: Signer::new(&secrets),
        events,
        clients: e.clients.clone(),
        timeout: Duration::from_millis(e.timeout_ms),
        enabled: e.enabled,
    })
}

/// `whsec_` + base64 of 24 to 64 bytes (SPEC §8). The message never quotes the value.
fn check_secret(key: &str, secret: &SecretString) -> Result<SecretString, SettingsError> {
    let text = secret.expose_secret();
    let Some(encoded) = text.strip_prefix("whsec_") else {
        return Err(SettingsError::invalid(key, "must start with `whsec_` (then the base64 of 24 to 64 bytes)"));
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| SettingsError::invalid(key, "the part after `whsec_` is not valid base64"))?;
    if !(24..=64).contains(&decoded.len()) {
        return Err(SettingsError::invalid(
            key,
            format!("decodes to {} bytes; a secret has 24 to 64 bytes", decoded.len()),
        ));
    }
    Ok(SecretString::from(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::settings::Settings;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const GATEWAY: &str = "listen = \"127.0.0.1:0\"\n[ledger]\nurl = \"sqlite://x.db\"\n";

    /// Loads a config directory whose gateway.toml carries `webhooks`; the error's text.
    fn load(webhooks: &str, env: &[(&str, &str)]) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gateway.toml"), format!("{GATEWAY}{webhooks}")).unwrap();
        let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::load_with_env(dir.path(), Some(env)).map_err(|e| e.to_string())
    }

    fn endpoint(body: &str) -> String {
        format!("[webhooks.endpoints.ops]\n{body}\n")
    }

    #[test]
    fn defaults_are_spec_s() {
        let s = load(&endpoint(&format!("url = \"https://hooks.example.com/x\"\nsecret = \"{SECRET}\"")), &[]).unwrap();
        let w = Webhooks::from_settings(&s.webhooks).unwrap();
        assert_eq!(w.retry_schedule.len(), 9);
        assert_eq!(w.retry_schedule[8], Duration::from_secs(86_400));
        let e = &w.endpoints[0];
        assert_eq!(
            (e.timeout, e.enabled, e.clients.as_slice()),
            (Duration::from_secs(15), true, &["*".to_owned()][..])
        );
        assert_eq!(e.events, EVENT_TYPES);
        assert!(e.takes("cancellation.failed", "anyone"));
        // The shipped default: no endpoint at all.
        assert!(Webhooks::from_settings(&WebhookSettings::default()).unwrap().endpoints.is_empty());
    }

    #[test]
    fn every_bad_value_fails_at_start_naming_its_key() {
        let ok_url = "url = \"https://hooks.example.com/x\"";
        let ok_secret = format!("secret = \"{SECRET}\"");
        let short = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 23]));
        let long = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 65]));
        let cases = [
            (endpoint(&format!("url = \"ftp://h/x\"\n{ok_secret}")), "webhooks.endpoints.ops.url"),
            (endpoint(&format!("url = \"not a url\"\n{ok_secret}")), "webhooks.endpoints.ops.url"),
            (endpoint(&ok_secret), "webhooks.endpoints.ops.url"),
            (endpoint(ok_url), "webhooks.endpoints.ops.secret"),
            (
                endpoint(&format!("{ok_url}\nsecret = \"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"")),
                "webhooks.endpoints.ops.secret",
            ),
            (endpoint(&format!("{ok_url}\nsecret = \"whsec_not*base64\"")), "webhooks.endpoints.ops.secret"),
            (endpoint(&format!("{ok_url}\nsecret = \"{short}\"")), "webhooks.endpoints.ops.secret"),
            (endpoint(&format!("{ok_url}\nsecret = \"{long}\"")), "webhooks.endpoints.ops.secret"),
            (
                endpoint(&format!("{ok_url}\n{ok_secret}\nprevious_secret = \"whsec_x\"")),
                "webhooks.endpoints.ops.previous_secret",
            ),
            (
                endpoint(&format!("{ok_url}\n{ok_secret}\nevents = [\"cancellation.done\"]")),
                "webhooks.endpoints.ops.events",
            ),
            (endpoint(&format!("{ok_url}\n{ok_secret}\ntimeout_ms = 0")), "webhooks.endpoints.ops.timeout_ms"),
            (endpoint(&format!("{ok_url}\n{ok_secret}\nclients = []")), "webhooks.endpoints.ops.clients"),
            (
                endpoint(&format!("{ok_url}\n{ok_secret}\nsecret_file = \"/nonexistent/secret\"")),
                "webhooks.endpoints.ops.secret_file",
            ),
            ("[webhooks]\nretry_schedule_s = []\n".to_owned(), "webhooks.retry_schedule_s"),
            ("[webhooks]\nretry_schedule_s = [5, 0]\n".to_owned(), "webhooks.retry_schedule_s"),
        ];
        for (toml, key) in cases {
            let error = load(&toml, &[]).err().unwrap_or_else(|| panic!("accepted: {toml}"));
            assert!(error.contains(key), "{toml}: {error}");
            assert!(!error.contains("MfKQ9r8G") && !error.contains("/x\""), "the value is never quoted: {error}");
        }
        // An unknown member of an endpoint is refused too.
        assert!(load(&endpoint(&format!("{ok_url}\n{ok_secret}\nsecrets = 1")), &[]).is_err());
    }

    #[test]
    fn secrets_come_from_env_or_file_and_are_never_shown() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("{SECRET}\n")).unwrap();
        let toml = endpoint(&format!(
            "url = \"https://user:pw@hooks.example.com:8443/in/tok_Q9z?k=tok_Q9z\"\nsecret_file = \"{}\"",
            file.path().display()
        ));
        let s = load(
            &toml,
            &[("CANCELGATE__WEBHOOKS__ENDPOINTS__OPS__PREVIOUS_SECRET", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")],
        )
        .unwrap();
        let w = Webhooks::from_settings(&s.webhooks).unwrap();
        let e = &w.endpoints[0];
        assert_eq!(e.shown, "https://hooks.example.com:8443");
        let header = e.signer.signature("msg_1", 1, "{}").unwrap();
        assert_eq!(header.split(' ').count(), 2, "rotation: two signatures");
        let shown = format!("{}\n{s:?}\n{w:?}", crate::settings::Redacted(&s));
        for secret in ["MfKQ9r8G", "C2FVsBQI", "tok_Q9z", "pw@", "user:"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert!(shown.contains("webhooks.endpoints.ops.url = \"https://hooks.example.com:8443\""), "{shown}");
        assert!(shown.contains("webhooks.endpoints.ops.secret = \"[REDACTED]\""), "{shown}");
        assert!(shown.contains("webhooks.endpoints.ops.previous_secret = \"[REDACTED]\""), "{shown}");
    }
}
