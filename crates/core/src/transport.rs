use std::fmt;

/// How a request failed to produce an answer. The distinction that matters is whether the
/// provider may have received (and acted on) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportErrorKind {
    /// Nothing reached the provider (DNS, connect refused, connect timeout): safe to repeat.
    NotSent,
    /// Sent, but no answer in time: the provider may have cancelled.
    Timeout,
    /// Sent, then the connection broke before a full answer: the provider may have cancelled.
    Reset,
}

impl TransportErrorKind {
    /// The request may have reached the provider, so its effect is unknown.
    pub const fn is_ambiguous(self) -> bool {
        !matches!(self, Self::NotSent)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotSent => "not_sent",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    /// What happened, free of URLs' secrets and header values.
    pub detail: String,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "upstream {}: {}", self.kind.as_str(), self.detail)
    }
}

impl TransportError {
    pub fn new(kind: TransportErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }
}
