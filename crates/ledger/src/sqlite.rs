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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::db::{Arg, BoxFuture, Decision, Tx, time_text};
use crate::error::LedgerError;
use crate::inline_reads::{INLINE_READERS, InlineReaders};
use crate::types::SqliteSync;

/// Writes waiting beyond this make their callers wait to enqueue (back-pressure, in order).
const QUEUE: usize = 4_096;
/// Writes in one transaction at most: bounds how long the file's write lock is held and how
/// long the first write of a group waits for the last.
const MAX_GROUP: usize = 256;
/// Reader threads at most: reads are short, and each connection keeps a page cache of its own.
const MAX_READERS: u32 = 4;
/// Distinct statements the ledger runs, so each is prepared once per connection.
const STATEMENT_CACHE: usize = 64;
/// At most one checkpoint per this long, while there are commits: each costs two fsyncs.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// A log this long (frames, ~4 KB each) that passive checkpoints never emptied (the writer never
/// paused long enough to restart it) is emptied by one that waits for the writer: the log stays
/// bounded under a write load that never stops.
const WAL_RESTART_FRAMES: i64 = 16_384;

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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Writer,
    Checkpointer,
    Reader,
}

fn open_connection(config: &SqliteConfig, role: Role) -> Result<Connection, LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&config.path, flags).map_err(|e| connect_error(&config.path, e))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(config.busy_timeout).map_err(sqlite_error)?;
    let sync = match config.sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    };
    let pragmas = match role {
        // Savepoint journals (one per grouped write) stay in memory: they only serve a rollback
        // within the open transaction, never recovery. No checkpoint in `COMMIT`: the
        // checkpointer's thread does them.
        Role::Writer => format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
             PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;"
        ),
        // The checkpoint syncs the log and the database file as this setting says.
        Role::Checkpointer => format!("PRAGMA synchronous = {sync}; PRAGMA wal_autocheckpoint = 0;"),
        // A reader never writes, whatever it is asked.
        Role::Reader => "PRAGMA query_only = ON;".to_owned(),
    };
    conn.execute_batch(&pragmas).map_err(|e| connect_error(&config.path, e))?;
    Ok(conn)
}

fn connect_error(path: &Path, e: rusqlite::Error) -> LedgerError {
    LedgerError::Connect { url: format!("sqlite://{}", path.display()), source: Box::new(e) }
}

/// rusqlite's errors as the ledger's: busy, locked, a full disk or failing storage is
/// "unavailable" (retry later), a value that does not decode is corruption, anything else a
/// database error.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> LedgerError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull | C::CannotOpen | C::ReadOnly
            ) =>
        {
            LedgerError::Unavailable(Box::new(e))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => LedgerError::Corrupt(e.to_string()),
        _ => LedgerError::Database(Box::new(e)),
    }
}

fn to_sql(arg: Arg) -> SqlValue {
    let text = |v: Option<String>| v.map_or(SqlValue::Null, SqlValue::Text);
    match arg {
        Arg::Text(v) => text(v),
        Arg::Int(v) => v.map_or(SqlValue::Null, SqlValue::Integer),
        Arg::Bool(v) => SqlValue::Integer(i64::from(v)),
        Arg::Time(v) => text(v.map(time_text)),
        Arg::Json(v) => text(v.map(|v| v.to_string())),
    }
}

/// Prepares (cached) and binds `args` to the `$n` placeholders by their number, as PostgreSQL
/// reads them (SQLite numbers named parameters in order of first appearance, so binding by
/// position would be wrong for a statement that uses `$3` before `$2`).
fn prepare<'c>(conn: &'c Connection, sql: &str, args: Vec<Arg>) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut values: Vec<Option<SqlValue>> = args.into_iter().map(|a| Some(to_sql(a))).collect();
    for index in 1..=stmt.parameter_count() {
        let number = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(format!("parameter {index} of {sql:?} is not $n")))?;
        // A placeholder used twice is one parameter to SQLite: each value is bound once.
        let value = values
            .get_mut(number.wrapping_sub(1))
            .and_then(Option::take)
            .ok_or(rusqlite::Error::InvalidParameterCount(number, index))?;
        stmt.raw_bind_parameter(index, value)?;
    }
    Ok(stmt)
}

fn query(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<Vec<SqliteRow>, LedgerError> {
    let run = || -> rusqlite::Result<Vec<SqliteRow>> {
        let mut stmt = prepare(conn, sql, args)?;
        let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns.len()).map(|i| row.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
            out.push(SqliteRow { columns: columns.clone(), values });
        }
        Ok(out)
    };
    run().map_err(sqlite_error)
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<u64, LedgerError> {
    let mut stmt = prepare(conn, sql, args).map_err(sqlite_error)?;
    stmt.raw_execute().map(|n| n as u64).map_err(sqlite_error)
}

pub(crate) fn fetch_all(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<Vec<SqliteRow>, LedgerError> {
    query(conn, sql, args)
}

// ---- the writer --------------------------------------------------------------------------------

/// One caller's write, its result type erased so writes of every kind share the queue.
trait Work: Send {
    /// Runs the write on the writer's connection. The caller hears of it only through the
    /// returned [`Ran`], once the transaction is settled.
    fn run(self: Box<Self>, conn: &mut Connection) -> Ran;
    /// Tells the caller its write was never run.
    fn refuse(self: Box<Self>, error: LedgerError);
}

/// A write that ran: whether its changes are to be kept, and how to answer its caller once the
/// transaction is settled (`None`: committed; `Some`: it failed, nothing was stored).
struct Ran {
    keep: bool,
    /// The write failed because the database did (a full disk, failing storage): SQLite may have
    /// rolled the whole transaction back on its own, and this is then the cause to name.
    outage: Option<Arc<LedgerError>>,
    answer: Box<dyn FnOnce(Option<Arc<LedgerError>>) + Send>,
}

struct Typed<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, LedgerError>>,
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

fn run_writer(mut conn: Connection, queue: flume::Receiver<WriterMessage>, nudge: flume::Sender<()>) {
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
fn run_checkpointer(conn: &Connection, nudges: &flume::Receiver<()>) {
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
