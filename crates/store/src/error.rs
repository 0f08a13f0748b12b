//! Maps driver errors (sqlx on both backends, rusqlite on SQLite's writer
//! thread and readers) onto the core's [`StoreError`], so callers decide on
//! retries by variant and never see a driver type.
//!
//! - could not reach or keep the database (I/O, TLS, pool timeout or closed,
//!   SQLite busy/locked, PostgreSQL connection, shutdown, serialization and
//!   deadlock classes) → [`StoreError::Unavailable`]: retrying later is safe;
//! - unique violation → [`StoreError::Conflict`];
//! - foreign-key violation → [`StoreError::NotFound`] (the referenced row is
//!   missing);
//! - anything else → [`StoreError::Internal`].
//!
//! The group-commit writer also asks [`is_outage`]: whether a failed batch
//! failed for everyone in it (answer them all `Unavailable` at once) or
//! perhaps for one request only (re-run each alone).

use moneyflow_core::ports::StoreError;
use rusqlite::ffi;
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use sqlx::sqlite::SqliteError;

/// Classifies `err`, naming the conflicting or missing thing with the
/// database's own message.
pub(crate) fn from_sqlx(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => from_database(db, None, None),
        sqlx::Error::Migrate(err) => from_migrate(*err),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Box::new(err)),
        other => StoreError::Internal(Box::new(other)),
    }
}

/// Whether `err` means the database, or the connection to it, is not
/// usable now — for every request, not because of one request's data. A
/// deadlock or serialization failure is transient but *not* an outage: the
/// requests would succeed one by one, so the writer re-runs them alone.
pub(crate) fn is_outage(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => is_transient(db.as_ref()) && !is_contention(db.as_ref()),
        _ => false,
    }
}

/// Whether a connection that returned `err` should be closed rather than
/// reused: anything but a statement the server refused (a constraint, a
/// deadlock) may have left it broken or mid-protocol.
pub(crate) fn connection_suspect(err: &sqlx::Error) -> bool {
    !matches!(err, sqlx::Error::Database(_)) || is_outage(err)
}

/// Whether the connection itself is gone (closed by the server, reset, a
/// restart): a fresh connection may well work at once.
pub(crate) fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions, and administrator or crash
        // shutdown of this backend.
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<SqliteError>().is_none()
                && db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        }
        _ => false,
    }
}

/// Like [`from_sqlx`], but names the conflicting thing (`conflict`) and the
/// missing referenced thing (`missing`) the way the caller knows them: the
/// databases' own messages ("FOREIGN KEY constraint failed") do not.
pub(crate) fn from_sqlx_as(
    err: sqlx::Error,
    conflict: impl FnOnce() -> String,
    missing: impl FnOnce() -> String,
) -> StoreError {
    match err {
        sqlx::Error::Database(db) => from_database(db, Some(conflict()), Some(missing())),
        other => from_sqlx(other),
    }
}

pub(crate) fn from_migrate(err: MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(err) | MigrateError::ExecuteMigration(err, _) => match from_sqlx(err)
        {
            // A migration that conflicts is a broken migration, not a
            // caller's duplicate.
            StoreError::Conflict(msg) | StoreError::NotFound(msg) => {
                StoreError::Internal(format!("migration failed: {msg}").into())
            }
            other => other,
        },
        other => StoreError::Internal(Box::new(other)),
    }
}

/// For values the store wrote itself and cannot read back (corrupt JSON, an
/// out-of-range timestamp).
pub(crate) fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Internal(what.into().into())
}

/// [`from_sqlx`] for rusqlite: the same classes, from SQLite's result codes.
pub(crate) fn from_rusqlite(err: rusqlite::Error) -> StoreError {
    from_rusqlite_as(err, None, None)
}

/// [`from_sqlx_as`] for rusqlite: names the conflicting and the missing
/// thing the way the caller knows them, when given.
pub(crate) fn from_rusqlite_as(
    err: rusqlite::Error,
    conflict: Option<String>,
    missing: Option<String>,
) -> StoreError {
    let Some(code) = rusqlite_code(&err) else {
        return StoreError::Internal(Box::new(err));
    };
    match code {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            StoreError::Conflict(conflict.unwrap_or_else(|| err.to_string()))
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound(missing.unwrap_or_else(|| err.to_string()))
        }
        code if sqlite_transient(code) => StoreError::Unavailable(Box::new(err)),
        _ => StoreError::Internal(Box::new(err)),
    }
}

/// [`is_outage`] for rusqlite: the database file cannot be written now
/// (busy past the timeout, I/O error, disk full, cannot open), for every
/// request of a batch alike.
pub(crate) fn rusqlite_outage(err: &rusqlite::Error) -> bool {
    rusqlite_code(err).is_some_and(sqlite_transient)
}

/// The extended result code of an error SQLite itself reported.
fn rusqlite_code(err: &rusqlite::Error) -> Option<i32> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
        _ => None,
    }
}

fn from_database(
    db: Box<dyn DatabaseError>,
    conflict: Option<String>,
    missing: Option<String>,
) -> StoreError {
    match db.kind() {
        ErrorKind::UniqueViolation => {
            StoreError::Conflict(conflict.unwrap_or_else(|| db.message().to_owned()))
        }
        ErrorKind::ForeignKeyViolation => {
            StoreError::NotFound(missing.unwrap_or_else(|| db.message().to_owned()))
        }
        _ if is_transient(db.as_ref()) => StoreError::Unavailable(db.into()),
        _ => StoreError::Internal(db.into()),
    }
}

/// Whether a database error means "not now" rather than "never".
fn is_transient(db: &dyn DatabaseError) -> bool {
    let code = db.code();
    if db.try_downcast_ref::<SqliteError>().is_some() {
        code.and_then(|c| c.parse().ok())
            .is_some_and(sqlite_transient)
    } else {
        code.is_some_and(|c| postgres_transient(&c))
    }
}

/// PostgreSQL's deadlock (40P01) and serialization failure (40001): one
/// transaction lost a race with another; alone it would pass.
fn is_contention(db: &dyn DatabaseError) -> bool {
    db.try_downcast_ref::<SqliteError>().is_none()
        && db
            .code()
            .is_some_and(|c| matches!(c.as_ref(), "40001" | "40P01"))
}

/// SQLite reports extended result codes; the primary code is the low byte:
/// SQLITE_BUSY = 5, SQLITE_LOCKED = 6, SQLITE_IOERR = 10, SQLITE_FULL = 13,
/// SQLITE_CANTOPEN = 14.
fn sqlite_transient(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)
}

/// PostgreSQL SQLSTATEs: connection exceptions (08…), insufficient resources
/// (53…: too many connections, disk full), operator intervention (57P01
/// admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now),
/// serialization failure and deadlock (40001, 40P01).
fn postgres_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use moneyflow_core::ports::StoreError;

    use super::{
        connection_lost, connection_suspect, from_rusqlite_as, is_outage, postgres_transient,
        rusqlite_outage, sqlite_transient,
    };

    #[test]
    fn transient_codes_are_recognised_on_both_backends() {
        assert!(sqlite_transient(5));
        assert!(sqlite_transient(517)); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_transient(2067)); // SQLITE_CONSTRAINT_UNIQUE
        assert!(postgres_transient("08006"));
        assert!(postgres_transient("40001"));
        assert!(!postgres_transient("23505"));
    }

    #[test]
    fn the_writer_tells_outages_from_one_requests_errors() {
        let io = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(is_outage(&io()) && connection_lost(&io()) && connection_suspect(&io()));
        // The pool could not connect: an outage, but no connection to drop.
        assert!(is_outage(&sqlx::Error::PoolTimedOut));
        assert!(!connection_lost(&sqlx::Error::PoolTimedOut));
        // One request's problem: neither.
        let decode = sqlx::Error::RowNotFound;
        assert!(!is_outage(&decode) && !connection_lost(&decode));
    }

    #[test]
    fn rusqlite_errors_are_classified_like_sqlx_ones() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY); INSERT INTO t VALUES ('a');")
            .unwrap();
        let err = conn.execute("INSERT INTO t VALUES ('a')", []).unwrap_err();
        assert!(!rusqlite_outage(&err));
        assert!(matches!(
            from_rusqlite_as(err, Some("key a".into()), None),
            StoreError::Conflict(m) if m == "key a"
        ));
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(rusqlite_outage(&busy));
        assert!(matches!(
            from_rusqlite_as(busy, None, None),
            StoreError::Unavailable(_)
        ));
    }
}
