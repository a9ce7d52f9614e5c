//! The writer thread: group commit, a savepoint per write, every caller answered after the
//! `COMMIT` that holds its write; and the checkpointer beside it.

use std::sync::Arc;
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
/// At most one checkpoint per this long, while there are commits: each costs two fsyncs.
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

pub(super) fn run_writer(mut conn: Connection, queue: flume::Receiver<WriterMessage>, nudge: flume::Sender<()>) {
    let mut closing = Vec::new();
    while closing.is_empty() {
        let Ok(first) = queue.recv() else { break };
        let mut group = Vec::new();
        for message in std::iter::once(first).chain(std::iter::from_fn(|| queue.try_recv().ok())) {
            match message {
                WriterMessage::Write(work) => group.push(work),
                WriterMessage::Close(done) => closing.push(done),
            }
            if group.len() == MAX_GROUP {
                commit_group(&mut conn, std::mem::take(&mut group));
            }
        }
        if !group.is_empty() {
            commit_group(&mut conn, group);
        }
        // There is something to checkpoint. Never waits: one nudge pending is enough.
        let _ = nudge.try_send(());
    }
    // The checkpointer ends (and closes its connection) once it has done the last nudge.
    drop(nudge);
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the ledger's writing connection failed");
    }
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

/// Checkpoints the log after commits, at most once per [`CHECKPOINT_EVERY`], until the writer
/// is gone. A passive checkpoint never waits for the writer or a reader: it copies what it can.
pub(super) fn run_checkpointer(conn: &Connection, nudges: &flume::Receiver<()>) {
    let checkpoint = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| row.get::<_, i64>(1)).map_err(sqlite_error)
    };
    while nudges.recv().is_ok() {
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
/// `ROLLBACK` ends it.
fn commit_group(conn: &mut Connection, group: Vec<Box<dyn Work>>) {
    metrics::histogram!(GROUP_SIZE).record(group.len() as f64);
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
        for work in group {
            work.refuse(LedgerError::WriteFailed(e.clone()));
        }
        return;
    }
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
}
