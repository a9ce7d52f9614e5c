//! The connections: how each is opened (its role's pragmas), statements prepared from the cache
//! and bound by `$n`, and rusqlite's errors as the ledger's.

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};

use super::{SqliteConfig, SqliteRow};
use crate::db::{Arg, time_text};
use crate::error::LedgerError;
use crate::stored_json::StoredJson;
use crate::types::SqliteSync;

/// Distinct statements the ledger runs, so each is prepared once per connection.
const STATEMENT_CACHE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Role {
    Writer,
    Checkpointer,
    Reader,
}

pub(super) fn open_connection(config: &SqliteConfig, role: Role) -> Result<Connection, LedgerError> {
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
        // `serde_json::to_string` writes straight into the string; `Value`'s `Display` (which
        // `to_string()` would use) goes through a formatter call per token. It cannot fail for a
        // `Value` (its keys are strings): the fallback is never taken.
        Arg::Json(v) => text(v.map(|v| serde_json::to_string(&v).unwrap_or_else(|_| v.to_string()))),
        Arg::Stored(v) => text(v.map(StoredJson::into_string)),
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

pub(super) fn query(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<Vec<SqliteRow>, LedgerError> {
    let run = || -> rusqlite::Result<Vec<SqliteRow>> {
        let mut stmt = prepare(conn, sql, args)?;
        let columns = column_names(&stmt);
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns.len()).map(|i| row.get::<_, SqlValue>(i)).collect::<Result<_, _>>()?;
            out.push(SqliteRow::new(columns.clone(), values));
        }
        Ok(out)
    };
    run().map_err(sqlite_error)
}

/// How many column lists [`column_names`] keeps per thread: more than the ledger's statements
/// with distinct result columns.
const KEPT_COLUMN_LISTS: usize = 32;

thread_local! {
    static COLUMN_LISTS: std::cell::RefCell<Vec<Arc<[String]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The statement's column names, shared with the rows of every earlier statement that had the
/// same: a record's 28 names were 28 `String`s per query (~6,500 instructions, 3 % of a replay).
/// A kept list is taken only if each of its names is the statement's own, compared in place.
fn column_names(stmt: &rusqlite::Statement<'_>) -> Arc<[String]> {
    let count = stmt.column_count();
    let same = |list: &[String]| {
        list.len() == count && list.iter().enumerate().all(|(i, name)| stmt.column_name(i).is_ok_and(|n| n == name))
    };
    COLUMN_LISTS.with_borrow_mut(|lists| {
        if let Some(list) = lists.iter().find(|list| same(list)) {
            return list.clone();
        }
        let list: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
        if lists.len() == KEPT_COLUMN_LISTS {
            lists.remove(0);
        }
        lists.push(list.clone());
        list
    })
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<u64, LedgerError> {
    let mut stmt = prepare(conn, sql, args).map_err(sqlite_error)?;
    stmt.raw_execute().map(|n| n as u64).map_err(sqlite_error)
}

pub(crate) fn fetch_all(conn: &Connection, sql: &str, args: Vec<Arg>) -> Result<Vec<SqliteRow>, LedgerError> {
    query(conn, sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_share_a_column_list_only_when_every_name_is_theirs() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a (x INTEGER, y TEXT); INSERT INTO a VALUES (1, 'one');").unwrap();
        let first = query(&conn, "SELECT x, y FROM a", vec![]).unwrap();
        let again = query(&conn, "SELECT x, y FROM a WHERE x = 1", vec![]).unwrap();
        assert!(Arc::ptr_eq(&first[0].columns, &again[0].columns), "the same names: one list");
        // As many columns, other names or another order: never the kept list.
        for (sql, names) in [
            ("SELECT y AS x, x AS y FROM a", ["x", "y"]),
            ("SELECT y, x FROM a", ["y", "x"]),
            ("SELECT x, y AS z FROM a", ["x", "z"]),
        ] {
            let rows = query(&conn, sql, vec![]).unwrap();
            assert_eq!(&*rows[0].columns, names.map(str::to_owned).as_slice(), "{sql}");
        }
        let swapped = query(&conn, "SELECT y AS x, x AS y FROM a", vec![]).unwrap();
        assert_eq!(swapped[0].value("x").unwrap(), &SqlValue::Text("one".to_owned()));
        assert_eq!(swapped[0].value("y").unwrap(), &SqlValue::Integer(1));
    }
}
