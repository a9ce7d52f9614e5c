//! `ledger.retain_days` (issue 20): the ledger's final records older than that are purged,
//! with their attempts, keys and events (see the ledger's `purge_final_before`), once at start
//! and then every [`PURGE_EVERY`]. Unset (the default): everything is kept and nothing runs.

use std::time::Duration;

use cancelgate_ledger::{Ledger, PURGE_BATCH};
use time::OffsetDateTime;

/// How often the purge runs: retention is counted in days, an hour late is on time.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The cutoff for `retain_days` at `now`; `None` when it is out of range (never purges).
pub fn cutoff(now: OffsetDateTime, retain_days: u32) -> Option<OffsetDateTime> {
    now.checked_sub(time::Duration::days(i64::from(retain_days)))
}

/// Runs the purge in the background while the process lives (a no-op without `retain_days`).
pub fn spawn(ledger: Ledger, retain_days: Option<u32>) {
    let Some(days) = retain_days else { return };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(cutoff) = cutoff(OffsetDateTime::now_utc(), days) else { return };
            match ledger.purge_final_before(cutoff, PURGE_BATCH).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, retain_days = days, "final cancellations past retention purged"),
                Err(e) => tracing::warn!(error = %e, "cannot purge the ledger's old records; retrying later"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_cutoff_is_that_many_days_back() {
        let now = datetime!(2026-12-02 05:00 UTC);
        assert_eq!(cutoff(now, 30), Some(datetime!(2026-11-02 05:00 UTC)));
        assert_eq!(cutoff(now, 0), Some(now));
        assert_eq!(cutoff(datetime!(-9999-01-01 0:00 UTC), 1), None);
    }
}
