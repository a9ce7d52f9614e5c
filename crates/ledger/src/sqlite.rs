//! The SQLite backend: one writing connection with group commit, and a few reader threads.
//!
//! SQLite runs one write transaction at a time, whatever the number of connections, and each
//! `COMMIT` costs an fsync (`synchronous = FULL`). So there is one writing connection. A write
//! that finds it free and nothing queued commits on its caller's thread, alone (no hand-off: at
//! low load, two thread wake-ups per write cost more than the write). Otherwise it joins the
//! queue of the writer thread, which takes the writes waiting there together: `BEGIN IMMEDIATE`,
//! each write inside a `SAVEPOINT` of its own (so one that fails or undoes itself leaves the
//! others alone), one `COMMIT`, then every caller is answered. Under load a commit carries many
//! writes; alone, a write is its own transaction with no savepoint. Nothing is acknowledged
//! before the `COMMIT` that holds it returned: if it fails, every write of the group is told so
//! (nothing of them was stored).
//!
//! The connections are rusqlite's, driven synchronously: a queued write is one hand-off to the
//! writer thread and one back, however many statements it runs (sqlx's SQLite driver hands
//! every statement to a worker thread and back, which cost more than SQLite itself).
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use tokio::sync::oneshot;

use self::conn::{Role, open_connection, query};
pub(crate) use self::conn::{execute, fetch_all, sqlite_error};
use self::writer::{NotHere, Typed, Work, Writing, run_checkpointer, run_writer};
use crate::db::{Arg, BoxFuture, Decision, Tx};
use crate::error::LedgerError;
use crate::inline_reads::{INLINE_READERS, InlineReaders};
use crate::types::SqliteSync;

/// Writes waiting beyond this make their callers wait to enqueue (back-pressure, in order).
const QUEUE: usize = 4_096;
/// Reader threads at most: reads are short, and each connection keeps a page cache of its own.
const MAX_READERS: u32 = 4;

/// Where a write may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On the caller's thread when the writing connection is free and nothing is queued.
    CallerIfFree,
    /// Always the writer thread's: for work that may take long (a purge batch), which must not
    /// hold up an async worker.
    WriterThread,
}

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
    /// The writing connection: a write commits here, on its caller's thread, when it is free.
    writing: Arc<Writing>,
    reads: flume::Sender<ReaderMessage>,
    readers: u32,
    /// Tried first by every read: no hand-off to a reader thread (`inline_reads.rs`).
    inline: Arc<InlineReaders>,
}

/// A result row, owned (rusqlite's rows borrow their statement).
pub(crate) struct SqliteRow {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
    /// Where the next lookup by name starts: the one after the last column found. A row is
    /// mostly read in its columns' order (a record's 28), so each lookup is then one comparison
    /// instead of a scan from the first column. Atomic only so that a row stays `Sync`.
    next: AtomicUsize,
}

impl SqliteRow {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<SqlValue>) -> Self {
        Self { columns, values, next: AtomicUsize::new(0) }
    }

    pub(crate) fn value(&self, column: &str) -> Result<&SqlValue, LedgerError> {
        let n = self.columns.len();
        let start = self.next.load(Ordering::Relaxed);
        let found = (0..n).map(|k| (start + k) % n).find(|&i| self.columns[i] == column);
        found
            .and_then(|i| {
                self.next.store(i + 1, Ordering::Relaxed);
                self.values.get(i)
            })
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
        let writing = Arc::new(Writing::new(writer, nudge, config.busy_timeout));
        let on_thread = writing.clone();
        spawn("cancelgate-ledger-writer", move || run_writer(&on_thread, queue))?;
        let on_thread = writing.clone();
        spawn("cancelgate-ledger-checkpointer", move || run_checkpointer(&checkpointer, &on_thread, &nudges))?;
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
        Ok(SqliteDb { writes, writing, reads, readers, inline: Arc::new(InlineReaders::new(inline)) })
    }

    /// Commits `work` and waits for its result, given once its transaction is settled. With
    /// [`Placement::CallerIfFree`]: on this thread if no other write holds the connection or
    /// waits for it (no hand-off), else queued for the writer thread's next group. Once queued it
    /// runs to its end even if the caller stops waiting.
    pub(crate) async fn write<T, F>(&self, placement: Placement, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        let mut work: Box<dyn Work> = Box::new(Typed { work, reply });
        if placement == Placement::CallerIfFree && self.writes.is_empty() {
            match self.writing.try_commit_here(work) {
                // Answered already: the receiver is ready.
                Ok(()) => return answer.try_recv().map_err(|_| LedgerError::Closed)?,
                Err(NotHere::Closed) => return Err(LedgerError::Closed),
                Err(NotHere::Busy(handed_back)) => work = handed_back,
            }
        }
        self.writes.send_async(WriterMessage::Write(work)).await.map_err(|_| LedgerError::Closed)?;
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

#[cfg(test)]
mod tests {
    use std::thread::ThreadId;

    use super::*;

    #[test]
    fn a_row_finds_its_columns_by_name_in_any_order() {
        let columns: Arc<[String]> = ["a", "b", "c"].map(String::from).into();
        let row = SqliteRow::new(columns, (1..=3).map(SqlValue::Integer).collect());
        // In order, backwards, repeated and wrapping around: each name finds its own value.
        for (name, value) in [("a", 1), ("b", 2), ("c", 3), ("a", 1), ("c", 3), ("b", 2), ("b", 2), ("a", 1)] {
            assert_eq!(row.value(name).unwrap(), &SqlValue::Integer(value), "column {name}");
        }
        assert!(matches!(row.value("d"), Err(LedgerError::Corrupt(_))));
        let empty = SqliteRow::new(Arc::from(Vec::<String>::new()), Vec::new());
        assert!(matches!(empty.value("a"), Err(LedgerError::Corrupt(_))));
    }

    fn open(dir: &tempfile::TempDir) -> SqliteDb {
        let config = SqliteConfig {
            path: dir.path().join("ledger.db"),
            busy_timeout: Duration::from_secs(5),
            sync: SqliteSync::Normal,
            readers: 1,
        };
        let db = SqliteDb::open(&config).unwrap();
        db.writing.lock().as_ref().unwrap().execute_batch("CREATE TABLE t (n INTEGER)").unwrap();
        db
    }

    /// Inserts a row and says which thread ran the write.
    async fn insert(db: &SqliteDb, n: i64) -> Result<(ThreadId, Option<String>), LedgerError> {
        db.write(Placement::CallerIfFree, move |tx| {
            Box::pin(async move {
                let Tx::Sqlite(conn) = tx else { unreachable!("a SQLite write runs on a SQLite connection") };
                conn.execute("INSERT INTO t (n) VALUES (?1)", [n]).map_err(sqlite_error)?;
                let me = thread::current();
                Ok(Decision::Keep((me.id(), me.name().map(str::to_owned))))
            })
        })
        .await
    }

    fn rows(dir: &tempfile::TempDir) -> i64 {
        let conn = Connection::open(dir.path().join("ledger.db")).unwrap();
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn with_the_connection_free_a_write_commits_on_its_callers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        for n in 0..3 {
            let (ran_on, _) = insert(&db, n).await.unwrap();
            assert_eq!(ran_on, thread::current().id(), "no hand-off when nothing else writes");
        }
        // Committed, not merely run: another connection sees every row.
        assert_eq!(rows(&dir), 3);
    }

    // Holding the writing connection's mutex across awaits is the point: it stands for another
    // write in progress, and the write under test must not wait for it on this one thread.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "current_thread")]
    async fn with_the_connection_held_a_write_is_queued_for_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let held = db.writing.lock();
        let write = tokio::spawn({
            let db = db.clone();
            async move { insert(&db, 1).await }
        });
        // The write must not wait for the mutex on this (the only) async thread: it queues.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!write.is_finished());
        drop(held);
        let (_, name) = write.await.unwrap().unwrap();
        assert_eq!(name.as_deref(), Some("cancelgate-ledger-writer"));
        assert_eq!(rows(&dir), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_file_locked_by_another_connection_never_stalls_the_callers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        let other = Connection::open(dir.path().join("ledger.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE; INSERT INTO t (n) VALUES (0);").unwrap();
        let write = tokio::spawn({
            let db = db.clone();
            async move { insert(&db, 1).await }
        });
        // This thread keeps running while the write waits for the file's lock elsewhere.
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(1), "the async thread was stalled");
        assert!(!write.is_finished());
        other.execute_batch("COMMIT").unwrap();
        let (_, name) = write.await.unwrap().unwrap();
        assert_eq!(name.as_deref(), Some("cancelgate-ledger-writer"), "the busy write went to the writer thread");
        assert_eq!(rows(&dir), 2);
        // The connection got its busy timeout back: the next write commits here again.
        let (ran_on, _) = insert(&db, 2).await.unwrap();
        assert_eq!(ran_on, thread::current().id());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn once_closed_every_write_is_refused_wherever_it_would_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir);
        insert(&db, 1).await.unwrap();
        db.close().await;
        assert!(matches!(insert(&db, 2).await, Err(LedgerError::Closed)));
        assert_eq!(rows(&dir), 1);
    }
}
