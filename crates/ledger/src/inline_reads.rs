//! Reads on the caller's thread: a small pool of SQLite reading connections that a read takes,
//! uses synchronously where it is, and puts back.
//!
//! Why: a read handed to a reader thread costs two thread hand-offs (wake the reader, wake the
//! waiting task), each a futex and a scheduler pass, which at low load cost more CPU than the
//! indexed lookup itself (begin's read before every cancel). A ledger read is an indexed lookup
//! or a bounded page, microseconds to a few milliseconds, so running it on the async worker that
//! asked is cheaper than waking another thread. When every pooled connection is in use the read
//! goes to the reader threads as before, so a burst of reads never waits here; so does a read
//! that found the file busy (these connections never wait in SQLite's busy handler, which would
//! stall an async worker).

use std::sync::Mutex;

use rusqlite::Connection;

use crate::error::LedgerError;

/// Connections at most: one per async worker of this machine's two cores is enough to find one
/// idle nearly always; each keeps a page cache of its own.
pub(crate) const INLINE_READERS: usize = 2;

/// The idle connections, and whether the ledger is closed (then none is handed out or kept).
pub(crate) struct InlineReaders {
    idle: Mutex<Pool>,
}

struct Pool {
    conns: Vec<Connection>,
    closed: bool,
}

impl InlineReaders {
    pub(crate) fn new(conns: Vec<Connection>) -> InlineReaders {
        InlineReaders { idle: Mutex::new(Pool { conns, closed: false }) }
    }

    /// Runs `read` on an idle connection, on this thread. `None` when none is idle (the caller
    /// uses a reader thread); `Some(Err(Closed))` once the ledger is closed.
    pub(crate) fn try_read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, LedgerError>,
    ) -> Option<Result<T, LedgerError>> {
        let conn = {
            // A panic while the lock was held cannot leave the pool inconsistent (push and pop
            // only): the poison is ignored.
            let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if pool.closed {
                return Some(Err(LedgerError::Closed));
            }
            pool.conns.pop()?
        };
        let result = read(&conn);
        let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Closed meanwhile: the connection is dropped (closed) here instead of kept.
        if !pool.closed {
            pool.conns.push(conn);
        }
        Some(result)
    }

    /// Closes the idle connections; one in use is closed when its read ends.
    pub(crate) fn close(&self) {
        let conns = {
            let mut pool = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            pool.closed = true;
            std::mem::take(&mut pool.conns)
        };
        drop(conns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> InlineReaders {
        InlineReaders::new((0..n).map(|_| Connection::open_in_memory().unwrap()).collect())
    }

    fn one(conn: &Connection) -> Result<i64, LedgerError> {
        conn.query_row("SELECT 1", [], |r| r.get(0)).map_err(|e| LedgerError::Corrupt(e.to_string()))
    }

    #[test]
    fn a_read_runs_here_and_gives_its_connection_back() {
        let readers = pool(1);
        for _ in 0..3 {
            assert_eq!(readers.try_read(one).unwrap().unwrap(), 1);
        }
    }

    #[test]
    fn with_every_connection_in_use_the_read_is_not_run_here() {
        let readers = pool(1);
        let nested = readers.try_read(|_| Ok(readers.try_read(one).is_none())).unwrap().unwrap();
        assert!(nested, "the only connection was in use: the inner read must go elsewhere");
    }

    #[test]
    fn once_closed_reads_are_refused_and_a_connection_in_use_is_not_kept() {
        let readers = pool(1);
        // Closed while its read runs: the connection is dropped, not put back.
        let ran = readers.try_read(|conn| {
            readers.close();
            one(conn)
        });
        assert_eq!(ran.unwrap().unwrap(), 1);
        assert!(matches!(readers.try_read(one), Some(Err(LedgerError::Closed))));
        assert!(readers.idle.lock().unwrap().conns.is_empty());
    }
}
