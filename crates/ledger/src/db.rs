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

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::error::{LedgerError, Outage, redact_url};
use crate::sqlite::{self, Placement, SqliteConfig, SqliteDb};
use crate::types::{Backend, LedgerOptions};

mod codec;
mod pg;

pub(crate) use self::codec::{Arg, Row, Sql, args, bind_pg, normalize_time, time_text};

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
    /// constraints and row locks order concurrent writers). On SQLite: committed on the caller's
    /// thread when the one writing connection is free, else handed to the writer thread, which
    /// groups the work of concurrent callers into one transaction, one `COMMIT` (one fsync) for
    /// all of them.
    ///
    /// Once handed over, the work runs to its end even if the caller stops waiting: a write is
    /// never left half-done, and the caller's answer is the only thing lost.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        self.write_at(Placement::CallerIfFree, work).await
    }

    /// [`Db::write`] for work that may take long (a purge batch): on SQLite always the writer
    /// thread's, never run on the caller's async worker.
    pub(crate) async fn write_queued<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        self.write_at(Placement::WriterThread, work).await
    }

    async fn write_at<T, F>(&self, placement: Placement, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        // PostgreSQL's branches are boxed, here and in the reads below: sqlx's futures are
        // ~1.3 KB, and inline they would size every ledger call's future (and the task of every
        // cancel in flight that awaits one) on SQLite too, where the branch is ~200 bytes.
        let result = match &self.conn {
            Conn::Sqlite { db, .. } => db.write(placement, work).await,
            Conn::Pg(pool) => Box::pin(self.pg_write(pool, work)).await,
        };
        self.state.health.record(&result);
        result
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
            Conn::Pg(pool) => Box::pin(async {
                let mut conn = self.pg_acquire(pool).await?;
                Ok::<_, LedgerError>(bind_pg(sql.pg, args).fetch_all(&mut *conn).await?)
            })
            .await?
            .into_iter()
            .map(Row::Pg)
            .collect(),
        })
    }

    pub(crate) async fn fetch_optional(&self, sql: Sql<'_>, args: Vec<Arg>) -> Result<Option<Row>, LedgerError> {
        Ok(match &self.conn {
            Conn::Sqlite { db, .. } => db.read(sql.sqlite, args).await?.into_iter().next().map(Row::Sqlite),
            Conn::Pg(pool) => Box::pin(async {
                let mut conn = self.pg_acquire(pool).await?;
                Ok::<_, LedgerError>(bind_pg(sql.pg, args).fetch_optional(&mut *conn).await?)
            })
            .await?
            .map(Row::Pg),
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
            Conn::Pg(pool) => Row::Pg(
                Box::pin(async {
                    let mut conn = self.pg_acquire(pool).await?;
                    Ok::<_, LedgerError>(bind_pg(sql.pg, args).fetch_one(&mut *conn).await?)
                })
                .await?,
            ),
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
                let result = Box::pin(async {
                    let mut conn = self.pg_acquire(pool).await?;
                    bind_pg(sql.pg, args).execute(&mut *conn).await.map(|r| r.rows_affected()).map_err(Into::into)
                })
                .await;
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
                // Foreign keys off: a table rebuilt by a migration (0006) is dropped and renamed
                // within its transaction, which the checks would refuse (see that migration).
                let options = (**connect).clone().foreign_keys(false);
                let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
                let migrated = sqlite.run(&pool).await;
                pool.close().await;
                migrated?;
            }
            Conn::Pg(pool) => postgres.run(pool).await?,
        }
        Ok(())
    }

    /// On SQLite, the size of the database file and its log (WAL), bytes; `None` on PostgreSQL.
    pub(crate) fn sqlite_file_bytes(&self) -> Option<Result<u64, LedgerError>> {
        let Conn::Sqlite { connect, .. } = &self.conn else { return None };
        let path = connect.get_filename();
        let size = |p: &std::path::Path| match std::fs::metadata(p) {
            Ok(m) => Ok(m.len()),
            // No log (yet, or after a clean close): nothing to count.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(LedgerError::Unavailable(Box::new(e))),
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Some(size(path).and_then(|db| Ok(db + size(std::path::Path::new(&wal))?)))
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
