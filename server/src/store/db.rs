//! The database: SQLite (embedded default) or PostgreSQL behind one sqlx `Any` pool, with the
//! migrations compiled in. Queries use `$1`-style placeholders, which both dialects accept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, Transaction};

use crate::store::StoreError;

/// The SQLite migrations.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
/// The PostgreSQL migrations (same versions, same meaning).
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// The name of the SQLite file created under the data directory.
pub const SQLITE_FILE: &str = "blindsight.sqlite3";

/// Which database the server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file (single node).
    Sqlite,
    /// PostgreSQL (any number of server and worker processes).
    Postgres,
}

impl Backend {
    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// A storage failure, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database URL is not one the server supports.
    #[error(
        "unsupported database URL scheme {0:?}: use postgres://… for PostgreSQL, or leave the URL unset for the embedded SQLite database under the data directory"
    )]
    UnsupportedUrl(String),
    /// The data directory could not be created.
    #[error("couldn't create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may write to the data directory.
    #[error(
        "the data directory {path} is writable by other users (mode {mode:o}): they could replace the database or the audit key beside it; make it owner-only (chmod 700 {path})"
    )]
    DataDirShared {
        /// The directory.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// Another process holds the data directory's lock.
    #[error(
        "another blindsight-server process (serve, worker, migrate or audit) is using {path}: stop it first, or give this one its own --data-dir (two servers on one SQLite database would each run with their own settings and limits)"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The database holds migrations this server does not know.
    #[error(
        "the database is at schema version {found}, newer than this server knows (up to {known}); run a newer blindsight-server"
    )]
    UnknownSchemaVersion {
        /// The newest version applied to the database.
        found: i64,
        /// The newest version this server has.
        known: i64,
    },
    /// The database has not been migrated to this server's schema.
    #[error(
        "the database schema is at version {found}, this server needs {needed}: run `blindsight-server migrate`"
    )]
    NotMigrated {
        /// The newest version applied (0 for none).
        found: i64,
        /// The version this server needs.
        needed: i64,
    },
    /// A migration failed or an applied one was edited.
    #[error("migration failed: {0}")]
    Migrate(#[from] MigrateError),
    /// Any other database error.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// The connection pool and which dialect it speaks.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// The data directory's lock (the embedded SQLite database), held until [`Db::close`].
    lock: Option<Arc<Mutex<Option<std::fs::File>>>>,
}

/// The lock file under the data directory that one process at a time holds.
pub const LOCK_FILE: &str = "blindsight.lock";

/// Refuses a data directory that group or others may write to (they could swap the database
/// or the key files in it), and warns about one they may list (the files in it are
/// owner-only, but their names and sizes show).
fn check_private_dir(dir: &Path) -> Result<(), DbError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir).map_err(|source| DbError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(DbError::DataDirShared {
                path: dir.to_owned(),
                mode,
            });
        }
        if mode & 0o055 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{mode:o}"),
                "the data directory can be listed by other users (the files in it are owner-only); make it owner-only: chmod 700 {}",
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Takes the data directory's lock, or says who holds it.
fn lock_data_dir(dir: &Path) -> Result<std::fs::File, DbError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| DbError::DataDir {
        path: path.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DbError::Locked {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Creates the SQLite file owner-only before SQLite does (SQLite gives its WAL and
/// shared-memory files the database file's mode), and makes an existing one owner-only.
fn private_sqlite_file(path: &Path) -> Result<(), DbError> {
    let io = |source| DbError::DataDir {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
                tracing::warn!(file = %file.display(), mode = format!("{mode:o}"), "the database file was accessible to other users; it is owner-only (0600) now");
            }
        }
    }
    Ok(())
}

/// Creates the data directory (owner-only on Unix when this call creates it; an existing
/// directory's mode is the operator's choice).
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A `sqlite://` URL for `path` with the query `query` (e.g. `mode=rwc`), percent-encoding the
/// characters that would end or change the URL's path.
pub fn sqlite_url(path: &Path, query: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' => url.push_str(&format!("%{:02X}", c as u32)),
            c => url.push(c),
        }
    }
    url.push('?');
    url.push_str(query);
    url
}

impl Db {
    /// Connects to `database_url` (`postgres://…`), or, when it is `None`, to the SQLite file
    /// under `data_dir` (created with the directory if missing). Does not migrate.
    pub async fn connect(database_url: Option<&str>, data_dir: &Path) -> Result<Self, DbError> {
        install_default_drivers();
        let mut lock = None;
        let (url, backend) = match database_url {
            None => {
                create_private_dir(data_dir).map_err(|source| DbError::DataDir {
                    path: data_dir.to_owned(),
                    source,
                })?;
                check_private_dir(data_dir)?;
                lock = Some(Arc::new(Mutex::new(Some(lock_data_dir(data_dir)?))));
                let file = data_dir.join(SQLITE_FILE);
                private_sqlite_file(&file)?;
                (sqlite_url(&file, "mode=rwc"), Backend::Sqlite)
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                (u.to_owned(), Backend::Postgres)
            }
            Some(u) if u.starts_with("sqlite:") => (u.to_owned(), Backend::Sqlite),
            Some(u) => {
                return Err(DbError::UnsupportedUrl(
                    u.split(':').next().unwrap_or_default().to_owned(),
                ));
            }
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(30));
        let pool = options.connect(&url).await?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; it is a property of the file,
            // so setting it once makes it stick.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Self {
            pool,
            backend,
            lock,
        })
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The dialect.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest migration version this server knows.
    pub fn known_version(&self) -> i64 {
        self.backend
            .migrator()
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// The newest migration version applied to the database (0 for none).
    pub async fn applied_version(&self) -> Result<i64, DbError> {
        let exists: i64 = match self.backend {
            Backend::Sqlite => sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            ),
            Backend::Postgres => sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            ),
        }
        .fetch_one(&self.pool)
        .await?;
        if exists == 0 {
            return Ok(0);
        }
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// Applies every migration the database lacks. Refuses a database that is ahead of this
    /// server, and one whose applied migrations were edited.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.refuse_newer().await?;
        self.backend
            .migrator()
            .run(&self.pool)
            .await
            .map_err(DbError::from)
    }

    /// Checks that the database is exactly at this server's schema version.
    pub async fn check_version(&self) -> Result<(), DbError> {
        self.refuse_newer().await?;
        let found = self.applied_version().await?;
        let needed = self.known_version();
        if found < needed {
            return Err(DbError::NotMigrated { found, needed });
        }
        Ok(())
    }

    async fn refuse_newer(&self) -> Result<(), DbError> {
        let found = self.applied_version().await?;
        let known = self.known_version();
        if found > known {
            return Err(DbError::UnknownSchemaVersion { found, known });
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`), so two transactions that read before writing cannot deadlock each other;
    /// they queue on the busy timeout instead.
    pub async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.pool.begin().await?),
        }
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes every connection (after in-flight queries finish) and releases the data
    /// directory's lock.
    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(lock) = &self.lock {
            // Dropping the file releases the data directory for the next process.
            lock.lock().unwrap_or_else(|e| e.into_inner()).take();
        }
    }
}

/// Seconds since the Unix epoch, as stored in every timestamp column.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_escape_what_would_change_their_meaning() {
        assert_eq!(
            sqlite_url(Path::new("/data/a b?c#d%e/x.sqlite3"), "mode=rwc"),
            "sqlite:///data/a%20b%3Fc%23d%25e/x.sqlite3?mode=rwc"
        );
    }

    #[test]
    fn both_dialects_have_the_same_migration_versions() {
        let versions = |m: &Migrator| {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert!(SQLITE_MIGRATIONS.iter().count() > 0);
    }
}
