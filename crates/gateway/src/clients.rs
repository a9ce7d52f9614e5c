//! Caller authentication: `Authorization: Bearer <client key>`, matched by SHA-256 in constant time.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::Settings;

/// The key of the shipped demo client; a gateway that accepts it warns at start.
pub const DEMO_KEY: &str = "cg_demo_key_local_only";

#[derive(Debug)]
pub struct Client {
    pub name: String,
    key_sha256: [u8; 32],
    grants: Vec<Grant>,
    pub per_second: u32,
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    Everything,
    Provider(String),
    Account { provider: String, account: String },
}

impl Client {
    /// May this client use `account` of `provider`?
    pub fn may_use(&self, provider: &str, account: &str) -> bool {
        self.grants.iter().any(|g| match g {
            Grant::Everything => true,
            Grant::Provider(p) => p == provider,
            Grant::Account { provider: p, account: a } => p == provider && a == account,
        })
    }
}

#[derive(Debug, Default)]
pub struct Clients {
    clients: Vec<Arc<Client>>,
}

impl Clients {
    pub fn from_settings(settings: &Settings) -> Self {
        let clients = settings
            .clients
            .iter()
            .filter_map(|(name, c)| {
                let mut key_sha256 = [0u8; 32];
                // Settings::check has validated the hex already; a bad value simply matches nothing.
                hex::decode_to_slice(&c.key_sha256, &mut key_sha256).ok()?;
                let grants = c
                    .providers
                    .iter()
                    .map(|p| match p.split_once('/') {
                        _ if p == "*" => Grant::Everything,
                        Some((provider, account)) => {
                            Grant::Account { provider: provider.to_owned(), account: account.to_owned() }
                        }
                        None => Grant::Provider(p.clone()),
                    })
                    .collect();
                Some(Arc::new(Client {
                    name: name.clone(),
                    key_sha256,
                    grants,
                    per_second: c.rate_limit.per_second,
                    burst: c.rate_limit.burst,
                }))
            })
            .collect();
        Self { clients }
    }

    /// The client whose key this is. Every configured hash is compared, in constant time, so
    /// the answer's timing says nothing about which (or whether a) client almost matched.
    pub fn authenticate(&self, key: &str) -> Option<Arc<Client>> {
        let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for client in &self.clients {
            if bool::from(client.key_sha256.ct_eq(&hash)) {
                found = Some(client.clone());
            }
        }
        found
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.iter()
    }

    /// Whether the demo key is accepted (the gateway warns at start while it is).
    pub fn accepts_demo_key(&self) -> bool {
        self.authenticate(DEMO_KEY).is_some()
    }
}

pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(grants: Vec<Grant>) -> Client {
        Client { name: "c".into(), key_sha256: [0; 32], grants, per_second: 1, burst: None }
    }

    #[test]
    fn grants() {
        assert!(client(vec![Grant::Everything]).may_use("chargeapi", "default"));
        let c = client(vec![Grant::Provider("chargeapi".into())]);
        assert!(c.may_use("chargeapi", "eu") && !c.may_use("frontpayment", "default"));
        let c = client(vec![Grant::Account { provider: "chargeapi".into(), account: "eu".into() }]);
        assert!(c.may_use("chargeapi", "eu") && !c.may_use("chargeapi", "default"));
        assert!(!client(vec![]).may_use("chargeapi", "default"));
    }

    #[test]
    fn demo_key_hash_is_the_shipped_one() {
        assert_eq!(sha256_hex(DEMO_KEY).len(), 64);
    }
}
