//! Caller authentication: `Authorization: Bearer <client key>`, matched by SHA-256 in constant time.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::settings::Settings;

/// The key of the shipped demo client; a gateway that accepts it warns at start.
pub const DEMO_KEY: &str = "cg_demo_key_local_only";

/// What a client may do (SPEC §7): each route under `/v1` needs one (`routes::V1_SCOPES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /v1/cancellations` (and batches).
    Cancel,
    /// Every `GET` under `/v1`.
    Read,
    /// Operator actions: resolve, retry, redeliver, the console.
    Operate,
}

impl Scope {
    pub const ALL: [Self; 3] = [Self::Cancel, Self::Read, Self::Operate];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Read => "read",
            Self::Operate => "operate",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// A client whose configuration names no scopes: it cancels and reads, it does not operate.
    pub const DEFAULT: Self = Self(Scope::Cancel.bit() | Scope::Read.bit());

    /// The scopes named in `clients.{name}.scopes`.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownScope> {
        names.iter().try_fold(Self::default(), |set, name| {
            let scope = Scope::parse(name.as_ref()).ok_or_else(|| UnknownScope(name.as_ref().to_owned()))?;
            Ok(Self(set.0 | scope.bit()))
        })
    }

    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl std::fmt::Debug for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(Scope::as_str)).finish()
    }
}

/// A scope name that is not one of SPEC §7's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`: the scopes are cancel, read and operate")]
pub struct UnknownScope(pub String);

#[derive(Debug)]
pub struct Client {
    pub name: String,
    key_sha256: [u8; 32],
    grants: Vec<Grant>,
    pub scopes: Scopes,
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
                // Checked too: a client whose scopes do not parse is no client at all (fail closed).
                let scopes = c.scopes().ok()?;
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
                    scopes,
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
        Client { name: "c".into(), key_sha256: [0; 32], grants, scopes: Scopes::DEFAULT, per_second: 1, burst: None }
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
    fn scopes_parse_and_default_to_cancel_and_read() {
        let d = Scopes::DEFAULT;
        assert!(d.contains(Scope::Cancel) && d.contains(Scope::Read) && !d.contains(Scope::Operate));
        let all = Scopes::from_names(&["operate", "read", "cancel"]).unwrap();
        assert!(Scope::ALL.into_iter().all(|s| all.contains(s)));
        let read = Scopes::from_names(&["read"]).unwrap();
        assert!(read.contains(Scope::Read) && !read.contains(Scope::Cancel));
        assert_eq!(Scopes::from_names::<&str>(&[]).unwrap().iter().count(), 0);
        assert_eq!(Scopes::from_names(&["read", "admin"]), Err(UnknownScope("admin".into())));
        assert_eq!(Scopes::from_names(&["Read"]), Err(UnknownScope("Read".into())), "names are exact");
        assert_eq!(format!("{read:?}"), r#"["read"]"#);
    }

    #[test]
    fn demo_key_hash_is_the_shipped_one() {
        assert_eq!(sha256_hex(DEMO_KEY).len(), 64);
    }
}
