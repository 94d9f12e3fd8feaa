//! A real `blindsight-server` in this process, for the demo: the same router, storage and job
//! worker that `blindsight-server serve` runs, on a loopback port, with SQLite in a directory
//! the demo chooses. The client talks to it over HTTP like to any other server.
//!
//! The server logs through `tracing`; the client installs no subscriber, so its log lines are
//! dropped and the demo's output stays readable.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use blindsight_server::audit::SigningKey;
use blindsight_server::http::{AppState, app};
use blindsight_server::worker::{self, WorkerConfig};
use blindsight_server::{AdminToken, ServerConfig};
use tokio::sync::watch;

use crate::{Error, Result};

/// A running embedded server; stopped (its worker first given the chance to hand back any job
/// in progress, then its database closed) when dropped.
pub(crate) struct EmbeddedServer {
    url: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedServer {
    /// Starts the server on `127.0.0.1` (a free port) with its SQLite database under
    /// `data_dir`, `admin_token` as the admin credential, and one job worker.
    pub(crate) fn start(data_dir: &Path, admin_token: &str) -> Result<Self> {
        let admin = AdminToken::new(admin_token).map_err(Error::Demo)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blindsight-server")
            .enable_all()
            .build()
            .map_err(|e| Error::Demo(format!("couldn't start the server's runtime: {e}")))?;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = watch::channel(false);
        let dir = data_dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("blindsight-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let opened = async {
                        // The audit signing key lives beside the database, as with `serve`,
                        // so a kept data directory can be audited offline later.
                        let key_file = dir.join(blindsight_server::audit::AUDIT_KEY_FILE);
                        let (key, _) = SigningKey::load_or_create(&key_file)
                            .map_err(|e| format!("couldn't load the audit signing key: {e}"))?;
                        let db = blindsight_server::open_and_migrate(None, &dir)
                            .await
                            .map_err(|e| {
                                format!("couldn't open the database in {}: {e}", dir.display())
                            })?
                            .with_signer(key.clone());
                        blindsight_server::store::audit::record_signing_key(&db, &key)
                            .await
                            .map_err(|e| format!("couldn't record the audit signing key: {e}"))?;
                        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                            .await
                            .map_err(|e| format!("couldn't listen on 127.0.0.1: {e}"))?;
                        let addr = listener
                            .local_addr()
                            .map_err(|e| format!("couldn't read the listening address: {e}"))?;
                        Ok::<_, String>((db, key, listener, addr))
                    };
                    let (db, key, listener, addr) = match opened.await {
                        Ok(opened) => opened,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let mut config = ServerConfig::new();
                    config.admin_token = Some(admin);
                    config.audit_key = Some(key);
                    let state = AppState::new(db.clone(), config);
                    state.set_ready(true);
                    let workers = WorkerConfig {
                        poll: Duration::from_millis(100),
                        ..WorkerConfig::default()
                    };
                    let workers =
                        tokio::spawn(worker::run(state.clone(), 1, workers, stopped.clone()));
                    let _ = started_tx.send(Ok(addr));
                    let mut stopped = stopped;
                    let shutdown = async move {
                        // A dropped sender also ends the wait: stop then too.
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    let _ = axum::serve(
                        listener,
                        app(state).into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .with_graceful_shutdown(shutdown)
                    .await;
                    let _ = workers.await;
                    db.close().await;
                });
            })
            .map_err(|e| Error::Demo(format!("couldn't start the server's thread: {e}")))?;
        let addr = started_rx
            .recv()
            .map_err(|_| Error::Demo("the embedded server stopped while starting".into()))?
            .map_err(Error::Demo)?;
        Ok(Self {
            url: format!("http://{addr}"),
            stop,
            thread: Some(thread),
        })
    }

    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
