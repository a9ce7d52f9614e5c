//! A fresh PostgreSQL schema per test, dropped at the end even when the test panics. Whether the
//! test runs at all follows the ledger's rule (`postgres_env`, shared with crates/ledger/tests).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::postgres_env::{postgres_base_url, with_search_path};

/// Runs `body` with the URL of a new, empty schema; skips (or fails under CI) without PostgreSQL.
pub async fn with_schema<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = postgres_base_url(test) else { return };
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let schema = format!("cg_e2e_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos);
    let mut admin = PgConnection::connect(&base).await.expect("PostgreSQL at CANCELGATE_TEST_POSTGRES_URL answers");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
    // Spawned, so a panic comes back as a value and the schema is still dropped.
    let result = tokio::spawn(body(with_search_path(&base, &schema))).await;
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await;
    let _ = admin.close().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap();
}
