//! The latency of each ledger operation, as the `cancelgate_ledger_duration_seconds{op}`
//! histogram (a no-op until the embedding program installs a `metrics` recorder).

use std::time::Instant;

/// The metric's name.
pub const LEDGER_DURATION: &str = "cancelgate_ledger_duration_seconds";

/// Records the time from `start` to drop, whatever way the operation ends.
pub(crate) struct Timer {
    op: &'static str,
    started: Instant,
}

impl Timer {
    pub(crate) fn start(op: &'static str) -> Self {
        Self { op, started: Instant::now() }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::histogram!(LEDGER_DURATION, "op" => self.op).record(self.started.elapsed().as_secs_f64());
    }
}
