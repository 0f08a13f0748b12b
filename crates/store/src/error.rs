//! Maps sqlx errors onto the core's [`StoreError`], so callers decide on
//! retries by variant and never see a driver type.
//!
//! - could not reach or keep the database (I/O, TLS, pool timeout or closed,
//!   SQLite busy/locked, PostgreSQL connection, shutdown, serialization and
//!   deadlock classes) → [`StoreError::Unavailable`]: retrying later is safe;
//! - unique violation → [`StoreError::Conflict`];
//! - foreign-key violation → [`StoreError::NotFound`] (the referenced row is
//!   missing);
//! - anything else → [`StoreError::Internal`].

use moneyflow_core::ports::StoreError;
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
    use super::{postgres_transient, sqlite_transient};

    #[test]
    fn transient_codes_are_recognised_on_both_backends() {
        assert!(sqlite_transient(5));
        assert!(sqlite_transient(517)); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_transient(2067)); // SQLITE_CONSTRAINT_UNIQUE
        assert!(postgres_transient("08006"));
        assert!(postgres_transient("40001"));
        assert!(!postgres_transient("23505"));
    }
}
