//! The thin layer over the two backends: pools, write transactions, bind values and row
//! decoding. Everything above it (in `lib.rs`) is written once; the SQL lives in `sql.rs`.
//!
//! What differs between the backends is kept here and only here:
//! - times: PostgreSQL has `TIMESTAMPTZ`; SQLite stores fixed-width UTC text (see [`time_text`]);
//! - write transactions: on SQLite one writer thread owns the only writing connection and
//!   groups concurrent writes into one transaction (see [`crate::sqlite`]); PostgreSQL gives
//!   each write its own `BEGIN` (READ COMMITTED), its constraints and row locks do the queueing.
//! - reads: a pool on both; on SQLite WAL lets readers run beside the writer.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::Value as SqlValue;
use serde_json::Value;
use sqlx::Row as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::error::{LedgerError, NoConnection, Outage, redact_url};
use crate::sqlite::{self, SqliteConfig, SqliteDb, SqliteRow};
use crate::types::{Backend, LedgerOptions};

/// One statement, spelled for each backend. Most statements are spelled the same (`$n`
/// placeholders work on both); see [`Sql::both`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql<'a> {
    pub sqlite: &'a str,
    pub pg: &'a str,
}

impl<'a> Sql<'a> {
    pub(crate) const fn both(sql: &'a str) -> Sql<'a> {
        Sql { sqlite: sql, pg: sql }
    }
}

/// A bind value. Times and JSON are encoded per backend.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
    Time(Option<OffsetDateTime>),
    Json(Option<Value>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<OffsetDateTime> for Arg {
    fn from(v: OffsetDateTime) -> Arg {
        Arg::Time(Some(v))
    }
}
impl From<Option<OffsetDateTime>> for Arg {
    fn from(v: Option<OffsetDateTime>) -> Arg {
        Arg::Time(v)
    }
}
impl From<Option<Value>> for Arg {
    fn from(v: Option<Value>) -> Arg {
        // JSON `null` is stored as SQL NULL: "no error" and "error: null" are one thing.
        Arg::Json(v.filter(|v| !v.is_null()))
    }
}
impl From<Value> for Arg {
    fn from(v: Value) -> Arg {
        Arg::Json(Some(v))
    }
}

/// `args![a, b, …]`: a `Vec<Arg>` from values convertible into [`Arg`].
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$($crate::db::Arg::from($v)),*] };
}
pub(crate) use args;

const TIME_TEXT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// A time as SQLite stores it: UTC, microseconds, fixed width, so text order is time order.
pub(crate) fn time_text(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    // Formatting with a fixed description only fails on years outside 0000..=9999, which the
    // ledger never sees; fall back to RFC 3339 rather than panic.
    t.format(TIME_TEXT).unwrap_or_else(|_| t.to_string())
}

pub(crate) fn parse_time_text(s: &str) -> Result<OffsetDateTime, LedgerError> {
    PrimitiveDateTime::parse(s, TIME_TEXT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| LedgerError::Corrupt(format!("time {s:?}: {e}")))
}

/// UTC with microsecond precision: what both backends store, so a value reads back equal to
/// what was written, whichever the backend.
pub(crate) fn normalize_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t)
}

/// The connections of one backend, and what they have shown of the ledger's health.
#[derive(Clone)]
pub(crate) struct Db {
    conn: Conn,
    state: Arc<DbState>,
}

#[derive(Clone)]
enum Conn {
    Sqlite {
        /// One writer with group commit, a few readers (see [`crate::sqlite`]).
        db: SqliteDb,
        /// For the migrations, which run through sqlx. Shared: a `Ledger` is cloned per request.
        connect: Arc<SqliteConnectOptions>,
    },
    Pg(PgPool),
}

/// Shared by every clone of one ledger.
struct DbState {
    health: WriteHealth,
    /// How long a PostgreSQL operation waits for a pooled connection (see [`Db::no_connection`]).
    acquire_timeout: Duration,
    /// The last [`Db::no_connection`] diagnosis: when, and what a direct connection met. One
    /// diagnosis at a time, reused for [`DIAGNOSIS_REUSE`]: an outage is not probed once per request.
    diagnosis: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
    /// One readiness probe at a time (see [`Db::probe_write`]).
    probing: tokio::sync::Mutex<()>,
}

/// How long [`Db::connect`] waits for the first PostgreSQL connection.
const FIRST_CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// How long a direct connection may take when diagnosing a pool timeout. The acquire timeout
/// plus this stays under the second within which a caller hears `ledger_unavailable` (SPEC §12).
const DIAGNOSIS_TIMEOUT: Duration = Duration::from_millis(300);
/// A diagnosis younger than this answers for the next pool timeouts.
const DIAGNOSIS_REUSE: Duration = Duration::from_secs(1);
/// How long a request waits for a connection of a pool that is busy, not down.
const BUSY_POOL_WAIT: Duration = Duration::from_secs(5);
/// A write that succeeded this recently, with no failure since, proves the ledger takes writes:
/// `/readyz` then needs no probe of its own (it is polled often; under load writes are constant).
const WRITE_FRESH: Duration = Duration::from_secs(1);

/// The outcome of the ledger's last write (any write: a request's, the background's, a probe's).
#[derive(Default)]
struct WriteHealth(std::sync::Mutex<Option<LastWrite>>);

struct LastWrite {
    at: Instant,
    /// `None`: it was stored. Else why it was not (the error's message names the cause).
    failed: Option<(Outage, String)>,
}

impl WriteHealth {
    fn record<T>(&self, result: &Result<T, LedgerError>) {
        let failed = match result {
            Ok(_) => None,
            // Contention is racing writers, not an outage; other errors are answers of a
            // database that works (a lease lost, a conflict) and say nothing new.
            Err(LedgerError::Contention { .. }) => return,
            Err(e) => match e.outage() {
                Some(outage) => Some((outage, e.to_string())),
                None => return,
            },
        };
        if let Ok(mut last) = self.0.lock() {
            *last = Some(LastWrite { at: Instant::now(), failed });
        }
    }

    /// A write was stored within `fresh`, and none failed since.
    fn fresh_success(&self, fresh: Duration) -> bool {
        self.0.lock().is_ok_and(|last| last.as_ref().is_some_and(|l| l.failed.is_none() && l.at.elapsed() < fresh))
    }

    fn mark_closed(&self) {
        self.record::<()>(&Err(LedgerError::Closed));
    }
}

/// A boxed future borrowing for `'a` (the shape a write's work takes, see [`Db::write`]).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the work of a write transaction ends: its changes kept, or undone (it only read, or
/// found it must not change anything). Either way its value reaches the caller only once the
/// transaction is settled: a grouped SQLite commit may carry other writers' changes that the
/// work read, and an answer must never rest on changes that were then lost.
pub(crate) enum Decision<T> {
    Keep(T),
    Undo(T),
}

/// The connection a write's work runs on, inside its transaction (on SQLite, inside its
/// savepoint of a grouped transaction).
pub(crate) enum Tx<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Pg(&'c mut PgConnection),
}

/// A result row of either backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Pg(PgRow),
}

fn bind_pg(sql: &str, args: Vec<Arg>) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
    let mut q = sqlx::query(sql);
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Time(v) => q.bind(v.map(normalize_time)),
            Arg::Json(v) => q.bind(v),
        };
    }
    q
}

impl Db {
    fn new(conn: Conn, options: &LedgerOptions) -> Db {
        let state = DbState {
            health: WriteHealth::default(),
            acquire_timeout: options.acquire_timeout,
            diagnosis: tokio::sync::Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        };
        Db { conn, state: Arc::new(state) }
    }

    pub(crate) async fn connect(url: &str, options: &LedgerOptions) -> Result<(Db, Backend), LedgerError> {
        let redacted = redact_url(url);
        let invalid = |reason: String| LedgerError::InvalidUrl { url: redacted.clone(), reason };
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // Each connection would see its own database, and nothing would survive a
                // restart: an accepted cancellation must never be lost.
                return Err(invalid("an in-memory SQLite ledger is not durable; name a file".to_owned()));
            }
            // sqlx parses the URL (and runs the migrations); the ledger's own connections open
            // the file it names.
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| invalid(e.to_string()))?
                .create_if_missing(true)
                .busy_timeout(options.sqlite_busy_timeout)
                .foreign_keys(true);
            let path = connect.get_filename().to_path_buf();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| LedgerError::Connect { url: redacted.clone(), source: Box::new(e) })?;
            }
            let config = SqliteConfig {
                path,
                busy_timeout: options.sqlite_busy_timeout,
                sync: options.sqlite_sync,
                readers: options.max_connections,
            };
            let db = tokio::task::spawn_blocking(move || SqliteDb::open(&config))
                .await
                .map_err(|e| LedgerError::Connect { url: redacted.clone(), source: Box::new(e) })?
                .map_err(|e| match e {
                    LedgerError::Connect { source, .. } => LedgerError::Connect { url: redacted.clone(), source },
                    other => other,
                })?;
            Ok((Db::new(Conn::Sqlite { db, connect: Arc::new(connect) }, options), Backend::Sqlite))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut connect = PgConnectOptions::from_str(url).map_err(|e| invalid(e.to_string()))?;
            if connect.get_application_name().is_none() {
                connect = connect.application_name("cancelgate");
            }
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            let db = Db::new(Conn::Pg(pool.clone()), options);
            // The first connection may wait a few seconds for a database still starting (the
            // acquire timeout, short for requests, would make a replica starting beside its
            // database give up at once); any other error fails at once.
            let deadline = Instant::now() + FIRST_CONNECT_WITHIN;
            loop {
                match pool.acquire().await {
                    Ok(_first) => break,
                    Err(sqlx::Error::PoolTimedOut) if Instant::now() < deadline => {}
                    Err(sqlx::Error::PoolTimedOut) => {
                        let source = match db.no_connection(&pool).await {
                            LedgerError::Unavailable(source) => source,
                            other => Box::new(other),
                        };
                        return Err(LedgerError::Connect { url: redacted, source });
                    }
                    Err(source) => return Err(LedgerError::Connect { url: redacted, source: Box::new(source) }),
                }
            }
            Ok((db, Backend::Postgres))
        } else {
            Err(invalid("expected sqlite://… or postgres://…".to_owned()))
        }
    }

    /// Runs `work` in a write transaction and returns its value once the transaction is
    /// settled (see [`Decision`]). On PostgreSQL: its own `BEGIN` … `COMMIT` (READ COMMITTED;
    /// constraints and row locks order concurrent writers). On SQLite: handed to the one writer
    /// of this process, which groups the work of concurrent callers into one transaction, one
    /// `COMMIT` (one fsync) for all of them.
    ///
    /// Once handed over, the work runs to its end even if the caller stops waiting: a write is
    /// never left half-done, and the caller's answer is the only thing lost.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        let result = match &self.conn {
            Conn::Sqlite { db, .. } => db.write(work).await,
            Conn::Pg(pool) => self.pg_write(pool, work).await,
        };
        self.state.health.record(&result);
        result
    }

    async fn pg_write<T, F>(&self, pool: &PgPool, work: F) -> Result<T, LedgerError>
    where
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        let mut conn = self.pg_acquire(pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Dropping `tx` on an error rolls it back.
        match work(Tx::Pg(&mut tx)).await? {
            Decision::Keep(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Decision::Undo(value) => {
                tx.rollback().await?;
                Ok(value)
            }
        }
    }

    /// A connection from the pool, its timeout diagnosed (see [`Db::no_connection`]). A database
    /// that is down or unreachable fails after one acquire timeout (SPEC §12: `ledger_unavailable`
    /// within a second), but one that answers while every pooled connection is in use (a burst)
    /// is waited for up to [`BUSY_POOL_WAIT`]: a busy pool is not an outage, and shedding it would
    /// turn every burst into 503s. (The caller's own wait is bounded by `respond_within_ms`.)
    async fn pg_acquire(&self, pool: &PgPool) -> Result<sqlx::pool::PoolConnection<Postgres>, LedgerError> {
        let deadline = Instant::now() + BUSY_POOL_WAIT;
        loop {
            match pool.acquire().await {
                Ok(conn) => return Ok(conn),
                Err(sqlx::Error::PoolTimedOut) => {
                    let error = self.no_connection(pool).await;
                    if error.outage() != Some(Outage::Busy) || Instant::now() >= deadline {
                        return Err(error);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The pool gave no connection in time. sqlx retries a refused connection until the acquire
    /// timeout and then reports only that it timed out, so one direct connection (bounded by
    /// [`DIAGNOSIS_TIMEOUT`]) finds out why: connection refused, the server shutting down, no
    /// answer… or nothing wrong, when the pool was only busy. Its message carries no URL.
    async fn no_connection(&self, pool: &PgPool) -> LedgerError {
        let waited = self.state.acquire_timeout;
        let mut last = self.state.diagnosis.lock().await;
        let cause = match &*last {
            Some((at, cause)) if at.elapsed() < DIAGNOSIS_REUSE => cause.clone(),
            _ => {
                let options = pool.connect_options();
                let cause = match tokio::time::timeout(
                    DIAGNOSIS_TIMEOUT,
                    <PgConnection as sqlx::Connection>::connect_with(&options),
                )
                .await
                {
                    Ok(Ok(conn)) => {
                        let _ = sqlx::Connection::close(conn).await;
                        None
                    }
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("the database did not answer a connection within {DIAGNOSIS_TIMEOUT:?}")),
                };
                *last = Some((Instant::now(), cause.clone()));
                cause
            }
        };
        LedgerError::Unavailable(Box::new(NoConnection { waited, cause }))
    }

    /// Proves the ledger takes writes, cheaply (for `/readyz`): a write stored within
    /// [`WRITE_FRESH`] with no failure since is proof enough; otherwise one small write of its
    /// own, through the same path as every other (on SQLite the writer, so a full disk fails it
    /// as it fails them). One probe at a time: concurrent callers share its outcome.
    pub(crate) async fn probe_write(&self, sql: Sql<'static>, args: Vec<Arg>) -> Result<(), LedgerError> {
        if self.state.health.fresh_success(WRITE_FRESH) {
            return Ok(());
        }
        let _one = self.state.probing.lock().await;
        if self.state.health.fresh_success(WRITE_FRESH) {
            return Ok(());
        }
        self.write_execute(sql, args).await.map(drop)
    }

    pub(crate) async fn fetch_all(&self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Vec<Row>, LedgerError> {
        Ok(match &self.conn {
            Conn::Sqlite { db, .. } => db.read(sql.sqlite, args).await?.into_iter().map(Row::Sqlite).collect(),
            Conn::Pg(pool) => {
                let mut conn = self.pg_acquire(pool).await?;
                bind_pg(sql.pg, args).fetch_all(&mut *conn).await?.into_iter().map(Row::Pg).collect()
            }
        })
    }

    pub(crate) async fn fetch_optional(&self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Option<Row>, LedgerError> {
        Ok(match &self.conn {
            Conn::Sqlite { db, .. } => db.read(sql.sqlite, args).await?.into_iter().next().map(Row::Sqlite),
            Conn::Pg(pool) => {
                let mut conn = self.pg_acquire(pool).await?;
                bind_pg(sql.pg, args).fetch_optional(&mut *conn).await?.map(Row::Pg)
            }
        })
    }

    pub(crate) async fn fetch_one(&self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Row, LedgerError> {
        Ok(match &self.conn {
            Conn::Sqlite { db, .. } => Row::Sqlite(
                db.read(sql.sqlite, args)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or_else(|| LedgerError::Corrupt(format!("no row from {:?}", sql.sqlite)))?,
            ),
            Conn::Pg(pool) => {
                let mut conn = self.pg_acquire(pool).await?;
                Row::Pg(bind_pg(sql.pg, args).fetch_one(&mut *conn).await?)
            }
        })
    }

    /// Runs one writing statement as its own write and returns its rows.
    pub(crate) async fn write_all(&self, sql: Sql<'static>, args: Vec<Arg>) -> Result<Vec<Row>, LedgerError> {
        match &self.conn {
            Conn::Sqlite { .. } => {
                self.write(move |mut tx| Box::pin(async move { tx.fetch_all(sql, args).await.map(Decision::Keep) }))
                    .await
            }
            // One statement is atomic by itself: no `BEGIN`/`COMMIT` round trips.
            Conn::Pg(_) => {
                let result = self.fetch_all(sql, args).await;
                self.state.health.record(&result);
                result
            }
        }
    }

    /// [`Db::write_all`] returning the number of rows changed.
    pub(crate) async fn write_execute(&self, sql: Sql<'static>, args: Vec<Arg>) -> Result<u64, LedgerError> {
        match &self.conn {
            Conn::Sqlite { .. } => {
                self.write(move |mut tx| Box::pin(async move { tx.execute(sql, args).await.map(Decision::Keep) })).await
            }
            Conn::Pg(pool) => {
                let result = match self.pg_acquire(pool).await {
                    Ok(mut conn) => {
                        bind_pg(sql.pg, args).execute(&mut *conn).await.map(|r| r.rows_affected()).map_err(Into::into)
                    }
                    Err(e) => Err(e),
                };
                self.state.health.record(&result);
                result
            }
        }
    }

    /// Runs the embedded migrations through sqlx (on SQLite on a connection of its own; the
    /// file's lock orders it against the writer).
    pub(crate) async fn migrate(&self, sqlite: &Migrator, postgres: &Migrator) -> Result<(), LedgerError> {
        match &self.conn {
            Conn::Sqlite { connect, .. } => {
                // A pool of one rather than a bare connection: sqlx's `Migrator::run` on
                // `&mut SqliteConnection` makes a future that is not `Send`.
                let pool = SqlitePoolOptions::new().max_connections(1).connect_with((**connect).clone()).await?;
                let migrated = sqlite.run(&pool).await;
                pool.close().await;
                migrated?;
            }
            Conn::Pg(pool) => postgres.run(pool).await?,
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        // From now on every write fails: no earlier success may vouch for one.
        self.state.health.mark_closed();
        match &self.conn {
            Conn::Sqlite { db, .. } => db.close().await,
            Conn::Pg(pool) => pool.close().await,
        }
    }
}

impl Tx<'_> {
    pub(crate) async fn fetch_all(&mut self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Vec<Row>, LedgerError> {
        Ok(match self {
            Tx::Sqlite(c) => sqlite::fetch_all(c, sql.sqlite, args)?.into_iter().map(Row::Sqlite).collect(),
            Tx::Pg(c) => bind_pg(sql.pg, args).fetch_all(&mut **c).await?.into_iter().map(Row::Pg).collect(),
        })
    }

    pub(crate) async fn fetch_optional(&mut self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Option<Row>, LedgerError> {
        Ok(match self {
            Tx::Sqlite(c) => sqlite::fetch_all(c, sql.sqlite, args)?.into_iter().next().map(Row::Sqlite),
            Tx::Pg(c) => bind_pg(sql.pg, args).fetch_optional(&mut **c).await?.map(Row::Pg),
        })
    }

    /// Runs a statement and returns the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: Sql<'_>, args: Vec<Arg>) -> Result<u64, LedgerError> {
        Ok(match self {
            Tx::Sqlite(c) => sqlite::execute(c, sql.sqlite, args)?,
            Tx::Pg(c) => bind_pg(sql.pg, args).execute(&mut **c).await?.rows_affected(),
        })
    }
}

/// Decoding of one column. PostgreSQL through sqlx's types; SQLite from its storage classes
/// (text, integer, blob; JSON and times are text, booleans integers).
impl Row {
    fn pg<T>(&self, column: &str) -> Result<T, LedgerError>
    where
        T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        match self {
            Row::Pg(r) => r.try_get::<T, _>(column).map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}"))),
            Row::Sqlite(_) => Err(LedgerError::Corrupt(format!("column {column}: not a PostgreSQL row"))),
        }
    }

    /// The SQLite value, `None` for NULL.
    fn lite(&self, column: &str) -> Result<Option<&SqlValue>, LedgerError> {
        match self {
            Row::Sqlite(r) => Ok(Some(r.value(column)?).filter(|v| !matches!(v, SqlValue::Null))),
            Row::Pg(_) => Err(LedgerError::Corrupt(format!("column {column}: not a SQLite row"))),
        }
    }

    fn required<T>(column: &str, value: Option<T>) -> Result<T, LedgerError> {
        value.ok_or_else(|| LedgerError::Corrupt(format!("column {column}: unexpected NULL")))
    }

    fn mismatch(column: &str, want: &str, got: &SqlValue) -> LedgerError {
        LedgerError::Corrupt(format!("column {column}: expected {want}, found {:?}", got.data_type()))
    }

    pub(crate) fn opt_text(&self, column: &str) -> Result<Option<String>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match self.lite(column)? {
                None => Ok(None),
                Some(SqlValue::Text(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Self::mismatch(column, "text", other)),
            },
        }
    }

    pub(crate) fn text(&self, column: &str) -> Result<String, LedgerError> {
        Self::required(column, self.opt_text(column)?)
    }

    pub(crate) fn opt_int(&self, column: &str) -> Result<Option<i64>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match self.lite(column)? {
                None => Ok(None),
                Some(SqlValue::Integer(i)) => Ok(Some(*i)),
                Some(other) => Err(Self::mismatch(column, "integer", other)),
            },
        }
    }

    pub(crate) fn int(&self, column: &str) -> Result<i64, LedgerError> {
        Self::required(column, self.opt_int(column)?)
    }

    pub(crate) fn bool(&self, column: &str) -> Result<bool, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => Ok(self.int(column)? != 0),
        }
    }

    pub(crate) fn bytes(&self, column: &str) -> Result<Vec<u8>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => match Self::required(column, self.lite(column)?)? {
                SqlValue::Blob(b) => Ok(b.clone()),
                other => Err(Self::mismatch(column, "blob", other)),
            },
        }
    }

    pub(crate) fn opt_json(&self, column: &str) -> Result<Option<Value>, LedgerError> {
        match self {
            Row::Pg(_) => self.pg(column),
            Row::Sqlite(_) => self
                .opt_text(column)?
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}")))
                })
                .transpose(),
        }
    }

    pub(crate) fn json(&self, column: &str) -> Result<Value, LedgerError> {
        Self::required(column, self.opt_json(column)?)
    }

    pub(crate) fn opt_time(&self, column: &str) -> Result<Option<OffsetDateTime>, LedgerError> {
        match self {
            Row::Sqlite(_) => self.opt_text(column)?.as_deref().map(parse_time_text).transpose(),
            Row::Pg(r) => r
                .try_get::<Option<OffsetDateTime>, _>(column)
                .map(|t| t.map(normalize_time))
                .map_err(|e| LedgerError::Corrupt(format!("column {column}: {e}"))),
        }
    }

    pub(crate) fn time(&self, column: &str) -> Result<OffsetDateTime, LedgerError> {
        Self::required(column, self.opt_time(column)?)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn time_text_is_fixed_width_utc_and_round_trips() {
        let cases = [
            (datetime!(2026-04-01 01:38:06.924 UTC), "2026-04-01T01:38:06.924000Z"),
            (datetime!(2026-04-01 03:38:06 +02:00), "2026-04-01T01:38:06.000000Z"),
            (datetime!(2026-04-01 01:38:06.123456789 UTC), "2026-04-01T01:38:06.123456Z"),
        ];
        for (t, want) in cases {
            assert_eq!(time_text(t), want);
            assert_eq!(parse_time_text(want).unwrap(), normalize_time(t));
        }
    }

    #[test]
    fn time_text_orders_like_time() {
        let times = [
            datetime!(2026-04-01 01:38:06 UTC),
            datetime!(2026-04-01 01:38:06.5 UTC),
            datetime!(2026-04-01 01:38:06.924 UTC),
            datetime!(2026-04-01 01:38:07 UTC),
            datetime!(2026-12-31 23:59:59.999999 UTC),
        ];
        for pair in times.windows(2) {
            assert!(time_text(pair[0]) < time_text(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn corrupt_time_text_is_an_error() {
        assert!(matches!(parse_time_text("2026-04-01 01:38:06"), Err(LedgerError::Corrupt(_))));
    }
}
