//! The SQLite backend: one writer thread with group commit, and a few reader threads.
//!
//! SQLite runs one write transaction at a time, whatever the number of connections, and each
//! `COMMIT` costs an fsync (`synchronous = FULL`). So instead of every caller taking its turn
//! with a transaction of its own, one thread owns the only writing connection and takes the
//! writes waiting in its queue together: `BEGIN IMMEDIATE`, each write inside a `SAVEPOINT` of
//! its own (so one that fails or undoes itself leaves the others alone), one `COMMIT`, then
//! every caller is answered. Under load a commit carries many writes; alone, a write is its own
//! transaction with no savepoint. Nothing is acknowledged before the `COMMIT` that holds it
//! returned: if it fails, every write of the group is told so (nothing of them was stored).
//!
//! The connections are rusqlite's, driven synchronously on threads this module owns: a write is
//! one hand-off to the writer and one back, however many statements it runs (sqlx's SQLite
//! driver hands every statement to a worker thread and back, which cost more than SQLite itself).
//! Reads (replays included) go to reader threads beside the writer (WAL lets them run during a
//! write). Migrations still run through sqlx (`Db::migrate`), on a connection of their own.
//!
//! WAL checkpoints (copying the log back into the database file, two fsyncs) run on a thread of
//! their own, not in the writer's `COMMIT` as SQLite does by default: there, every ~1,000 pages,
//! one commit and every write queued behind it waited ~30 ms for the fsyncs (the p99 of
//! `bench/run`'s latency scenario).

mod conn;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use tokio::sync::oneshot;

use self::conn::{Role, open_connection, query};
pub(crate) use self::conn::{execute, fetch_all, sqlite_error};
use self::writer::{Typed, Work, run_checkpointer, run_writer};
use crate::db::{Arg, BoxFuture, Decision, Tx};
use crate::error::LedgerError;
use crate::inline_reads::{INLINE_READERS, InlineReaders};
use crate::types::SqliteSync;

/// Writes waiting beyond this make their callers wait to enqueue (back-pressure, in order).
const QUEUE: usize = 4_096;
/// Reader threads at most: reads are short, and each connection keeps a page cache of its own.
const MAX_READERS: u32 = 4;

/// The histogram of writes per SQLite transaction (how much group commit saves).
pub const GROUP_SIZE: &str = "cancelgate_ledger_writes_per_commit";

/// How to open the connections.
#[derive(Debug, Clone)]
pub(crate) struct SqliteConfig {
    pub path: PathBuf,
    pub busy_timeout: Duration,
    pub sync: SqliteSync,
    pub readers: u32,
}

/// The writer and the readers of one SQLite file. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteDb {
    writes: flume::Sender<WriterMessage>,
    reads: flume::Sender<ReaderMessage>,
    readers: u32,
    /// Tried first by every read: no hand-off to a reader thread (`inline_reads.rs`).
    inline: Arc<InlineReaders>,
}

/// A result row, owned (rusqlite's rows borrow their statement).
pub(crate) struct SqliteRow {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
}

impl SqliteRow {
    pub(crate) fn value(&self, column: &str) -> Result<&SqlValue, LedgerError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| LedgerError::Corrupt(format!("column {column}: not in the result")))
    }
}

enum WriterMessage {
    Write(Box<dyn Work>),
    /// Finish the queued writes, close the connection (which checkpoints the WAL), then answer.
    Close(oneshot::Sender<()>),
}

/// A read, given the reader's connection (`None` once the ledger is closed).
type Read = Box<dyn FnOnce(Option<&Connection>) + Send>;

enum ReaderMessage {
    /// Run on the reader's connection; `None` once the ledger is closed.
    Read(Read),
    /// Close the connection. The thread stays, answering later reads with "closed", until
    /// every handle is gone: a read queued at any moment is answered, never left waiting.
    Close,
}

impl SqliteDb {
    /// Opens the writing connection first (it creates the file and turns WAL on), then the
    /// checkpointer's and the readers', each on a thread of its own.
    pub(crate) fn open(config: &SqliteConfig) -> Result<SqliteDb, LedgerError> {
        let writer = open_connection(config, Role::Writer)?;
        let checkpointer = open_connection(config, Role::Checkpointer)?;
        let (writes, queue) = flume::bounded(QUEUE);
        let (nudge, nudges) = flume::bounded(1);
        spawn("cancelgate-ledger-writer", move || run_writer(writer, queue, nudge))?;
        spawn("cancelgate-ledger-checkpointer", move || run_checkpointer(&checkpointer, &nudges))?;
        let readers = config.readers.clamp(1, MAX_READERS);
        let (reads, read_queue) = flume::unbounded::<ReaderMessage>();
        for n in 0..readers {
            let conn = open_connection(config, Role::Reader)?;
            let queue = read_queue.clone();
            spawn(&format!("cancelgate-ledger-reader-{n}"), move || {
                let mut conn = Some(conn);
                while let Ok(message) = queue.recv() {
                    match message {
                        ReaderMessage::Read(read) => read(conn.as_ref()),
                        ReaderMessage::Close => conn = None,
                    }
                }
            })?;
        }
        // Never waiting in SQLite's busy handler on an async worker (a locked file would stall
        // the runtime, deadlines included): busy is answered at once, and the read is retried
        // on a reader thread, which waits `busy_timeout`.
        let inline = (0..INLINE_READERS)
            .map(|_| {
                let conn = open_connection(config, Role::Reader)?;
                conn.busy_timeout(Duration::ZERO).map_err(sqlite_error)?;
                Ok(conn)
            })
            .collect::<Result<_, LedgerError>>()?;
        Ok(SqliteDb { writes, reads, readers, inline: Arc::new(InlineReaders::new(inline)) })
    }

    /// Queues `work` for the writer and waits for its result, given once its transaction is
    /// settled. Once queued it runs to its end even if the caller stops waiting.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let message = WriterMessage::Write(Box::new(Typed { work, reply }));
        self.writes.send_async(message).await.map_err(|_| LedgerError::Closed)?;
        // The writer answers every write it takes, unless it stopped: then the ledger is closed.
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// Runs one statement on a reader and returns its rows.
    pub(crate) async fn read(&self, sql: &str, args: Vec<Arg>) -> Result<Vec<SqliteRow>, LedgerError> {
        match self.inline.try_read(|conn| query(conn, sql, args.clone())) {
            // Unavailable (busy, locked, an I/O error): a reader thread tries again and gives
            // the answer, waiting for the lock as long as `busy_timeout` says.
            Some(Err(LedgerError::Unavailable(_))) | None => {}
            Some(done) => return done,
        }
        let sql = sql.to_owned();
        let (reply, answer) = oneshot::channel();
        let read = move |conn: Option<&Connection>| {
            let _ = reply.send(conn.map_or(Err(LedgerError::Closed), |conn| query(conn, &sql, args)));
        };
        self.reads.send(ReaderMessage::Read(Box::new(read))).map_err(|_| LedgerError::Closed)?;
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// Runs the queued writes, closes the writing connection and the readers'. Later calls
    /// get [`LedgerError::Closed`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.writes.send_async(WriterMessage::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        self.inline.close();
        for _ in 0..self.readers {
            let _ = self.reads.send(ReaderMessage::Close);
        }
    }
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), LedgerError> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map(drop)
        .map_err(|e| LedgerError::Unavailable(Box::new(e)))
}
