//! Storage: migrations on SQLite and PostgreSQL, refusing unknown schema versions, WAL mode.

use blindsight_server::{Backend, Db, DbError};

use crate::common::{backends, config};

#[tokio::test]
async fn migrations_apply_once_and_unknown_versions_are_refused() {
    for ctx in backends(config).await {
        let db = ctx.state.db().clone();
        let known = db.known_version();
        assert!(known >= 1);
        assert_eq!(db.applied_version().await.unwrap(), known);
        // Migrating again is a no-op.
        db.migrate().await.unwrap();
        db.check_version().await.unwrap();
        // A newer server applied a migration this one does not know: refuse to run.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES ($1, 'from the future', TRUE, $2, 0)",
        )
        .bind(known + 1000)
        .bind(vec![0u8; 48])
        .execute(db.pool())
        .await
        .unwrap();
        let err = db.migrate().await.unwrap_err();
        assert!(matches!(err, DbError::UnknownSchemaVersion { .. }), "{err}");
        assert!(err.to_string().contains("newer blindsight-server"), "{err}");
        assert!(db.check_version().await.is_err());
        ctx.finish().await;
    }
}

#[tokio::test]
async fn sqlite_is_created_under_the_data_dir_in_wal_mode_and_needs_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data dir");
    let db = Db::connect(None, &data).await.unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(data.join(blindsight_server::db::SQLITE_FILE).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "data dir mode {mode:o}");
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let err = db.check_version().await.unwrap_err();
    assert!(
        err.to_string().contains("blindsight-server migrate"),
        "{err}"
    );
    db.migrate().await.unwrap();
    db.check_version().await.unwrap();
    db.close().await;
    let err = Db::connect(Some("mysql://x"), &data).await.unwrap_err();
    assert!(err.to_string().contains("postgres://"), "{err}");
}
