use std::fmt;

/// The longest reference any provider may accept.
const MAX_REFERENCE_LEN: usize = 128;

/// A provider's id of a reservation or booking, validated.
///
/// Whatever a provider's own format, a `Reference` holds only `A–Z a–z 0–9 _ -` (1–128 of them),
/// so it can be put in an upstream URL path as is: it can never add a segment, a query, a
/// fragment or an escape. Providers build one with [`check_reference`] after their own checks.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference(String);

impl Reference {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The reference does not have the provider's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reference must be {expected}")]
pub struct InvalidReference {
    /// The expected format, in words, for the caller (never echoes the bad value).
    pub expected: &'static str,
}

/// Turn a string that passed a provider's format check into a [`Reference`], enforcing the
/// URL-safety invariant on top: a provider's lax rule cannot open a path to the URL.
pub fn check_reference(value: String, expected: &'static str) -> Result<Reference, InvalidReference> {
    let url_safe = (1..=MAX_REFERENCE_LEN).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if url_safe { Ok(Reference(value)) } else { Err(InvalidReference { expected }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_safe_values_become_references() {
        for bad in ["", "a/b", "..", "a%2Fb", "a?b", "a#b", "a b", "a\nb", "é", &"a".repeat(129)] {
            assert!(check_reference(bad.to_owned(), "x").is_err(), "{bad:?} accepted");
        }
        assert_eq!(check_reference("BK_1-a".to_owned(), "x").unwrap().as_str(), "BK_1-a");
    }
}
