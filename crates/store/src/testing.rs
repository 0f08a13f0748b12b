//! Fresh, migrated databases for tests: this crate's conformance suite and
//! other crates' integration tests (enable the `testing` feature in their
//! `[dev-dependencies]`).
//!
//! ```no_run
//! # async fn example() {
//! use moneyflow_core::ports::CompanyStore;
//! let store = moneyflow_store::testing::fresh_sqlite().await;
//! store.create_company("acme", "Acme").await.unwrap();
//! # }
//! ```
//!
//! Each [`TestStore`] owns its database and removes it when dropped: a
//! temporary directory for SQLite, a `mf_test_<uuid>` database for
//! PostgreSQL. The helpers panic on failure, as test setup should.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tempfile::TempDir;

use crate::{PgStore, SqliteStore, Store};

/// The environment variable naming the PostgreSQL server tests use; its
/// database is only used to create and drop per-test databases.
pub const POSTGRES_URL_ENV: &str = "MONEYFLOW_TEST_POSTGRES_URL";

/// Used when [`POSTGRES_URL_ENV`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A migrated [`Store`] on a database of its own, removed on drop. Derefs
/// to [`Store`].
pub struct TestStore {
    store: Store,
    url: String,
    // Dropped after `store` (fields drop in declaration order), so the
    // database goes once nothing of the test uses it.
    _guard: Guard,
}

impl TestStore {
    /// The store's database URL, e.g. to start a server on the same
    /// database (`--database-url`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Deref for TestStore {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl fmt::Debug for TestStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestStore")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// What removes the test database when dropped.
enum Guard {
    Sqlite { _dir: TempDir },
    Postgres { _database: PgDatabase },
}

/// A SQLite store in a new temporary directory (`moneyflow.db`, WAL, as
/// `moneyflow up` opens it), migrated.
pub async fn fresh_sqlite() -> TestStore {
    let dir = tempfile::Builder::new()
        .prefix("moneyflow-test-")
        .tempdir()
        .expect("create a temporary directory");
    let store = Store::open_data_dir(dir.path())
        .await
        .expect("open the SQLite test database");
    store
        .migrate()
        .await
        .expect("migrate the SQLite test database");
    let url = format!(
        "sqlite://{}",
        dir.path().join(crate::SQLITE_FILE_NAME).display()
    );
    TestStore {
        store,
        url,
        _guard: Guard::Sqlite { _dir: dir },
    }
}

/// A PostgreSQL store on a new database `mf_test_<uuid>` created on the
/// server named by `MONEYFLOW_TEST_POSTGRES_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), migrated. The database is
/// dropped `WITH (FORCE)` when the [`TestStore`] is dropped.
pub async fn fresh_postgres() -> TestStore {
    let admin_url =
        std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = format!("mf_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("connect to the test PostgreSQL server ({POSTGRES_URL_ENV}, default {DEFAULT_POSTGRES_URL}): {e}")
    });
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut admin)
        .await
        .expect("create the PostgreSQL test database");
    // Closing is best effort: the database exists either way.
    let _ = admin.close().await;
    // From here on, a panic drops the guard, which drops the database.
    let guard = PgDatabase {
        admin_url: admin_url.clone(),
        name: name.clone(),
    };

    let options = PgConnectOptions::from_str(&admin_url)
        .expect("parse the test PostgreSQL URL")
        .database(&name);
    let store = Store::Postgres(
        PgStore::connect_with(options)
            .await
            .expect("connect to the PostgreSQL test database"),
    );
    store
        .migrate()
        .await
        .expect("migrate the PostgreSQL test database");
    TestStore {
        store,
        url: with_database(&admin_url, &name),
        _guard: Guard::Postgres { _database: guard },
    }
}

impl TestStore {
    /// The SQLite backend, when this is one.
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match &self.store {
            Store::Sqlite(s) => Some(s),
            Store::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, when this is one.
    pub fn as_postgres(&self) -> Option<&PgStore> {
        match &self.store {
            Store::Postgres(s) => Some(s),
            Store::Sqlite(_) => None,
        }
    }
}

/// A per-test PostgreSQL database, dropped with this value.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime may be a current-thread
        // one that is busy running this very drop: use a thread with its own
        // runtime and wait for it, so the database is gone when the test ends.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                // FORCE ends the test's own pooled connections, still open.
                sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// `url` with its database (path) replaced by `name`, keeping any query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }
}
