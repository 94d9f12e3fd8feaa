//! The HTTP listener: accepts connections for the router with bounds a hostile client cannot
//! exhaust.
//!
//! - **Header and idle timeout** (`header_timeout`): a connection that has not sent a
//!   complete request head within it (a partial request, or nothing, or nothing more after a
//!   response) is closed. Requests themselves are bounded by `request_timeout` (`http`).
//! - **Connection cap** (`max_connections`, and at most the file-descriptor limit less a
//!   reserve for the database, key files and logs): at the cap, a new connection takes the
//!   place of the oldest connection that never sent a complete request; when every held
//!   connection has, the new one is closed. Idle attackers therefore cannot keep `/healthz`
//!   or a real client out, and the process never runs out of descriptors.
//! - **Shutdown** (`shutdown_grace`): the listener closes, idle connections close, requests in
//!   flight get the grace period to finish; connections still open then (a stalled upload)
//!   are cut.
//!
//! Connections speak HTTP/1.1 (with upgrades, for job events over WebSocket) or HTTP/2.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use crate::config::Limits;

/// Descriptors kept back from the connection cap for the database, files and logs.
const FD_RESERVE: u64 = 512;

#[derive(Default)]
struct Slot {
    /// A complete request head arrived on this connection.
    served: AtomicBool,
    /// Close now: another connection took this one's place.
    evict: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection cap: `limits.max_connections`, lowered to fit the file-descriptor limit
/// (raised to its hard limit first, where the system allows).
pub fn connection_cap(limits: &Limits) -> usize {
    let wanted = limits.max_connections.max(1) as u64;
    let fds = match rlimit::increase_nofile_limit(wanted + FD_RESERVE) {
        Ok(n) => n,
        Err(_) => rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(wanted + FD_RESERVE, |l| l.0),
    };
    let fit = fds.saturating_sub(FD_RESERVE).max(16);
    if fit < wanted {
        tracing::warn!(
            max_connections = wanted,
            open_files_limit = fds,
            cap = fit,
            "the open-files limit allows fewer connections than --max-connections; raise it (ulimit -n, LimitNOFILE=) to hold more"
        );
    }
    wanted.min(fit) as usize
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains as described above.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let cap = connection_cap(limits);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let slots: Arc<Mutex<BTreeMap<u64, Arc<Slot>>>> = Arc::default();
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or memory for a moment: back off, keep serving.
                    tracing::warn!(error = %e, "couldn't accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        {
            let held = lock(&slots);
            if held.len() >= cap {
                match held.values().find(|s| !s.served.load(Ordering::Acquire)) {
                    Some(oldest_idle) => oldest_idle.evict.notify_one(),
                    None => {
                        tracing::debug!(%peer, "connection refused: every connection is serving a request");
                        continue;
                    }
                }
            }
        }
        let id = next_id;
        next_id += 1;
        let slot = Arc::new(Slot::default());
        lock(&slots).insert(id, Arc::clone(&slot));
        let service = {
            let app = app.clone();
            let slot = Arc::clone(&slot);
            tower::service_fn(move |mut request: hyper::Request<Incoming>| {
                slot.served.store(true, Ordering::Release);
                request.extensions_mut().insert(ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request)
            })
        };
        let builder = builder.clone();
        let mut stopping = stopping.clone();
        let slots = Arc::clone(&slots);
        tasks.spawn(async move {
            let _ = stream.set_nodelay(true);
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = slot.evict.notified() => {}
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            lock(&slots).remove(&id);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let open = tasks.len();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            of = open,
            grace_s = limits.shutdown_grace.as_secs(),
            "connections still open after the shutdown grace period were cut"
        );
        tasks.shutdown().await;
    }
    Ok(())
}
