//! A real `blindsight-server` in-process on a loopback port, with one job worker, for the
//! client's tests.

use std::net::SocketAddr;
use std::time::Duration;

use blindsight_server::http::{AppState, app};
use blindsight_server::worker::{self, WorkerConfig};
use blindsight_server::{AdminToken, ServerConfig};

pub(crate) const ADMIN: &str = "client-test-admin-token-0123456789abcdef";

/// Starts a server and one job worker on a free loopback port in a background runtime;
/// returns its URL.
pub(crate) fn start_server(dir: &std::path::Path) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let db = blindsight_server::open_and_migrate(None, &dir)
                .await
                .unwrap();
            let mut config = ServerConfig::new();
            config.admin_token = Some(AdminToken::new(ADMIN).unwrap());
            let state = AppState::new(db, config);
            state.set_ready(true);
            // Held until the server ends (`_stop` lives to the end of this block).
            let (_stop, stopped) = tokio::sync::watch::channel(false);
            let workers = WorkerConfig {
                poll: Duration::from_millis(100),
                ..WorkerConfig::default()
            };
            tokio::spawn(worker::run(state.clone(), 1, workers, stopped));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(
                listener,
                app(state).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}
