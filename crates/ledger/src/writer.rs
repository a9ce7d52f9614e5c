//! The one writer of a SQLite ledger, with group commit.
//!
//! SQLite runs one write transaction at a time, whatever the number of connections, and each
//! `COMMIT` costs an fsync (`synchronous = FULL`). So instead of every caller taking its turn
//! with a transaction of its own, one task owns the only writing connection and takes the writes
//! waiting in its queue together: `BEGIN IMMEDIATE`, each write inside a `SAVEPOINT` of its own
//! (so one that fails or undoes itself leaves the others alone), one `COMMIT`, then every caller
//! is answered. Under load a commit carries many writes; alone, a write is its own transaction
//! with no savepoint. Nothing is acknowledged before the `COMMIT` that holds it returned: if it
//! fails, every write of the group is told so (nothing of them was stored).
//!
//! Keeping the connection in one place also keeps its page cache warm, and a writer never waits
//! for SQLite's busy handler: the queue orders writers, in arrival order.

use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::db::{BoxFuture, Decision, Tx};
use crate::error::LedgerError;

/// Writes waiting beyond this make their callers wait to enqueue (back-pressure, in order).
const QUEUE: usize = 4_096;
/// Writes in one transaction at most: bounds how long the file's write lock is held and how
/// long the first write of a group waits for the last.
const MAX_GROUP: usize = 256;

/// A handle on the writer task. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteWriter {
    queue: mpsc::Sender<Message>,
}

enum Message {
    Write(Box<dyn Work>),
    /// Finish the queued writes, close the connection (which checkpoints the WAL), then answer.
    Close(oneshot::Sender<()>),
}

/// One caller's write, its result type erased so writes of every kind share the queue.
trait Work: Send {
    /// Runs the write on the writer's connection. The caller hears of it only through the
    /// returned [`Ran`], once the transaction is settled.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran>;
    /// Tells the caller its write was never run.
    fn refuse(self: Box<Self>, error: LedgerError);
}

/// A write that ran: whether its changes are to be kept, and how to answer its caller once the
/// transaction is settled (`None`: committed; `Some`: it failed, nothing was stored).
struct Ran {
    keep: bool,
    answer: Box<dyn FnOnce(Option<Arc<sqlx::Error>>) + Send>,
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
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Ran> {
        let Typed { work, reply } = *self;
        Box::pin(async move {
            let (keep, result) = match work(Tx::Sqlite(conn)).await {
                Ok(Decision::Keep(value)) => (true, Ok(value)),
                Ok(Decision::Undo(value)) => (false, Ok(value)),
                Err(e) => (false, Err(e)),
            };
            let answer = move |failed: Option<Arc<sqlx::Error>>| {
                let _ = reply.send(match failed {
                    None => result,
                    Some(e) => Err(LedgerError::WriteFailed(e)),
                });
            };
            Ran { keep, answer: Box::new(answer) }
        })
    }

    fn refuse(self: Box<Self>, error: LedgerError) {
        let _ = self.reply.send(Err(error));
    }
}

impl SqliteWriter {
    /// Opens the writing connection and starts the writer task.
    pub(crate) async fn open(options: &SqliteConnectOptions) -> Result<SqliteWriter, sqlx::Error> {
        let conn = options.connect().await?;
        let (queue, messages) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, messages));
        Ok(SqliteWriter { queue })
    }

    /// Queues `work` and waits for its result, given once its transaction is settled.
    pub(crate) async fn submit<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Tx<'c>) -> BoxFuture<'c, Result<Decision<T>, LedgerError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Message::Write(Box::new(Typed { work, reply }))).await.map_err(|_| LedgerError::Closed)?;
        // The writer answers every write it takes, unless it died (a bug): then the ledger is closed.
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// Runs what is queued, then closes the connection. Writes queued later are refused with
    /// [`LedgerError::Closed`].
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

async fn run(mut conn: SqliteConnection, mut messages: mpsc::Receiver<Message>) {
    let mut received = Vec::with_capacity(MAX_GROUP);
    let mut closing = Vec::new();
    while messages.recv_many(&mut received, MAX_GROUP).await > 0 {
        let mut group = Vec::with_capacity(received.len());
        for message in received.drain(..) {
            match message {
                Message::Write(work) => group.push(work),
                Message::Close(done) => {
                    // Refuse new writes; those already queued are still run, below and next turns.
                    messages.close();
                    closing.push(done);
                }
            }
        }
        if !group.is_empty() {
            commit_group(&mut conn, group).await;
        }
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the ledger's writing connection failed");
    }
    for done in closing {
        let _ = done.send(());
    }
}

/// One transaction for the whole group. A lone write needs no savepoint: its own `COMMIT` or
/// `ROLLBACK` ends it.
async fn commit_group(conn: &mut SqliteConnection, group: Vec<Box<dyn Work>>) {
    metrics::histogram!(GROUP_SIZE).record(group.len() as f64);
    if let Err(e) = execute(conn, "BEGIN IMMEDIATE").await {
        let e = Arc::new(e);
        for work in group {
            work.refuse(LedgerError::WriteFailed(e.clone()));
        }
        return;
    }
    let grouped = group.len() > 1;
    let mut ran: Vec<Ran> = Vec::with_capacity(group.len());
    // Set when the transaction itself broke: nothing of this group will be stored.
    let mut broken: Option<Arc<sqlx::Error>> = None;
    for work in group {
        if let Some(e) = &broken {
            work.refuse(LedgerError::WriteFailed(e.clone()));
            continue;
        }
        if grouped && let Err(e) = execute(conn, "SAVEPOINT write").await {
            let e = Arc::new(e);
            work.refuse(LedgerError::WriteFailed(e.clone()));
            broken = Some(e);
            continue;
        }
        let done = work.run(conn).await;
        if grouped {
            let ended = if done.keep {
                execute(conn, "RELEASE write").await
            } else {
                match execute(conn, "ROLLBACK TO write").await {
                    Ok(()) => execute(conn, "RELEASE write").await,
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = ended {
                broken = Some(Arc::new(e));
            }
        }
        ran.push(done);
    }
    let keep_any = ran.iter().any(|r| r.keep);
    let settled = match broken {
        Some(e) => {
            // A failed statement may already have ended the transaction; a second error is moot.
            let _ = execute(conn, "ROLLBACK").await;
            Some(e)
        }
        None => {
            let end = if keep_any { "COMMIT" } else { "ROLLBACK" };
            match execute(conn, end).await {
                Ok(()) => None,
                Err(e) => {
                    let _ = execute(conn, "ROLLBACK").await;
                    Some(Arc::new(e))
                }
            }
        }
    };
    if let Some(e) = &settled {
        tracing::error!(error = %e, writes = ran.len(), "a ledger write transaction failed; its writes were not stored");
    }
    for done in ran {
        (done.answer)(settled.clone());
    }
}

/// The histogram of writes per SQLite transaction (how much group commit saves).
pub const GROUP_SIZE: &str = "cancelgate_ledger_writes_per_commit";

async fn execute(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(conn).await.map(drop)
}
