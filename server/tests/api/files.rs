//! Files at rest: the embedded database, its WAL and shared memory are owner-only; a data
//! directory others can read is refused; one process at a time uses a data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use blindsight_server::db::{LOCK_FILE, SQLITE_FILE};
use blindsight_server::{Db, DbError};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn open(dir: &Path) -> Result<Db, DbError> {
    blindsight_server::open_and_migrate(None, dir).await
}

#[tokio::test]
async fn the_database_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = open(&data).await.unwrap();
    sqlx::query("SELECT COUNT(*) FROM audit_log")
        .execute(db.pool())
        .await
        .unwrap();
    assert_eq!(mode(&data), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let file = data.join(format!("{SQLITE_FILE}{suffix}"));
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert_eq!(mode(&data.join(LOCK_FILE)), 0o600);
    db.close().await;

    // A database file left readable by others is made owner-only on the next start.
    std::fs::set_permissions(
        data.join(SQLITE_FILE),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let db = open(&data).await.unwrap();
    assert_eq!(mode(&data.join(SQLITE_FILE)), 0o600);
    db.close().await;
}

#[tokio::test]
async fn a_data_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shared");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o775)).unwrap();
    let err = open(&data).await.unwrap_err().to_string();
    assert!(
        err.contains("writable by other users (mode 775)") && err.contains("chmod 700"),
        "{err}"
    );
    // Nothing was created in it.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}

#[tokio::test]
async fn a_second_process_on_one_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await.unwrap();
    let err = open(dir.path()).await.unwrap_err().to_string();
    assert!(
        err.contains("another blindsight-server process") && err.contains("--data-dir"),
        "{err}"
    );
    // A second `serve` binary says the same and exits non-zero.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .env("BLINDSIGHT_DATA_DIR", dir.path())
        .env_remove("BLINDSIGHT_DATABASE_URL")
        .env_remove("BLINDSIGHT_AUDIT_KEY_FILE")
        .env("BLINDSIGHT_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another blindsight-server process"),
        "{stderr}"
    );
    // Closed, the directory is free again.
    first.close().await;
    open(dir.path()).await.unwrap().close().await;
}
