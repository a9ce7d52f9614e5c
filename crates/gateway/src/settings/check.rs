//! Checks serde cannot express; each failure names the key.

use super::{RateLimitScope, RedisSettings, Settings, SettingsError};

impl Settings {
    /// Checks serde cannot express; each failure names the key.
    pub(super) fn check(&self) -> Result<(), SettingsError> {
        if self.limits.max_body_bytes == 0 {
            return Err(SettingsError::invalid("limits.max_body_bytes", "must be at least 1"));
        }
        // Keys are kept at least 24 hours (SPEC §2), and a purge takes a record's key with it.
        if self.ledger.retain_days == Some(0) {
            return Err(SettingsError::invalid("ledger.retain_days", "must be at least 1 (or unset: keep everything)"));
        }
        // At most the contract's 8 hours: a longer session would outlive what operators are told.
        if !(1..=8 * 3600).contains(&self.console.session_s) {
            return Err(SettingsError::invalid("console.session_s", "must be from 1 to 28800 (8 hours)"));
        }
        for (key, value) in [
            ("limits.header_read_timeout_ms", self.limits.header_read_timeout_ms),
            ("limits.body_read_timeout_ms", self.limits.body_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(SettingsError::invalid(key, "must be at least 1 ms"));
            }
        }
        // hyper needs room for at least a request line and a few headers.
        if self.limits.max_header_bytes < 1024 {
            return Err(SettingsError::invalid("limits.max_header_bytes", "must be at least 1024"));
        }
        if self.limits.max_headers == 0 {
            return Err(SettingsError::invalid("limits.max_headers", "must be at least 1"));
        }
        for (name, client) in &self.clients {
            let hash = &client.key_sha256;
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(SettingsError::invalid(
                    format!("clients.{name}.key_sha256"),
                    "must be 64 hex digits (the SHA-256 of the client key)",
                ));
            }
            if let Err(e) = client.scopes() {
                return Err(SettingsError::invalid(format!("clients.{name}.scopes"), e.to_string()));
            }
            if client.rate_limit.per_second == 0 {
                return Err(SettingsError::invalid(
                    format!("clients.{name}.rate_limit.per_second"),
                    "must be at least 1",
                ));
            }
        }
        for (id, provider) in &self.providers {
            let key = |k: &str| format!("providers.{id}.{k}");
            if !matches!(provider.base_url.scheme(), "http" | "https") {
                return Err(SettingsError::invalid(key("base_url"), "must be an http:// or https:// URL"));
            }
            if provider.timeout_ms == 0 || provider.connect_timeout_ms == 0 {
                return Err(SettingsError::invalid(key("timeout_ms"), "timeouts must be at least 1 ms"));
            }
            if provider.retry.max_attempts == 0 {
                return Err(SettingsError::invalid(key("retry.max_attempts"), "must be at least 1"));
            }
            if provider.max_in_flight == 0 {
                return Err(SettingsError::invalid(key("max_in_flight"), "must be at least 1"));
            }
            if !(1..=cancelgate_engine::settings::MAX_CONNECTIONS).contains(&provider.max_connections) {
                return Err(SettingsError::invalid(key("max_connections"), "must be 1 to 1000000"));
            }
            if provider.rate_limit.per_second == 0 {
                return Err(SettingsError::invalid(key("rate_limit.per_second"), "must be at least 1"));
            }
            if provider.rate_limit.burst == Some(0) {
                return Err(SettingsError::invalid(key("rate_limit.burst"), "must be at least 1"));
            }
            if provider.rate_limit.scope == RateLimitScope::Shared && self.redis.is_none() {
                return Err(SettingsError::invalid(
                    key("rate_limit.scope"),
                    "`shared` needs a Redis: set `redis.url` (or `redis.url_file`)",
                ));
            }
            let cb = &provider.circuit_breaker;
            if !(cb.failure_rate > 0.0 && cb.failure_rate <= 1.0) {
                return Err(SettingsError::invalid(key("circuit_breaker.failure_rate"), "must be in (0, 1]"));
            }
            if !(0.0..=1.0).contains(&provider.retry.budget_ratio) {
                return Err(SettingsError::invalid(key("retry.budget_ratio"), "must be in [0, 1]"));
            }
            // The lease is renewed between attempts: it must outlast one attempt and the pause
            // before the next, or another replica could take the record over mid-attempt and send
            // a second cancel at the same time.
            let needed = provider.connect_timeout_ms + provider.timeout_ms + provider.retry.backoff_max_ms;
            if self.ledger.lease_ms <= needed {
                return Err(SettingsError::invalid(
                    "ledger.lease_ms",
                    format!(
                        "must be longer than providers.{id}'s connect_timeout_ms + timeout_ms + retry.backoff_max_ms ({needed} ms)"
                    ),
                ));
            }
        }
        if let Some(redis) = &self.redis {
            check_redis(redis)?;
        }
        crate::webhooks::Webhooks::from_settings(&self.webhooks)?;
        Ok(())
    }
}

fn check_redis(redis: &RedisSettings) -> Result<(), SettingsError> {
    use secrecy::ExposeSecret;
    let url = redis.url.expose_secret();
    if url.is_empty() {
        return Err(SettingsError::invalid("redis.url", "missing: set `redis.url` or `redis.url_file`"));
    }
    // The URL's own text is never quoted back: it may hold a password.
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => return Err(SettingsError::invalid("redis.url", "must be a redis://host:port URL")),
    }
    if redis.timeout_ms == 0 {
        return Err(SettingsError::invalid("redis.timeout_ms", "must be at least 1 ms"));
    }
    let prefix_ok = !redis.key_prefix.is_empty()
        && redis.key_prefix.len() <= 64
        && redis.key_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
    if !prefix_ok {
        return Err(SettingsError::invalid("redis.key_prefix", "1-64 of A-Z a-z 0-9 _ - : ."));
    }
    Ok(())
}
