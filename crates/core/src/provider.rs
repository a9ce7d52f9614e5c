use std::fmt;

use crate::{
    Account, AttemptContext, CredentialField, HttpRequest, HttpResponse, InvalidReference, MissingCredential, Outcome,
    Reference,
};

/// A provider's fixed id, as it appears in URLs, configuration and metrics (`chargeapi`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(&'static str);

impl ProviderId {
    pub const fn new(id: &'static str) -> Self {
        Self(id)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A validated cancellation to send upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub reference: Reference,
    /// The caller's reason (≤ 500 characters, checked by the gateway).
    pub reason: Option<String>,
    pub language: Option<String>,
}

/// What a provider can do besides cancel, as data (no marker traits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Sending the same cancel again after an ambiguous attempt cannot do harm: the provider
    /// answers a repeat with a refusal the adapter can read in the light of [`AttemptContext`].
    pub repeat_cancel_is_safe: bool,
    /// A repeated cancel can settle a record in `needs_review` (SPEC §9: an operator's retry, the
    /// automatic re-check): the provider's answer to a repeat after an ambiguous attempt tells a
    /// cancellation of ours apart (ChargeAPI's and the accommodation partner's "already
    /// cancelled"). Front Payment answers a repeat `reservationStatusAlreadyCompleted` whether
    /// we cancelled it or not: its repeat is harmless but decides nothing, so a review of it is
    /// never retried and only an operator can resolve it.
    pub repeat_settles_review: bool,
    /// The provider can tell the fee a cancellation would cost before doing it.
    pub cancellation_preview: bool,
    /// The provider can be asked for a reservation's current status, to settle an ambiguous outcome.
    pub status_lookup: bool,
}

/// The adapter could not build the upstream request from what it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    MissingCredential(#[from] MissingCredential),
    #[error("credential `{key}` of account `{account}` cannot be sent in a header")]
    UnsendableCredential { account: String, key: &'static str },
}

/// One upstream provider: pure translation between cancelgate and that provider's wire format.
///
/// Architecture invariant: implementations never do I/O themselves. They validate references,
/// *build* an [`HttpRequest`] and *classify* an [`HttpResponse`]; the gateway's executor sends.
pub trait CancelProvider: Send + Sync + fmt::Debug + 'static {
    fn id(&self) -> ProviderId;

    fn capabilities(&self) -> Capabilities;

    /// The keys each account of this provider has in configuration.
    fn credential_fields(&self) -> &'static [CredentialField];

    /// Check a caller's reference against this provider's format, before anything is sent.
    /// The result is the only way a reference reaches an upstream URL.
    fn parse_reference(&self, raw: &str) -> Result<Reference, InvalidReference>;

    /// What [`parse_reference`](Self::parse_reference) accepts, as an anchored regular expression
    /// in the subset JSON Schema and ECMA-262 share: the OpenAPI document states it per provider,
    /// so a request generated from the document is one the gateway accepts (tests/api/openapi.rs
    /// generates references from it and parses them).
    fn reference_pattern(&self) -> &'static str;

    fn build_cancel(&self, request: &CancelRequest, account: &Account) -> Result<HttpRequest, BuildError>;

    /// Classify one answer to a cancel. Never fails: whatever the bytes, there is an outcome.
    fn classify_cancel(&self, response: &HttpResponse, context: AttemptContext) -> Outcome;
}
