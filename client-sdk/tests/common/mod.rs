//! A real `blindsight-server` in-process on a loopback port, with one job worker, for the
//! client's tests: assembled by `blindsight_server::Server`, as `serve` assembles it.

use std::time::Duration;

use blindsight_server::audit::SigningKey;
use blindsight_server::worker::WorkerConfig;
use blindsight_server::{AdminToken, Launch, Server, ServerConfig};

pub(crate) const ADMIN: &str = "client-test-admin-token-0123456789abcdef";

/// Starts a server and one job worker on a free loopback port in a background runtime, for
/// the rest of the test process; returns its URL.
pub(crate) fn start_server(dir: &std::path::Path) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut config = ServerConfig::new();
    config.admin_token = Some(AdminToken::new(ADMIN).unwrap());
    let launch = Launch {
        database_url: None,
        data_dir: dir.to_owned(),
        audit_key: SigningKey::ephemeral().unwrap(),
        config,
        workers: 1,
        worker: WorkerConfig {
            poll: Duration::from_millis(100),
            ..WorkerConfig::default()
        },
    };
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            Server::start(launch, Some(listener), std::future::pending())
                .await
                .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}
