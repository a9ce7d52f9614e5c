//! The cancelgate engine: everything between a checked command and a final record, and nothing
//! of an HTTP server. The provider registry (`registry.rs`, the one list of adapters),
//! preparation (`cancel.rs`), the driver (`driver/`: attempts recorded through the ledger, the
//! early answer, background resume), the pure verdict (`verdict.rs`), `Failure`
//! (`failure.rs`), the only upstream client (`executor.rs`, reqwest), resilience
//! (`resilience/`), the per-request context (`context.rs`) and the settings these read
//! (`settings/`).
//!
//! The facade (`cancelgate-gateway`) depends on this crate, never the other way: this crate
//! depends on no axum, no hyper server, no utoipa, no minijinja.

pub mod attempt_outcome;
pub mod cancel;
pub mod context;
pub mod driver;
pub mod executor;
pub mod failure;
pub mod registry;
pub mod resilience;
pub mod settings;
pub mod telemetry;
pub mod verdict;

use time::OffsetDateTime;

/// RFC 3339 in UTC with exactly three fractional digits, as the providers' own examples are:
/// one fixed width, so timestamps sort as strings. Every answer and log line writes them so.
pub fn rfc3339(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
}
