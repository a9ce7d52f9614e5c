//! [`LedgerError`], and the mapping of sqlx's errors onto it.

use std::sync::Arc;

/// The database driver's error (sqlx's or rusqlite's), as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a ledger operation can fail with. No variant carries a secret: URLs are redacted
/// (see [`redact_url`]) and sqlx's database errors carry no connection parameters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The URL is neither `sqlite:` nor `postgres:` or does not parse.
    #[error("invalid ledger URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The first connection failed (bad host, auth, unreadable file…).
    #[error("cannot connect to the ledger at {url}")]
    Connect {
        url: String,
        #[source]
        source: BoxError,
    },
    /// The database cannot be reached or is overloaded (pool timeout, I/O, busy, disk full): retry
    /// later, `503` for a caller. [`LedgerError::outage`] says which.
    ///
    /// The driver's error is part of the message, not a `source`: every log line that prints
    /// the error names the cause (connection refused, disk full…), and a chain printer does not
    /// repeat it.
    #[error("the ledger is unavailable: {0}")]
    Unavailable(BoxError),
    /// Applying or checking the embedded migrations failed.
    #[error("ledger migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// No cancellation (or attempt) with that id.
    #[error("cancellation {id} not found")]
    NotFound { id: String },
    /// The caller does not hold the lease on this record (any more): another replica took it
    /// over, or it is final. Stop driving it; re-read it if needed.
    #[error("the lease on cancellation {id} is not held by this owner")]
    LeaseLost { id: String },
    /// The operation contradicts the stored state (e.g. finishing an attempt twice).
    #[error("ledger conflict on {id}: {detail}")]
    Conflict { id: String, detail: String },
    /// Racing writers kept invalidating each other beyond the retry budget: retry later.
    #[error("the ledger stayed contended during {operation}")]
    Contention { operation: &'static str },
    /// `starting_after` names no record.
    #[error("no cancellation {0} to list after")]
    UnknownCursor(String),
    /// The caller passed a value the ledger refuses (an empty id, a cancelled record without
    /// `cancelled_at`…): a bug of the caller.
    #[error("invalid ledger input: {0}")]
    InvalidInput(String),
    /// The operation exists on one backend only.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A stored row does not decode (a value out of range, unparseable time or JSON).
    #[error("corrupt ledger row: {0}")]
    Corrupt(String),
    /// The write transaction holding this operation (on SQLite, grouped with others) failed to
    /// begin or commit: nothing of the operation was stored. Retry later.
    #[error("the ledger could not store the write: {0}")]
    WriteFailed(Arc<LedgerError>),
    /// The ledger was closed (shutting down): nothing was stored.
    #[error("the ledger is closed")]
    Closed,
    /// Any other database error (a constraint the ledger did not expect to hit, SQL error…).
    #[error("ledger database error")]
    Database(#[source] BoxError),
}

impl LedgerError {
    /// Worth retrying later as is: the database is unreachable, overloaded or contended.
    pub fn is_transient(&self) -> bool {
        self.outage().is_some()
    }

    /// Why the ledger cannot take this operation right now, when that is the trouble (`None`
    /// for the caller's mistakes, the ledger's bugs and answers such as [`LedgerError::LeaseLost`]).
    pub fn outage(&self) -> Option<Outage> {
        Some(match self {
            LedgerError::Unavailable(source) => classify(source.as_ref()),
            LedgerError::Connect { .. } | LedgerError::Closed => Outage::Unreachable,
            LedgerError::Contention { .. } => Outage::Busy,
            // The transaction did not begin or commit; a cause the ledger does not recognise is
            // still a write that failed.
            LedgerError::WriteFailed(inner) => inner.outage().unwrap_or(Outage::WriteFailing),
            _ => return None,
        })
    }
}

/// What keeps the ledger from taking writes (SPEC §12: `/readyz` and the logs name it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outage {
    /// The database cannot be reached: connection refused or reset, shutting down, no
    /// connection within the acquire timeout, or the ledger is closed.
    Unreachable,
    /// The disk holding the database is full.
    DiskFull,
    /// Reading or writing the database's files failed.
    IoError,
    /// The database is overloaded: busy, locked, out of connections, or contended.
    Busy,
    /// A write transaction failed for another reason.
    WriteFailing,
}

impl Outage {
    /// The spelling of `/readyz`'s `checks.ledger`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outage::Unreachable => "unreachable",
            Outage::DiskFull => "disk_full",
            Outage::IoError => "io_error",
            Outage::Busy => "busy",
            Outage::WriteFailing => "write_failing",
        }
    }

    /// In words, for a caller's `detail`.
    pub const fn describe(self) -> &'static str {
        match self {
            Outage::Unreachable => "its database cannot be reached",
            Outage::DiskFull => "its disk is full",
            Outage::IoError => "its storage fails to read or write",
            Outage::Busy => "its database is overloaded",
            Outage::WriteFailing => "its writes fail",
        }
    }
}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The database could not give a connection within the acquire timeout. sqlx's own error
/// (`PoolTimedOut`) says nothing of why (it retries a refused connection until the deadline), so
/// the ledger tries one connection of its own to find out; `cause` is the message of what that
/// attempt met (no URL in it), or `None` when it succeeded (the pool was only busy).
#[derive(Debug, Clone)]
pub struct NoConnection {
    pub waited: std::time::Duration,
    pub cause: Option<String>,
}

impl std::fmt::Display for NoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waited = self.waited.as_millis();
        match &self.cause {
            Some(cause) => write!(f, "no database connection within {waited} ms: {cause}"),
            None => write!(f, "every database connection stayed busy for {waited} ms"),
        }
    }
}

impl std::error::Error for NoConnection {}

/// The outage a driver's error stands for.
fn classify(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Outage {
    if let Some(e) = e.downcast_ref::<NoConnection>() {
        return if e.cause.is_some() { Outage::Unreachable } else { Outage::Busy };
    }
    if let Some(e) = e.downcast_ref::<rusqlite::Error>() {
        use rusqlite::ErrorCode as C;
        return match e.sqlite_error_code() {
            Some(C::DiskFull) => Outage::DiskFull,
            Some(C::DatabaseBusy | C::DatabaseLocked) => Outage::Busy,
            Some(C::SystemIoFailure | C::CannotOpen | C::ReadOnly) => Outage::IoError,
            _ => Outage::WriteFailing,
        };
    }
    if let Some(e) = e.downcast_ref::<sqlx::Error>() {
        return match e {
            sqlx::Error::Database(d) => match d.code().as_deref() {
                // PostgreSQL: disk_full; other insufficient resources (out of memory, too many
                // connections); SQLite through sqlx (migrations): SQLITE_FULL.
                Some("53100" | "13") => Outage::DiskFull,
                Some(c) if c.starts_with("53") => Outage::Busy,
                Some(c) if c.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)) => Outage::Busy,
                Some(c) if c.parse::<u32>().is_ok_and(|n| n & 0xff == 10) => Outage::IoError,
                _ => Outage::Unreachable,
            },
            _ => Outage::Unreachable,
        };
    }
    if e.downcast_ref::<std::io::Error>().is_some() {
        return Outage::IoError;
    }
    Outage::WriteFailing
}

/// Whether a database error means "retry the whole transaction" (PostgreSQL serialization
/// failure or deadlock): the transaction has been rolled back by the server.
pub(crate) fn is_retryable_conflict(e: &BoxError) -> bool {
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(d)) => matches!(d.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

impl From<sqlx::Error> for LedgerError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match e {
            E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
                LedgerError::Unavailable(Box::new(e))
            }
            E::ColumnDecode { .. } | E::Decode(_) | E::ColumnNotFound(_) | E::ColumnIndexOutOfBounds { .. } => {
                LedgerError::Corrupt(e.to_string())
            }
            E::Database(ref d) => {
                let code = d.code();
                let unavailable = match code.as_deref() {
                    // SQLite: SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL and their
                    // extended codes (x + 256·k).
                    Some(c) if c.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13)) => true,
                    // PostgreSQL: connection exceptions, insufficient resources, operator
                    // intervention (shutdown, too many connections…).
                    Some(c) => c.starts_with("08") || c.starts_with("53") || c.starts_with("57P"),
                    None => false,
                };
                if unavailable { LedgerError::Unavailable(Box::new(e)) } else { LedgerError::Database(Box::new(e)) }
            }
            other => LedgerError::Database(Box::new(other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for LedgerError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        LedgerError::Migration(e)
    }
}

/// The URL with its password (userinfo after `:`, and any `password=` query value) replaced by
/// `***`, so it can be logged and put in errors.
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = match userinfo.split_once(':') {
                        Some((user, _password)) => format!("{user}:***"),
                        None => userinfo.to_owned(),
                    };
                    format!("{scheme}://{user}@{host}{path}")
                }
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{LedgerError, NoConnection, Outage, redact_url};

    /// A failure as SQLite reports it: its code and, for SQLITE_FULL, its message.
    fn sqlite(code: i32) -> LedgerError {
        let message = (code == 13).then(|| "database or disk is full".to_owned());
        crate::sqlite::sqlite_error(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), message))
    }

    #[test]
    fn outages_are_classified_and_their_cause_is_in_the_message() {
        // SQLITE_FULL, SQLITE_IOERR_WRITE (an extended code), SQLITE_BUSY, SQLITE_READONLY.
        let cases = [(13, Outage::DiskFull), (778, Outage::IoError), (5, Outage::Busy), (8, Outage::IoError)];
        for (code, want) in cases {
            let e = sqlite(code);
            assert_eq!(e.outage(), Some(want), "{e}");
            // Wrapped by a failed group commit, it is still the same outage.
            assert_eq!(LedgerError::WriteFailed(Arc::new(e)).outage(), Some(want));
        }
        let full = LedgerError::WriteFailed(Arc::new(sqlite(13)));
        assert_eq!(
            full.to_string(),
            "the ledger could not store the write: the ledger is unavailable: database or disk is full"
        );

        let refused = NoConnection {
            waited: Duration::from_millis(500),
            cause: Some("Connection refused (os error 111)".into()),
        };
        let e = LedgerError::Unavailable(Box::new(refused));
        assert_eq!(e.outage(), Some(Outage::Unreachable));
        assert_eq!(
            e.to_string(),
            "the ledger is unavailable: no database connection within 500 ms: Connection refused (os error 111)"
        );
        let busy = LedgerError::Unavailable(Box::new(NoConnection { waited: Duration::from_millis(500), cause: None }));
        assert_eq!(busy.outage(), Some(Outage::Busy));

        // Not outages: the caller's or the ledger's own trouble, or an answer.
        assert_eq!(sqlite(19).outage(), None, "a constraint is a database error");
        assert_eq!(LedgerError::LeaseLost { id: "x".into() }.outage(), None);
        assert!(LedgerError::Closed.is_transient() && !LedgerError::InvalidInput(String::new()).is_transient());
    }

    #[test]
    fn redacts_passwords_and_keeps_the_rest() {
        let cases = [
            ("postgres://u:s3cret@db:5432/app", "postgres://u:***@db:5432/app"),
            ("postgres://u:p%40ss@db/app?sslmode=require", "postgres://u:***@db/app?sslmode=require"),
            ("postgres://u:a@b@db/app", "postgres://u:***@db/app"),
            ("postgres://u@db/app", "postgres://u@db/app"),
            ("postgres://db/app?user=u&password=x&a=b", "postgres://db/app?user=u&password=***&a=b"),
            ("postgresql://u:x@/app?host=/run/pg", "postgresql://u:***@/app?host=/run/pg"),
            ("sqlite://data/cancelgate.db", "sqlite://data/cancelgate.db"),
            ("sqlite::memory:", "sqlite::memory:"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
