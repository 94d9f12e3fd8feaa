//! Offline evidence for `blindsight audit verify --db`: a server's database read directly
//! (a SQLite file or data directory, opened read-only, or a PostgreSQL URL), never migrated and
//! refused at any other schema version than this build's. The server's own store reads it
//! (`blindsight_server::store::evidence`), into the same `blindsight_audit::Evidence` the
//! API source gathers.

use std::path::{Path, PathBuf};

use anyhow::Context;
use blindsight_audit::Evidence;
use blindsight_client::progress::Progress;

/// Where an offline audit reads: a SQLite file (opened read-only) or a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSource {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A `postgres://` URL.
    Postgres(String),
}

impl DbSource {
    /// Parses `--db`: a `postgres://` (or `postgresql://`) URL, or a path: a SQLite file, or a
    /// data directory holding the server's [`blindsight_server::db::SQLITE_FILE`]. A
    /// `sqlite://` prefix is allowed on a path.
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(DbSource::Postgres(value.to_owned()));
        }
        let path = Path::new(value.strip_prefix("sqlite://").unwrap_or(value));
        let file = if path.is_dir() {
            path.join(blindsight_server::db::SQLITE_FILE)
        } else {
            path.to_owned()
        };
        anyhow::ensure!(
            file.is_file(),
            "no database at {}: pass the server's data directory, its {} file, or a postgres:// URL",
            file.display(),
            blindsight_server::db::SQLITE_FILE
        );
        Ok(DbSource::Sqlite(file))
    }

    /// The URL to connect with: SQLite read-only (`mode=ro`, and with `immutable` SQLite's
    /// `immutable=1`: no locks, no `-shm`, for a file nothing writes), PostgreSQL with read-only
    /// transactions by default.
    fn connect_url(&self, immutable: bool) -> String {
        match self {
            DbSource::Sqlite(path) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                let query = if immutable {
                    "mode=ro&immutable=true"
                } else {
                    "mode=ro"
                };
                blindsight_server::db::sqlite_url(&path, query)
            }
            DbSource::Postgres(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}options=-c%20default_transaction_read_only%3Don")
            }
        }
    }

    /// How the report names it (a PostgreSQL URL without its password).
    pub fn describe(&self) -> String {
        match self {
            DbSource::Sqlite(path) => format!(
                "sqlite://{}",
                std::path::absolute(path)
                    .unwrap_or_else(|_| path.clone())
                    .display()
            ),
            DbSource::Postgres(url) => redact_password(url),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Connects without ever writing. SQLite is opened read-only; when the database has no
/// `-wal` file (no server has it open, and every committed transaction is in the main file) it
/// is opened as immutable: a read-only connection would otherwise create the WAL and its
/// `-shm` index beside it, which it cannot do in a directory the auditor may not write, and
/// could not switch a rollback-journal copy to WAL as `Db::connect` asks.
async fn connect_read_only(source: &DbSource) -> Result<blindsight_server::Db, anyhow::Error> {
    let immutable = match source {
        DbSource::Sqlite(path) => {
            let mut wal = path.clone().into_os_string();
            wal.push("-wal");
            !Path::new(&wal).exists()
        }
        DbSource::Postgres(_) => false,
    };
    // The data directory is not used: the URL names the database.
    Ok(
        blindsight_server::Db::connect(Some(&source.connect_url(immutable)), Path::new("."))
            .await?,
    )
}

/// Reads every chain, head and stored object of a server's database for an offline audit.
/// SQLite is opened read-only; nothing is ever migrated, and a database at another schema
/// version than this build's is refused. The trusted keys are left empty for the caller.
pub fn load_evidence(source: &DbSource, progress: &mut dyn Progress) -> anyhow::Result<Evidence> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("couldn't start a runtime to read the database")?;
    let describe = source.describe();
    progress.begin("reading the database", 0);
    let loaded = runtime.block_on(async {
        let db = connect_read_only(source)
            .await
            .with_context(|| format!("couldn't open {describe} read-only"))?;
        let result = async {
            let found = db.applied_version().await?;
            let known = db.known_version();
            if found == 0 {
                anyhow::bail!("{describe} is not a blindsight database (no migrations applied)");
            }
            if found != known {
                anyhow::bail!(
                    "{describe} is at schema version {found}, this build of blindsight reads version {known}: audit it with the blindsight release that matches its server (an audited database is never migrated)"
                );
            }
            blindsight_server::store::evidence::load(&db, &describe)
                .await
                .with_context(|| format!("couldn't read {describe}"))
        }
        .await;
        db.close().await;
        result
    });
    progress.end();
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_sources_name_sqlite_files_and_redact_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let err = DbSource::parse(dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("no database"), "{err}");
        let file = dir.path().join(blindsight_server::db::SQLITE_FILE);
        std::fs::write(&file, b"").unwrap();
        let from_dir = DbSource::parse(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(from_dir, DbSource::Sqlite(file.clone()));
        assert_eq!(
            DbSource::parse(file.to_str().unwrap()).unwrap(),
            from_dir,
            "the file itself"
        );
        assert!(from_dir.connect_url(false).ends_with("?mode=ro"));
        assert!(
            from_dir
                .connect_url(true)
                .ends_with("?mode=ro&immutable=true")
        );
        let pg = DbSource::parse("postgres://audit:s3cret@db.internal:5432/blindsight").unwrap();
        assert_eq!(
            pg.describe(),
            "postgres://audit@db.internal:5432/blindsight"
        );
        assert!(
            pg.connect_url(false)
                .ends_with("?options=-c%20default_transaction_read_only%3Don")
        );
        assert_eq!(
            redact_password("postgres://host/db?sslmode=require"),
            "postgres://host/db?sslmode=require"
        );
    }
}
