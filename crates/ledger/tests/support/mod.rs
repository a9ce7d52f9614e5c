//! Runs one test body against a fresh ledger of each backend.
//!
//! - SQLite: a file in its own temporary directory (a missing sub-directory, so connect has to
//!   create it).
//! - PostgreSQL, when `CANCELGATE_TEST_POSTGRES_URL` is set: its own schema
//!   (`cg_test_<pid>_<n>_<nanos>`), selected with the `search_path` startup option, dropped at
//!   the end even when the body panics, so tests run in parallel on one database. When the
//!   variable is unset the test prints a `skipped:` line and passes, except under `CI`, where it
//!   fails; with the variable set, an unreachable database always fails.

#![allow(dead_code)] // each test binary uses a part

mod postgres_env;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cancelgate_ledger::{Backend, Ledger, LedgerOptions, redact_url};
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

pub use postgres_env::{POSTGRES_URL_VAR, postgres_base_url, with_search_path};

/// What a test body gets: a migrated ledger, and the URL to open a raw connection with.
#[derive(Debug, Clone)]
pub struct Env {
    pub ledger: Ledger,
    pub url: String,
}

impl Env {
    pub fn backend(&self) -> Backend {
        self.ledger.backend()
    }
}

pub fn options() -> LedgerOptions {
    LedgerOptions { max_connections: 8, acquire_timeout: Duration::from_secs(30), ..LedgerOptions::default() }
}

/// A name no other test (of this or a concurrent process) uses.
pub fn unique_suffix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos)
}

/// Connects, checks the database starts unmigrated, migrates, and runs `body`; all of it in a
/// task of its own, so a panic comes back as a value and the caller's cleanup still runs.
async fn run_body<F, Fut>(url: String, body: F) -> Result<(), Box<dyn std::any::Any + Send>>
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let task = tokio::spawn(async move {
        let ledger = Ledger::connect(&url, options()).await.unwrap();
        assert!(!ledger.is_migrated().await.unwrap(), "a fresh database is not migrated");
        ledger.migrate().await.unwrap();
        assert!(ledger.is_migrated().await.unwrap());
        body(Env { ledger: ledger.clone(), url }).await;
        ledger.close().await;
    });
    task.await.map_err(|e| match e.try_into_panic() {
        Ok(panic) => panic,
        Err(e) => Box::new(format!("test body did not finish: {e}")),
    })
}

pub async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/data/ledger.db", dir.path().display());
    let result = run_body(url, body).await;
    drop(dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn admin_connection(base: &str) -> PgConnection {
    match PgConnection::connect(base).await {
        Ok(conn) => conn,
        Err(e) => panic!("{POSTGRES_URL_VAR} is set but PostgreSQL at {} is unreachable: {e}", redact_url(base)),
    }
}

pub async fn run_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = postgres_base_url(test) else { return };
    let schema = format!("cg_test_{}", unique_suffix());
    let mut admin = admin_connection(&base).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
    let result = run_body(with_search_path(&base, &schema), body).await;
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await;
    let _ = admin.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    dropped.unwrap();
}

/// `backend_tests!(a, b, …)` defines `sqlite::a`, `postgres::a`, … each running the body
/// `a(env: Env)` of the enclosing module.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::run_sqlite(super::$name).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $crate::support::run_postgres(stringify!($name), super::$name).await
                }
            )*
        }
    };
}
