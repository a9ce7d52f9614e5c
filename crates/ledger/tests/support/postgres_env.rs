//! Whether a PostgreSQL test runs: the one rule shared by the ledger's tests and the gateway's
//! end-to-end tests (`tests/api`, which include this file by path).
//!
//! `CANCELGATE_TEST_POSTGRES_URL` set: run against it. Unset: print a `skipped:` line and pass,
//! except under `CI`, where a PostgreSQL test that cannot run fails.

use std::io::Write as _;

pub const POSTGRES_URL_VAR: &str = "CANCELGATE_TEST_POSTGRES_URL";

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The base URL, or `None` (after saying so) when PostgreSQL tests are skipped.
pub fn postgres_base_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if in_ci() => panic!(
            "CI is set but {POSTGRES_URL_VAR} is not: the PostgreSQL variant of {test} must run in CI \
             (e.g. {POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test)"
        ),
        _ => {
            // Straight to stderr: libtest captures `eprintln!` of passing tests.
            let _ = writeln!(std::io::stderr(), "skipped: postgres::{test} (set {POSTGRES_URL_VAR} to run it)");
            None
        }
    }
}

/// `base` with the `search_path` startup option set to `schema`.
pub fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options[search_path]={schema}")
}
