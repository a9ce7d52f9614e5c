//! The writing connection: group commit, a savepoint per write, every caller answered after the
//! `COMMIT` that holds its write; the writer thread that drains the queue, and the checkpointer
//! beside it.
//!
//! The connection sits behind a mutex shared by the writer thread and the callers themselves
//! (leader/follower): a write that finds the queue empty and the connection free commits on the
//! caller's own thread, alone, with no hand-off. Only when another write holds the connection (or
//! waits for it) does a write join the queue, which the writer thread drains in groups, one
//! `COMMIT` for all. So at low load a write costs no thread wake-up at all, and under load the
//! group commit is as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::conn::sqlite_error;
use super::{GROUP_SIZE, WriterMessage};
use crate::db::{BoxFuture, Decision, Tx};
use crate::error::LedgerError;

/// Writes in one transaction at most: bounds how long the file's write lock is held and how
/// long the first write of a group waits for the last.
const MAX_GROUP: usize = 256;
/// At most one checkpoint per this long, while there are commits: each costs two fsyncs. Longer
/// lets the log grow (tens of MB a second under load) and makes each checkpoint a longer stall.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// A log this long (frames, ~4 KB each) that passive checkpoints never emptied (the writer never
/// paused long enough to restart it) is emptied by one that waits for the writer: the log stays
/// bounded under a write load that never stops.
const WAL_RESTART_FRAMES: i64 = 16_384;

/// One caller's write, its result type erased so writes of every kind share the queue.
pub(super) trait Work: Send {
    /// Runs the write on the writer's connection. The caller hears of it only through the
    /// returned [`Ran`], once the transaction is settled.
    fn run(self: Box<Self>, conn: &mut Connection) -> Ran;
    /// Tells the caller its write was never run.
    fn refuse(self: Box<Self>, error: LedgerError);
}

/// A write that ran: whether its changes are to be kept, and how to answer its caller once the
/// transaction is settled (`None`: committed; `Some`: it failed, nothing was stored).
pub(super) struct Ran {
    keep: bool,
    /// The write failed because the database did (a full disk, failing storage): SQLite may have
    /// rolled the whole transaction back on its own, and this is then the cause to name.
    outage: Option<Arc<LedgerError>>,
    answer: Box<dyn FnOnce(Option<Arc<LedgerError>>) + Send>,
}

pub(super) struct Typed<T, F> {
    pub(super) work: F,
    pub(super) reply: oneshot::Sender<Result<T, LedgerError>>,
}

impl<T, F> Work for Typed<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection) -> Ran {
        let Typed { work, reply } = *self;
        // The work is written once for both backends, as a future; on SQLite every statement
        // it awaits runs synchronously on this thread, so it completes without ever waiting.
        let (keep, result, outage) = match futures_executor::block_on(work(Tx::Sqlite(conn))) {
            Ok(Decision::Keep(value)) => (true, Ok(value), None),
            Ok(Decision::Undo(value)) => (false, Ok(value), None),
            Err(e) if e.outage().is_some() => {
                let e = Arc::new(e);
                (false, Err(LedgerError::WriteFailed(e.clone())), Some(e))
            }
            Err(e) => (false, Err(e), None),
        };
        let answer = move |failed: Option<Arc<LedgerError>>| {
            let _ = reply.send(match failed {
                None => result,
                Some(e) => Err(LedgerError::WriteFailed(e)),
            });
        };
        Ran { keep, outage, answer: Box::new(answer) }
    }

    fn refuse(self: Box<Self>, error: LedgerError) {
        let _ = self.reply.send(Err(error));
    }
}

/// The writing connection, shared by the writer thread and the callers that commit on their own
/// thread; `None` once the ledger is closed.
pub(super) struct Writing {
    conn: Mutex<Option<Connection>>,
    /// The writer thread has taken writes from the queue and waits for the connection: a caller
    /// must not overtake it (a stream of callers committing alone would starve the queue).
    draining: AtomicBool,
    /// Set once the writing connection is closed: the checkpointer stops at its next nudge.
    closed: AtomicBool,
    /// Wakes the checkpointer after a commit. Never waits: one nudge pending is enough.
    nudge: flume::Sender<()>,
    busy_timeout: Duration,
}

/// A group whose transaction could not begin, handed back untouched, and why.
type NotBegun = (Vec<Box<dyn Work>>, Arc<LedgerError>);

/// Why a write was not committed on the caller's thread: it is handed back, to be queued.
pub(super) enum NotHere {
    /// Another write holds the connection or waits for it.
    Busy(Box<dyn Work>),
    /// The ledger is closed: nothing will run it.
    Closed,
}

impl Writing {
    pub(super) fn new(conn: Connection, nudge: flume::Sender<()>, busy_timeout: Duration) -> Writing {
        Writing {
            conn: Mutex::new(Some(conn)),
            draining: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            nudge,
            busy_timeout,
        }
    }

    /// Commits `work` alone on this thread if nothing else writes now. Never waits: not for the
    /// mutex, and not in SQLite's busy handler (another process holding the file's write lock
    /// would stall an async worker, and every deadline on it), so a write that finds the file
    /// busy is handed back to be queued, and the writer thread waits for the lock instead.
    pub(super) fn try_commit_here(&self, work: Box<dyn Work>) -> Result<(), NotHere> {
        if self.draining.load(Ordering::Acquire) {
            return Err(NotHere::Busy(work));
        }
        let mut guard = match self.conn.try_lock() {
            Ok(guard) => guard,
            // A write that panicked cannot leave the connection in a state the next commit does
            // not repair (an open transaction is rolled back first): the poison is ignored.
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(NotHere::Busy(work)),
        };
        let Some(conn) = guard.as_mut() else { return Err(NotHere::Closed) };
        if conn.busy_timeout(Duration::ZERO).is_err() {
            return Err(NotHere::Busy(work));
        }
        let begun = commit_group(conn, vec![work], "caller");
        // Restored before anyone else may use the connection: the writer thread waits for locks.
        let restored = conn.busy_timeout(self.busy_timeout);
        drop(guard);
        if let Err(e) = restored {
            tracing::warn!(error = %e, "the ledger's writing connection lost its busy timeout");
        }
        match begun {
            Ok(()) => {
                let _ = self.nudge.try_send(());
                Ok(())
            }
            Err((mut group, _)) => match group.pop() {
                Some(work) => Err(NotHere::Busy(work)),
                None => Ok(()),
            },
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn run_writer(writing: &Writing, queue: flume::Receiver<WriterMessage>) {
    let mut closing = Vec::new();
    while closing.is_empty() {
        let Ok(first) = queue.recv() else { break };
        writing.draining.store(true, Ordering::Release);
        let mut guard = writing.lock();
        let mut group = Vec::new();
        for message in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
            match message {
                WriterMessage::Write(work) => group.push(work),
                WriterMessage::Close(done) => closing.push(done),
            }
            if group.len() == MAX_GROUP {
                commit_or_refuse(guard.as_mut(), std::mem::take(&mut group));
            }
        }
        if !group.is_empty() {
            commit_or_refuse(guard.as_mut(), group);
        }
        if !closing.is_empty() {
            if let Some(conn) = guard.take()
                && let Err((_, e)) = conn.close()
            {
                tracing::warn!(error = %e, "closing the ledger's writing connection failed");
            }
            writing.closed.store(true, Ordering::Release);
        }
        drop(guard);
        writing.draining.store(false, Ordering::Release);
        let _ = writing.nudge.try_send(());
    }
    // The checkpointer ends (and closes its connection) at the nudge just sent.
    for done in closing {
        let _ = done.send(());
    }
    // Closed: the thread stays until every handle is gone, refusing what is still sent, so no
    // caller is ever left waiting on a write nobody will run.
    while let Ok(message) = queue.recv() {
        match message {
            WriterMessage::Write(work) => work.refuse(LedgerError::Closed),
            WriterMessage::Close(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// One group on the writer thread: a group whose transaction could not begin is refused whole.
fn commit_or_refuse(conn: Option<&mut Connection>, group: Vec<Box<dyn Work>>) {
    let Some(conn) = conn else {
        for work in group {
            work.refuse(LedgerError::Closed);
        }
        return;
    };
    if let Err((group, e)) = commit_group(conn, group, "writer") {
        for work in group {
            work.refuse(LedgerError::WriteFailed(e.clone()));
        }
    }
}

/// Checkpoints the log after commits, at most once per [`CHECKPOINT_EVERY`], until the ledger is
/// closed. A passive checkpoint never waits for the writer or a reader: it copies what it can.
pub(super) fn run_checkpointer(conn: &Connection, writing: &Writing, nudges: &flume::Receiver<()>) {
    let checkpoint = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(1)).map_err(sqlite_error)
    };
    while nudges.recv().is_ok() && !writing.closed.load(Ordering::Acquire) {
        match checkpoint("PASSIVE") {
            // Frames in the log, whether copied or not: the log only restarts from its beginning
            // when a checkpoint copied everything before the next write.
            Ok(frames) if frames >= WAL_RESTART_FRAMES => {
                if let Err(e) = checkpoint("RESTART") {
                    tracing::warn!(error = %e, frames, "the ledger's log could not be restarted; retrying later");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "a checkpoint of the ledger's log failed; retrying later"),
        }
        thread::sleep(CHECKPOINT_EVERY);
    }
}

/// One transaction for the whole group. A lone write needs no savepoint: its own `COMMIT` or
/// `ROLLBACK` ends it. A transaction that could not begin hands the group back, untouched.
///
/// `thread` says where it runs, for the group-size histogram: the caller's thread or the writer's.
fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Work>>, thread: &'static str) -> Result<(), NotBegun> {
    // Prepared once per connection, like every statement of the ledger.
    let batch = |conn: &mut Connection, sql: &str| {
        conn.prepare_cached(sql).and_then(|mut s| s.execute([])).map(drop).map_err(|e| Arc::new(sqlite_error(e)))
    };
    // A transaction left open by an earlier failure (a `ROLLBACK` that failed too) would make
    // every later `BEGIN` fail: end it first.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(e) = batch(conn, "BEGIN IMMEDIATE") {
        return Err((group, e));
    }
    metrics::histogram!(GROUP_SIZE, "thread" => thread).record(group.len() as f64);
    let grouped = group.len() > 1;
    let mut ran: Vec<Ran> = Vec::with_capacity(group.len());
    // Set when the transaction itself broke: nothing of this group will be stored.
    let mut broken: Option<Arc<LedgerError>> = None;
    for work in group {
        if let Some(e) = &broken {
            work.refuse(LedgerError::WriteFailed(e.clone()));
            continue;
        }
        if grouped && let Err(e) = batch(conn, "SAVEPOINT write") {
            work.refuse(LedgerError::WriteFailed(e.clone()));
            broken = Some(e);
            continue;
        }
        let done = work.run(conn);
        if grouped {
            let ended = match done.keep {
                true => batch(conn, "RELEASE write"),
                false => batch(conn, "ROLLBACK TO write").and_then(|()| batch(conn, "RELEASE write")),
            };
            if let Err(e) = ended {
                // After a full disk or an I/O error SQLite may have ended the transaction itself,
                // and the savepoint is gone: the write's own error says why.
                broken = Some(done.outage.clone().unwrap_or(e));
            }
        }
        ran.push(done);
    }
    let settled = match broken {
        Some(e) => {
            // A failed statement may already have ended the transaction; a second error is moot.
            let _ = conn.execute_batch("ROLLBACK");
            Some(e)
        }
        None if ran.iter().any(|r| r.keep) => match batch(conn, "COMMIT") {
            Ok(()) => None,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Some(e)
            }
        },
        // Nothing to keep: whether the `ROLLBACK` works or SQLite already ended the transaction
        // (after a full disk), nothing was stored, as every write of the group expects; each
        // caller hears its own result (a failed write its own cause).
        None => {
            let _ = batch(conn, "ROLLBACK");
            None
        }
    };
    if let Some(e) = &settled {
        tracing::error!(error = %e, writes = ran.len(), "a ledger write transaction failed; its writes were not stored");
    }
    for done in ran {
        (done.answer)(settled.clone());
    }
    Ok(())
}
