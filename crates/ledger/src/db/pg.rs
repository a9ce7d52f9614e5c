//! PostgreSQL's side of [`Db`]: a write's own transaction, and a pool timeout diagnosed.

use std::time::Instant;

use sqlx::postgres::{PgConnection, PgPool, Postgres};

use super::{BUSY_POOL_WAIT, BoxFuture, DIAGNOSIS_REUSE, DIAGNOSIS_TIMEOUT, Db, Decision, Tx};
use crate::error::{LedgerError, NoConnection, Outage};

impl Db {
    pub(super) async fn pg_write<T, F>(&self, pool: &PgPool, work: F) -> Result<T, LedgerError>
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
    pub(super) async fn pg_acquire(&self, pool: &PgPool) -> Result<sqlx::pool::PoolConnection<Postgres>, LedgerError> {
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
    pub(super) async fn no_connection(&self, pool: &PgPool) -> LedgerError {
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
}
