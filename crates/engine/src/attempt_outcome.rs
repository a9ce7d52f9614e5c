//! What one attempt came to, as a type: the driver decides with it, and it becomes the ledger's
//! `outcome` text (and the metrics' `outcome` label) in one place, [`AttemptOutcome::as_str`].

/// The outcome of one upstream attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Cancelled,
    Refused,
    RateLimited,
    NeedsReview,
    /// The provider may have acted: a timeout or reset after sending, an unreadable success.
    Ambiguous,
    /// A failure that did not reach, or was refused before, any effect (5xx, 510…).
    Transient,
    /// Nothing left this process (the account cannot be used, the connection never opened).
    NotSent,
}

impl AttemptOutcome {
    /// Every outcome: the metrics' series are created for each at start (`telemetry::register`).
    pub const ALL: [AttemptOutcome; 7] = [
        Self::Cancelled,
        Self::Refused,
        Self::RateLimited,
        Self::NeedsReview,
        Self::Ambiguous,
        Self::Transient,
        Self::NotSent,
    ];

    /// The ledger's and the metrics' spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
            Self::RateLimited => "rate_limited",
            Self::NeedsReview => "needs_review",
            Self::Ambiguous => cancelgate_ledger::AMBIGUOUS,
            Self::Transient => "transient",
            Self::NotSent => "not_sent",
        }
    }

    /// An outcome read back from the ledger; `None` for a spelling this release does not write.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// Whether an answer with this outcome ends the record (no further attempt follows it).
    pub const fn settles(self) -> bool {
        matches!(self, Self::Cancelled | Self::Refused | Self::RateLimited | Self::NeedsReview)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_as_itself_and_only_answers_settle() {
        for outcome in AttemptOutcome::ALL {
            assert_eq!(AttemptOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(AttemptOutcome::parse("ambiguous"), Some(AttemptOutcome::Ambiguous));
        assert_eq!(AttemptOutcome::parse("nonsense"), None);
        let settling: Vec<_> =
            AttemptOutcome::ALL.into_iter().filter(|o| o.settles()).map(AttemptOutcome::as_str).collect();
        assert_eq!(settling, ["cancelled", "refused", "rate_limited", "needs_review"]);
    }
}
