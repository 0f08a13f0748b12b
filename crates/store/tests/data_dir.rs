//! The embedded store's data directory and files are the server user's
//! alone: created private, and tightened at start when made looser earlier.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use moneyflow_core::ports::CompanyStore;
use moneyflow_store::Store;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn loosen(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn the_data_directory_and_database_files_are_private_to_the_owner() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let db = dir.join(moneyflow_store::SQLITE_FILE_NAME);
    let wal = dir.join(format!("{}-wal", moneyflow_store::SQLITE_FILE_NAME));
    let shm = dir.join(format!("{}-shm", moneyflow_store::SQLITE_FILE_NAME));

    // A fresh directory, whatever the umask.
    let store = Store::open_data_dir(&dir).await.unwrap();
    store.migrate().await.unwrap();
    store.create_company("acme", "Acme").await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    for file in [&db, &wal, &shm] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(store);

    // Made looser by an earlier version (or by hand): tightened at start.
    loosen(&dir, 0o755);
    for file in [&db, &wal, &shm] {
        if file.exists() {
            loosen(file, 0o644);
        }
    }
    let store = Store::open_data_dir(&dir).await.unwrap();
    store.create_company("globex", "Globex").await.unwrap();
    assert_eq!(mode(&dir), 0o700);
    for file in [&db, &wal, &shm] {
        if file.exists() {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
    }
}
