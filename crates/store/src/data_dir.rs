//! The data directory of the embedded store and its files, private to the
//! user the server runs as: the directory `0700`, the database and its WAL
//! and shared-memory files `0600`. They hold every company's events, rules
//! and secrets; a directory made earlier with looser modes is tightened at
//! start. (Elsewhere than Unix the platform's defaults apply.)

use std::io;
use std::path::{Path, PathBuf};

/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the database files.
pub const FILE_MODE: u32 = 0o600;

/// The files SQLite keeps beside the database `name` in WAL mode.
fn companions(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates `dir` (and the empty database file `db` in it) with private
/// modes, and tightens them when they already exist. SQLite gives the WAL
/// and shared-memory files it creates the database file's mode.
#[cfg(unix)]
pub fn prepare(dir: &Path, db: &Path) -> io::Result<()> {
    use std::fs::{DirBuilder, OpenOptions, Permissions, set_permissions};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(db)?;
    for file in companions(db) {
        match set_permissions(&file, Permissions::from_mode(FILE_MODE)) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn prepare(dir: &Path, _db: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}
