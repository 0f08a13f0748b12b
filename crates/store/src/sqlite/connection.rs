//! SQLite's rusqlite connections: how each one is opened (WAL,
//! synchronous=FULL, foreign keys, busy timeout, a statement cache), and
//! the small pool of read connections the hot reads use, and the two ways
//! a read maps its rows (`select`, `select_one`).
//!
//! A read runs on a blocking-pool thread with a connection of its own
//! (`spawn_blocking`): one hop per read, whatever it reads, instead of one
//! per row. Under WAL readers never wait for the writer, nor it for them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moneyflow_core::ports::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::Semaphore;

use crate::error::from_rusqlite;

/// How long a connection waits for another's write lock before giving up
/// with `SQLITE_BUSY` (reported as [`StoreError::Unavailable`]).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements each connection keeps: every statement of the hot
/// path, and the run listings' few shapes.
const STATEMENT_CACHE: usize = 64;

/// Opens `path` read-write (creating it if missing) the way every SQLite
/// connection of the store is: WAL, `synchronous=FULL` (a commit is on disk
/// when it returns, so a 2xx means durable even across power loss), foreign
/// keys on, [`BUSY_TIMEOUT`].
pub(crate) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The read connections, opened on first use and kept. Cloning shares them.
#[derive(Clone)]
pub(crate) struct Readers {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// At most this many reads at once, each on its own connection.
    permits: Semaphore,
    size: usize,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, size: usize) -> Self {
        let size = size.max(1);
        Self {
            inner: Arc::new(Inner {
                path,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Semaphore::new(size),
                size,
            }),
        }
    }

    /// Runs `read` on a read connection, on the blocking pool.
    pub(crate) async fn read<T, F>(&self, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store's readers are closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner.idle.lock().ok().and_then(|mut idle| idle.pop());
            let conn = match idle {
                Some(conn) => conn,
                None => open(&inner.path).map_err(from_rusqlite)?,
            };
            let result = read(&conn);
            // A connection that met an outage may be broken: let it go, the
            // next read opens a fresh one.
            if !matches!(result, Err(StoreError::Unavailable(_)))
                && let Ok(mut idle) = inner.idle.lock()
                && idle.len() < inner.size
            {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("a store read panicked: {e}").into()))?
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("size", &self.inner.size)
            .finish_non_exhaustive()
    }
}

/// Runs `sql` with `params` on a cached statement and maps each row with
/// `read` (column access) then `convert` (decoding into the port's type).
pub(crate) fn select<R, T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&Row<'_>) -> rusqlite::Result<R>,
    convert: impl Fn(R) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(from_rusqlite)?;
    let rows = stmt.query_map(params, read).map_err(from_rusqlite)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(convert(row.map_err(from_rusqlite)?)?);
    }
    Ok(out)
}

/// [`select`] for a query that finds at most one row.
pub(crate) fn select_one<R, T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnOnce(&Row<'_>) -> rusqlite::Result<R>,
    convert: impl FnOnce(R) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row(params, read).optional())
        .map_err(from_rusqlite)?
        .map(convert)
        .transpose()
}
