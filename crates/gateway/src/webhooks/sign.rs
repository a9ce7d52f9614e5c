//! Standard Webhooks signatures (SPEC §8), by the `standardwebhooks` crate: `v1,` +
//! base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")). While a previous secret is configured
//! (rotation) the header carries one signature per secret, space-separated, current first: a
//! receiver that knows either secret verifies the delivery.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// The signing keys of one endpoint. `Debug` shows how many, never a key.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<[standardwebhooks::Webhook]>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("keys", &self.keys.len()).finish()
    }
}

impl Signer {
    /// From secrets already checked (`whsec_` + base64, see `config.rs`); one that does not
    /// decode is skipped rather than trusted.
    pub fn new(secrets: &[SecretString]) -> Signer {
        let keys: Vec<_> =
            secrets.iter().filter_map(|s| standardwebhooks::Webhook::new(s.expose_secret()).ok()).collect();
        Signer { keys: keys.into() }
    }

    /// The `webhook-signature` header value for this attempt. `None` only for a body that is not
    /// UTF-8, which a stored payload (JSON text) never is.
    pub fn signature(&self, id: &str, timestamp: i64, body: &str) -> Option<String> {
        let signatures: Vec<String> =
            self.keys.iter().filter_map(|k| k.sign(id, timestamp, body.as_bytes()).ok()).collect();
        (!signatures.is_empty() && signatures.len() == self.keys.len()).then(|| signatures.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference vector (the specification's and its libraries' test).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_reference_vector() {
        let signer = Signer::new(&[SecretString::from(SECRET)]);
        assert_eq!(signer.signature(ID, TIMESTAMP, BODY).as_deref(), Some(SIGNATURE));
    }

    #[test]
    fn rotation_carries_both_signatures_each_valid_for_its_secret() {
        let previous = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let signer = Signer::new(&[SecretString::from(SECRET), SecretString::from(previous)]);
        let header = signer.signature(ID, TIMESTAMP, BODY).unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SIGNATURE);
        let old = Signer::new(&[SecretString::from(previous)]).signature(ID, TIMESTAMP, BODY).unwrap();
        assert_eq!(parts[1], old);
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", Signer::new(&[SecretString::from(SECRET)]));
        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
    }
}
