//! Session ids and CSRF tokens: 256 random bits from the operating system, as hex; compared in
//! constant time so that a guess's timing says nothing about how close it came.

use subtle::ConstantTimeEq;

/// Bytes of randomness in every token (256 bits; SPEC §9 needs a session id no one can guess).
const BYTES: usize = 32;

/// The operating system could not give randomness: no session can be made safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct NoRandomness(String);

/// A fresh token: 64 lowercase hex characters.
pub fn fresh() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; BYTES];
    getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Whether `given` is `expected`, in time that depends on their lengths only.
pub fn same(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_differ() {
        let (a, b) = (fresh().unwrap(), fresh().unwrap());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn same_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("", "abc"));
    }
}
