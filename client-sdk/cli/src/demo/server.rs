//! A real `blindsight-server` in this process: the same router, storage and job worker that
//! `blindsight-server serve` runs (assembled by `blindsight_server::Server`), on a loopback
//! port, with SQLite in a directory the caller chooses. Clients talk to it over HTTP like to
//! any other server. The demo runs on it, and so do the CLI's tests.
//!
//! The server logs through `tracing`; the CLI installs no subscriber, so its log lines are
//! dropped and the demo's output stays readable.

use std::net::Ipv4Addr;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use blindsight_server::audit::{AUDIT_KEY_FILE, SigningKey};
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{AdminToken, Launch, Server, ServerConfig};
use tokio::sync::watch;

/// A running embedded server; stopped (its worker first given the chance to hand back any job
/// in progress, then its database closed) when dropped.
#[derive(Debug)]
pub struct EmbeddedServer {
    url: String,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedServer {
    /// Starts the server on `127.0.0.1` (a free port) with its SQLite database and audit
    /// signing key under `data_dir`, `admin_token` as the admin credential, and one job worker.
    pub fn start(data_dir: &Path, admin_token: &str) -> anyhow::Result<Self> {
        let mut config = ServerConfig::new();
        config.admin_token = Some(AdminToken::new(admin_token).map_err(anyhow::Error::msg)?);
        // The audit signing key lives beside the database, as with `serve`, so a kept data
        // directory can be audited offline later.
        let (audit_key, _) = SigningKey::load_or_create(&data_dir.join(AUDIT_KEY_FILE))
            .context("couldn't load the audit signing key")?;
        let launch = Launch {
            database_url: None,
            data_dir: data_dir.to_owned(),
            audit_key,
            config,
            workers: 1,
            worker: WorkerConfig {
                poll: Duration::from_millis(100),
                ..WorkerConfig::default()
            },
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("blindsight-server")
            .enable_all()
            .build()
            .context("couldn't start the server's runtime")?;
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = watch::channel(false);
        let dir = data_dir.display().to_string();
        let thread = std::thread::Builder::new()
            .name("blindsight-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let opened = async {
                        let server = Server::open(launch)
                            .await
                            .map_err(|e| format!("couldn't open the server in {dir}: {e}"))?;
                        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                            .await
                            .map_err(|e| format!("couldn't listen on 127.0.0.1: {e}"))?;
                        let addr = listener
                            .local_addr()
                            .map_err(|e| format!("couldn't read the listening address: {e}"))?;
                        Ok::<_, String>((server, listener, addr))
                    };
                    let (server, listener, addr) = match opened.await {
                        Ok(opened) => opened,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(addr));
                    let shutdown = async move {
                        // A dropped sender also ends the wait: stop then too.
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    let _ = server.serve(Some(listener), shutdown).await;
                });
            })
            .context("couldn't start the server's thread")?;
        let addr = started_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the embedded server stopped while starting"))?
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            url: format!("http://{addr}"),
            stop,
            thread: Some(thread),
        })
    }

    /// The server's base URL (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
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
