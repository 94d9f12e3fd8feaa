//! A real server for the benches, assembled as `blindsight-server serve` assembles it, on a
//! fresh database (SQLite in a temporary directory, or a scratch PostgreSQL database created
//! from a URL and dropped afterwards) and a loopback port.

use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Context;
use blindsight_server::audit::SigningKey;
use blindsight_server::http::AppState;
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{Db, Launch, ServerConfig};
use tokio::sync::watch;

/// Where a bench's server keeps its data.
pub enum Backend {
    /// SQLite in a temporary directory.
    Sqlite,
    /// A URL the bench may create scratch databases from.
    Postgres(String),
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// A running server on a fresh database; [`Server::stop`] shuts it down and drops the
/// database (the temporary directory, or the scratch PostgreSQL database).
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The server's state (its metrics, key cache, database).
    pub state: AppState,
    /// The scratch PostgreSQL database's URL, for worker processes.
    pub database_url: Option<String>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _dir: Option<tempfile::TempDir>,
    scratch: Option<(String, String)>,
}

impl Server {
    /// Opens a fresh database on `backend` and serves the API on a loopback port, with
    /// `workers` job workers beside it (`None`: none).
    pub async fn start(
        backend: &Backend,
        config: ServerConfig,
        workers: Option<(usize, WorkerConfig, SigningKey)>,
    ) -> anyhow::Result<Self> {
        let (database_url, dir, scratch) = match backend {
            Backend::Sqlite => (None, Some(tempfile::tempdir()?), None),
            Backend::Postgres(url) => {
                let name = format!(
                    "bs_bench_{}",
                    hex::encode(blindsight_crypto::random_bytes::<6>()?)
                );
                let admin = Db::connect(Some(url), Path::new("."))
                    .await
                    .context("couldn't connect to the PostgreSQL server")?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .context("couldn't create a scratch database")?;
                admin.close().await;
                let (base, _) = url
                    .rsplit_once('/')
                    .context("the PostgreSQL URL has no database path")?;
                (
                    Some(format!("{base}/{name}")),
                    None,
                    Some((url.clone(), name)),
                )
            }
        };
        // Assembled as `serve` assembles it.
        let (workers, worker, audit_key) = match workers {
            Some(w) => w,
            None => (
                0,
                WorkerConfig::default(),
                SigningKey::ephemeral().map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        };
        let launch = Launch {
            database_url: database_url.clone(),
            data_dir: dir
                .as_ref()
                .map_or_else(|| ".".into(), |d| d.path().to_owned()),
            audit_key,
            config,
            workers,
            worker,
        };
        let server = match blindsight_server::Server::open(launch).await {
            Ok(server) => server,
            Err(e) => {
                if let Some(scratch) = &scratch {
                    drop_scratch(scratch).await;
                }
                return Err(e.into());
            }
        };
        let state = server.state().clone();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let _ = server.serve(Some(listener), shutdown).await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            state,
            database_url,
            stop,
            task,
            _dir: dir,
            scratch,
        })
    }

    /// Stops serving and drops the database.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        // Serving ends by closing the database.
        let _ = self.task.await;
        if let Some(scratch) = &self.scratch {
            drop_scratch(scratch).await;
        }
    }
}

/// Drops a scratch PostgreSQL database.
pub async fn drop_scratch((url, name): &(String, String)) {
    match Db::connect(Some(url), Path::new(".")).await {
        Ok(admin) => {
            if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(admin.pool())
                .await
            {
                eprintln!("bench: couldn't drop the scratch database {name}: {e}");
            }
            admin.close().await;
        }
        Err(e) => eprintln!("bench: couldn't drop the scratch database {name}: {e}"),
    }
}
