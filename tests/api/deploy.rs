//! deploy/config (docker-compose.yml's configuration) loads and takes every credential from
//! the secret files, as the container sees them under /run/secrets/ (pointed at deploy/secrets/).

use std::collections::HashMap;
use std::path::PathBuf;

#[test]
fn the_compose_configuration_loads_with_every_secret_from_a_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let secrets = root.join("deploy/secrets");
    let file = |name: &str| secrets.join(name).display().to_string();
    let env: HashMap<String, String> = [
        ("CANCELGATE__LEDGER__URL_FILE", file("ledger_url")),
        ("CANCELGATE__PROVIDERS__CHARGEAPI__ACCOUNTS__DEFAULT__SECRET_KEY_FILE", file("chargeapi_secret_key")),
        ("CANCELGATE__PROVIDERS__FRONTPAYMENT__ACCOUNTS__DEFAULT__TOKEN_FILE", file("frontpayment_token")),
        ("CANCELGATE__PROVIDERS__ACCOMMODATION__ACCOUNTS__DEFAULT__API_KEY_FILE", file("accommodation_api_key")),
        (
            "CANCELGATE__PROVIDERS__ACCOMMODATION__ACCOUNTS__DEFAULT__CONNECTION_CODE_FILE",
            file("accommodation_connection_code"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = cancelgate_gateway::Settings::load_with_env(&root.join("deploy/config"), Some(env)).unwrap();
    use secrecy::ExposeSecret;
    assert!(settings.ledger.url.expose_secret().starts_with("postgres://"));
    let registry = cancelgate_gateway::registry::Registry::build(&settings).unwrap();
    let mut values = registry.secret_values();
    values.sort();
    assert_eq!(values, ["10001", "acc_sandbox_key", "ch_sk_test_sandbox", "fp_sandbox_token"]);
    let demo = settings.clients["demo"].scopes().unwrap();
    let all = cancelgate_gateway::clients::Scope::ALL;
    assert!(all.into_iter().all(|scope| demo.contains(scope)), "the demo client has every scope: {demo:?}");
    let printed = cancelgate_gateway::settings::Redacted(&settings).to_string();
    assert!(!printed.contains("cancelgate_dev_only"), "the database password is printed");
}
