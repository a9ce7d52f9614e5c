use std::collections::HashMap;

use super::*;
use crate::registry::Registry;
use secrecy::ExposeSecret;

const GATEWAY: &str = "listen = \"127.0.0.1:0\"\n[ledger]\nurl = \"sqlite://x.db\"\n";
const CHARGEAPI: &str = "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_key = \"sk_file_value\"\n";

fn dir_with(gateway: &str, chargeapi: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("providers")).unwrap();
    std::fs::write(dir.path().join("gateway.toml"), gateway).unwrap();
    std::fs::write(dir.path().join("providers/chargeapi.toml"), chargeapi).unwrap();
    dir
}

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

#[test]
fn files_merge_and_env_overrides_win() {
    let dir = dir_with(GATEWAY, CHARGEAPI);
    let s = Settings::load_with_env(
        dir.path(),
        env(&[
            ("CANCELGATE__PROVIDERS__CHARGEAPI__TIMEOUT_MS", "1234"),
            ("CANCELGATE__LEDGER__URL", "postgres://u:pw@db/x"),
            ("CANCELGATE__LISTEN", "127.0.0.1:9"),
        ]),
    )
    .unwrap();
    let chargeapi = &s.providers["chargeapi"];
    assert_eq!(chargeapi.timeout_ms, 1234);
    assert_eq!(chargeapi.circuit_breaker.min_calls, 20, "defaults of SPEC §5");
    assert_eq!(chargeapi.max_in_flight, 256);
    assert_eq!(s.ledger.lease_ms, 15_000);
    assert_eq!(s.limits.max_body_bytes, 64 * 1024);
    assert_eq!(s.ledger.url.expose_secret(), "postgres://u:pw@db/x");
    assert_eq!(s.listen.port(), 9);
    assert!(!format!("{s:?}").contains("pw@"), "the ledger URL may hold a password");
}

#[test]
fn a_bad_value_names_the_file_and_key() {
    let dir = dir_with(GATEWAY, &format!("timeout_ms = \"soon\"\n{CHARGEAPI}"));
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("providers/chargeapi.toml") && e.contains("providers.chargeapi.timeout_ms"), "{e}");
    let dir = dir_with(&format!("{GATEWAY}typo = 1\n"), CHARGEAPI);
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("gateway.toml") && e.contains("typo"), "{e}");
}

#[test]
fn secrets_come_from_files_and_unknown_or_missing_keys_fail() {
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "sk_from_file\n").unwrap();
    let chargeapi = format!(
        "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_key_file = \"{}\"\n",
        secret_file.path().display()
    );
    let dir = dir_with(GATEWAY, &chargeapi);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    let registry = Registry::build(&s).unwrap();
    assert_eq!(registry.secret_values(), vec!["sk_from_file".to_owned()]);

    let dir = dir_with(GATEWAY, "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\nsecret_kee = \"x\"\n");
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    let e = Registry::build(&s).unwrap_err().to_string();
    assert!(e.contains("providers.chargeapi.accounts.default.secret_kee"), "{e}");

    let dir = dir_with(GATEWAY, "base_url = \"http://127.0.0.1:1\"\n[accounts.default]\n");
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    let e = Registry::build(&s).unwrap_err().to_string();
    assert!(e.contains("providers.chargeapi.accounts.default.secret_key: missing"), "{e}");
}

#[test]
fn client_grants_come_from_a_list_or_a_comma_separated_env_value() {
    let hash = "0".repeat(64);
    let dir =
        dir_with(&format!("{GATEWAY}[clients.a]\nkey_sha256 = \"{hash}\"\nproviders = [\"chargeapi\"]\n"), CHARGEAPI);
    let s = Settings::load_with_env(
        dir.path(),
        env(&[
            ("CANCELGATE__CLIENTS__B__KEY_SHA256", &hash),
            ("CANCELGATE__CLIENTS__B__PROVIDERS", "chargeapi/eu, frontpayment"),
        ]),
    )
    .unwrap();
    assert_eq!(s.clients["a"].providers, ["chargeapi"]);
    assert_eq!(s.clients["b"].providers, ["chargeapi/eu", "frontpayment"]);
}

#[test]
fn client_scopes_default_come_from_a_list_or_env_and_unknown_ones_name_the_key() {
    use crate::clients::{Scope, Scopes};
    let hash = "0".repeat(64);
    let dir = dir_with(
        &format!(
            "{GATEWAY}[clients.a]\nkey_sha256 = \"{hash}\"\n[clients.r]\nkey_sha256 = \"{hash}\"\nscopes = [\"read\"]\n"
        ),
        CHARGEAPI,
    );
    let s = Settings::load_with_env(
        dir.path(),
        env(&[("CANCELGATE__CLIENTS__B__KEY_SHA256", &hash), ("CANCELGATE__CLIENTS__B__SCOPES", "cancel, operate")]),
    )
    .unwrap();
    assert_eq!(s.clients["a"].scopes().unwrap(), Scopes::DEFAULT, "absent: cancel and read");
    assert_eq!(s.clients["r"].scopes().unwrap(), Scopes::from_names(&["read"]).unwrap());
    let b = s.clients["b"].scopes().unwrap();
    assert!(b.contains(Scope::Cancel) && b.contains(Scope::Operate) && !b.contains(Scope::Read));
    assert!(Redacted(&s).to_string().contains("clients.r.scopes = [\"read\"]"));

    let e = Settings::load_with_env(dir.path(), env(&[("CANCELGATE__CLIENTS__R__SCOPES", "read,admin")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("clients.r.scopes") && e.contains("admin"), "{e}");
}

#[test]
fn the_shipped_demo_client_has_every_scope() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let s = Settings::load_with_env(&dir, env(&[])).unwrap();
    let demo = s.clients["demo"].scopes().unwrap();
    assert!(crate::clients::Scope::ALL.into_iter().all(|scope| demo.contains(scope)), "{demo:?}");
}

/// Every section and every tunable of the shipped configuration is shown; no secret is.
#[test]
fn the_redacted_view_shows_every_section_and_no_secret() {
    let redis = "[redis]\nurl = \"redis://:redis_pw_value@127.0.0.1:6379\"\n";
    let dir = dir_with(&format!("{GATEWAY}{redis}"), CHARGEAPI);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    let shown = Redacted(&s).to_string();
    println!("{shown}");
    for key in [
        "listen",
        "ledger.url",
        "ledger.lease_ms",
        "ledger.migrate_on_start",
        "ledger.max_connections",
        "ledger.sqlite_synchronous",
        "limits.max_body_bytes",
        "limits.shutdown_grace_ms",
        "redis.url",
        "redis.key_prefix",
        "redis.timeout_ms",
        "providers.chargeapi.max_response_bytes",
        "providers.chargeapi.retry.max_attempts",
        "providers.chargeapi.retry.backoff_base_ms",
        "providers.chargeapi.retry.backoff_max_ms",
        "providers.chargeapi.retry.budget_ratio",
        "providers.chargeapi.rate_limit.burst",
        "providers.chargeapi.circuit_breaker.failure_rate",
        "providers.chargeapi.circuit_breaker.min_calls",
        "providers.chargeapi.circuit_breaker.window_s",
        "providers.chargeapi.circuit_breaker.open_s",
        "providers.chargeapi.accounts.default.secret_key",
        "log.format",
        "log.level",
    ] {
        assert!(shown.lines().any(|l| l.starts_with(&format!("{key} = "))), "{key} missing:\n{shown}");
    }
    for secret in ["sk_file_value", "redis_pw_value", "x.db"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
}

#[test]
fn connection_limits_have_defaults_and_are_checked() {
    let dir = dir_with(GATEWAY, CHARGEAPI);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    assert_eq!((s.limits.header_read_timeout_ms, s.limits.body_read_timeout_ms), (10_000, 10_000));
    assert_eq!((s.limits.max_header_bytes, s.limits.max_headers), (16 * 1024, 64));
    assert_eq!(s.limits.drain_ms, 5_000, "SPEC §12");
    let shown = Redacted(&s).to_string();
    assert!(shown.contains("limits.drain_ms = 5000") && shown.contains("limits.shutdown_grace_ms = 10000"), "{shown}");
    let e = Settings::load_with_env(dir.path(), env(&[("CANCELGATE__LIMITS__BODY_READ_TIMEOUT_MS", "0")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("limits.body_read_timeout_ms"), "{e}");
}

#[test]
fn retention_keeps_everything_unless_set_and_at_least_a_day() {
    let dir = dir_with(GATEWAY, CHARGEAPI);
    assert_eq!(Settings::load_with_env(dir.path(), env(&[])).unwrap().ledger.retain_days, None);
    let dir = dir_with(&format!("{GATEWAY}retain_days = 30\n"), CHARGEAPI);
    assert_eq!(Settings::load_with_env(dir.path(), env(&[])).unwrap().ledger.retain_days, Some(30));
    let dir = dir_with(&format!("{GATEWAY}retain_days = 0\n"), CHARGEAPI);
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("ledger.retain_days"), "{e}");
}

#[test]
fn a_lease_shorter_than_an_attempt_is_refused() {
    let dir = dir_with(&format!("{GATEWAY}lease_ms = 3000\n"), CHARGEAPI);
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("ledger.lease_ms") && e.contains("providers.chargeapi"), "{e}");
}

#[test]
fn a_shared_quota_needs_a_usable_redis_and_its_url_is_never_printed() {
    let shared = format!("{CHARGEAPI}[rate_limit]\nper_second = 5\nscope = \"shared\"\n");
    let dir = dir_with(GATEWAY, &shared);
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("providers.chargeapi.rate_limit.scope") && e.contains("redis.url"), "{e}");
    let with_redis = |url: &str| {
        Settings::load_with_env(
            dir.path(),
            env(&[("CANCELGATE__REDIS__URL", url), ("CANCELGATE__REDIS__KEY_PREFIX", "fleet-a")]),
        )
    };
    for bad in ["http://127.0.0.1:6379", "redis://", "not a url :pw@x"] {
        let e = with_redis(bad).unwrap_err().to_string();
        assert!(e.contains("redis.url") && !e.contains(":pw@"), "{bad}: {e}");
    }
    let s = with_redis("redis://:s3cret@127.0.0.1:6379/0").unwrap();
    let limit = &s.providers["chargeapi"].rate_limit;
    assert_eq!(
        (limit.scope, limit.on_store_error, limit.burst_or_default()),
        (RateLimitScope::Shared, OnStoreError::Local, 5)
    );
    let shown = format!("{}{s:?}", Redacted(&s));
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("providers.chargeapi.rate_limit.scope = \"shared\"") && shown.contains("redis.key_prefix"),
        "{shown}"
    );
    let e = Settings::load_with_env(
        dir.path(),
        env(&[
            ("CANCELGATE__REDIS__URL", "redis://x"),
            ("CANCELGATE__PROVIDERS__CHARGEAPI__RATE_LIMIT__ON_STORE_ERROR", "maybe"),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("on_store_error"), "{e}");
}

#[test]
fn max_connections_defaults_comes_from_a_file_or_the_environment_and_is_shown() {
    let dir = dir_with(GATEWAY, CHARGEAPI);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    assert_eq!(s.providers["chargeapi"].max_connections, 256);
    assert!(Redacted(&s).to_string().contains("providers.chargeapi.max_connections = 256"));
    let dir = dir_with(GATEWAY, &format!("max_connections = 8\n{CHARGEAPI}"));
    assert_eq!(Settings::load_with_env(dir.path(), env(&[])).unwrap().providers["chargeapi"].max_connections, 8);
    let key = "CANCELGATE__PROVIDERS__CHARGEAPI__MAX_CONNECTIONS";
    let s = Settings::load_with_env(dir.path(), env(&[(key, "32")])).unwrap();
    assert_eq!(s.providers["chargeapi"].max_connections, 32);
    for bad in ["0", "1000001"] {
        let e = Settings::load_with_env(dir.path(), env(&[(key, bad)])).unwrap_err().to_string();
        assert!(e.contains("providers.chargeapi.max_connections"), "{bad}: {e}");
    }
}

#[test]
fn review_rechecks_default_and_come_from_a_file_or_the_environment() {
    let dir = dir_with(GATEWAY, CHARGEAPI);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    assert_eq!(s.providers["chargeapi"].review_recheck_s, [60, 600, 3600]);
    assert!(Redacted(&s).to_string().contains("providers.chargeapi.review_recheck_s = [60, 600, 3600]"));
    let dir = dir_with(GATEWAY, &format!("review_recheck_s = []\n{CHARGEAPI}"));
    assert!(Settings::load_with_env(dir.path(), env(&[])).unwrap().providers["chargeapi"].review_recheck_s.is_empty());
    let key = "CANCELGATE__PROVIDERS__CHARGEAPI__REVIEW_RECHECK_S";
    let s = Settings::load_with_env(dir.path(), env(&[(key, "1, 30")])).unwrap();
    assert_eq!(s.providers["chargeapi"].review_recheck_s, [1, 30]);
    assert!(
        Settings::load_with_env(dir.path(), env(&[(key, "")])).unwrap().providers["chargeapi"]
            .review_recheck_s
            .is_empty()
    );
    let e = Settings::load_with_env(dir.path(), env(&[(key, "soon")])).unwrap_err().to_string();
    assert!(e.contains("review_recheck_s"), "{e}");
}

#[test]
fn invalid_values_are_refused_with_their_key() {
    let dir = dir_with(GATEWAY, &format!("{CHARGEAPI}[retry]\nmax_attempts = 0\n"));
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("providers.chargeapi.retry.max_attempts"), "{e}");
    let dir = dir_with(&format!("{GATEWAY}[clients.c]\nkey_sha256 = \"abc\"\n"), CHARGEAPI);
    let e = Settings::load_with_env(dir.path(), env(&[])).unwrap_err().to_string();
    assert!(e.contains("clients.c.key_sha256"), "{e}");
}

/// Every leaf of the serialized settings tree, as its dotted path (an empty table is a leaf).
fn leaves(path: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(table) if !table.is_empty() => {
            for (key, value) in table {
                leaves(&if path.is_empty() { key.clone() } else { format!("{path}.{key}") }, value, out);
            }
        }
        _ => out.push(path.to_owned()),
    }
}

/// A tree with every section set and a secret in every place one can be: the redacted view
/// names every field of the tree (taken from the tree itself, so the list cannot go stale) and
/// shows none of the secrets.
#[test]
fn the_redacted_view_is_the_whole_tree_with_every_secret_replaced() {
    let hash = "ab".repeat(32);
    let (current, previous) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD");
    let gateway = format!(
        "listen = \"127.0.0.1:0\"\n\
         [ledger]\nurl = \"postgres://app:ledger_pw_value@db/x\"\n\
         [limits]\nmax_body_bytes = 1000\n\
         [redis]\nurl = \"redis://:redis_pw_value@127.0.0.1:6379\"\n\
         [console]\nsession_s = 60\n\
         [log]\nformat = \"json\"\nlevel = \"info\"\n\
         [clients.ops]\nkey_sha256 = \"{hash}\"\nscopes = [\"read\"]\n\
         [clients.ops.rate_limit]\nper_second = 5\nburst = 7\n\
         [webhooks.endpoints.ops]\nurl = \"https://user:hook_pw_value@hooks.example.com/in?token=hook_tok_value\"\n\
         secret = \"{current}\"\nprevious_secret = \"{previous}\"\n"
    );
    let chargeapi = "base_url = \"http://127.0.0.1:1\"\n[rate_limit]\nburst = 3\n\
                     [accounts.default]\nsecret_key = \"sk_default_value\"\n\
                     [accounts.eu]\nsecret_key = \"sk_eu_value\"\n";
    let dir = dir_with(&gateway, chargeapi);
    let s = Settings::load_with_env(dir.path(), env(&[])).unwrap();
    let shown = Redacted(&s).to_string();
    println!("{shown}");

    let tree = serde_json::to_value(&s).unwrap();
    let sections = tree.as_object().unwrap();
    for (section, value) in sections {
        assert!(!value.is_null(), "the fixture sets every section; {section} is unset");
    }
    let mut fields = Vec::new();
    leaves("", &tree, &mut fields);
    assert!(fields.len() >= 50, "{fields:?}");
    for field in &fields {
        assert!(shown.lines().any(|l| l.starts_with(&format!("{field} = "))), "{field} missing:\n{shown}");
    }
    for secret in [
        "ledger_pw_value",
        "redis_pw_value",
        hash.as_str(),
        "sk_default_value",
        "sk_eu_value",
        "hook_pw_value",
        "hook_tok_value",
        &current["whsec_".len()..],
        &previous["whsec_".len()..],
    ] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    for line in [
        "ledger.url = \"[REDACTED] (backend: postgres)\"",
        "redis.url = \"[REDACTED]\"",
        "clients.ops.key_sha256 = \"[REDACTED]\"",
        "providers.chargeapi.accounts.eu.secret_key = \"[REDACTED]\"",
        "webhooks.endpoints.ops.url = \"https://hooks.example.com:443\"",
        "webhooks.endpoints.ops.previous_secret = \"[REDACTED]\"",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} missing:\n{shown}");
    }
}
