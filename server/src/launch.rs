//! The one way to assemble a server: [`Server::open`] connects to and migrates the database,
//! records the audit signing key, and builds the shared state; [`Server::serve`] runs the API
//! and the job workers on a listener until a shutdown future resolves, then gives running jobs
//! back to the queue and closes the database. `serve`, `worker`, the CLI's demo, the tests and
//! the benches all start servers through it.

use std::future::Future;
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::SigningKey;
use crate::db::{Db, DbError};
use crate::http::app;
use crate::state::AppState;
use crate::store::AuditLog;
use crate::worker::{self, WorkerConfig};
use crate::{ServerConfig, store};

/// What a server process starts with.
#[derive(Clone, Debug)]
pub struct Launch {
    /// PostgreSQL or SQLite URL; `None` for SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// Where the SQLite database lives by default.
    pub data_dir: PathBuf,
    /// The key that signs audit heads and receipts.
    pub audit_key: SigningKey,
    /// Limits, guard, admin token, minimum cohort.
    pub config: ServerConfig,
    /// Job workers in this process (0: the API only).
    pub workers: usize,
    /// How workers lease and poll.
    pub worker: WorkerConfig,
}

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// The database could not be opened or migrated.
    #[error("couldn't open the database: {0}")]
    Database(#[from] DbError),
    /// The audit log could not be written.
    #[error("couldn't write the audit log: {0}")]
    Audit(String),
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Http(#[from] std::io::Error),
}

/// A server whose database is open and whose state is built, not yet serving.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    db: Db,
    workers: usize,
    worker: WorkerConfig,
    /// Whether this start recorded a signing key the audit log had not seen.
    pub new_signing_key: bool,
}

impl Server {
    /// Opens and migrates the database with the launch's audit key, and records the key in the
    /// server-wide chain if it is new.
    pub async fn open(launch: Launch) -> Result<Self, LaunchError> {
        let Launch {
            database_url,
            data_dir,
            audit_key,
            mut config,
            workers,
            worker,
        } = launch;
        let db = crate::open_and_migrate(database_url.as_deref(), &data_dir).await?;
        let log = AuditLog::new(db.clone(), audit_key.clone());
        // A chain that no longer extends the head this key kept is halted (logged, reported by
        // `/readyz`) but does not keep the server from starting.
        store::audit::check_kept_heads(&log)
            .await
            .map_err(|e| LaunchError::Audit(format!("checking the kept heads: {e}")))?;
        let new_signing_key = match store::audit::record_signing_key(&log).await {
            Ok(new) => new,
            Err(store::StoreError::Halted(_)) => false,
            Err(e) => {
                return Err(LaunchError::Audit(format!(
                    "recording the signing key: {e}"
                )));
            }
        };
        config.audit_key = Some(audit_key);
        Ok(Self {
            state: AppState::new(db.clone(), config),
            db,
            workers,
            worker,
            new_signing_key,
        })
    }

    /// The shared state (the database, configuration, caches).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves the API on `listener` (none: workers only) and runs the job workers until
    /// `shutdown` resolves; then stops taking requests, gives running jobs back to the queue
    /// and closes the database.
    pub async fn serve(
        self,
        listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LaunchError> {
        let (stop, stopped) = watch::channel(false);
        let workers = tokio::spawn(worker::run(
            self.state.clone(),
            self.workers,
            self.worker.clone(),
            stopped,
        ));
        let state = self.state.clone();
        let stopping = async move {
            shutdown.await;
            state.set_ready(false);
            let _ = stop.send(true);
        };
        let served = match listener {
            Some(listener) => {
                self.state.set_ready(true);
                let limits = self.state.config().limits.clone();
                crate::listen::serve(listener, app(self.state.clone()), &limits, stopping).await
            }
            None => {
                stopping.await;
                Ok(())
            }
        };
        let _ = workers.await;
        self.db.close().await;
        Ok(served?)
    }

    /// [`Server::open`], then [`Server::serve`].
    pub async fn start(
        launch: Launch,
        listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), LaunchError> {
        Self::open(launch).await?.serve(listener, shutdown).await
    }
}
