//! A job's events over both transports of `GET /v1/jobs/{job_id}/events`, on a real listener:
//! server-sent events and a WebSocket deliver the same sequence ending in `done`; clients that
//! disconnect mid-stream give their stream slots back; a broken WebSocket handshake is a
//! problem document.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use blindsight_server::store::jobs::{self, NewJob};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Ctx, KEY_ID, TENANT_A, backends, config};

/// (event, status, progress done) as a client sees each event.
type Seen = Vec<(String, String, i64)>;

fn seen(kind: &str, job: &serde_json::Value) -> (String, String, i64) {
    (
        kind.to_owned(),
        job["status"].as_str().unwrap_or_default().to_owned(),
        job["progress_done"].as_i64().unwrap_or(-1),
    )
}

/// Reads server-sent events from a raw HTTP/1.1 connection until `done` (or `limit` events).
async fn read_sse(mut stream: tokio::net::TcpStream, limit: usize) -> Seen {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut kind = String::new();
    let mut consumed = 0;
    while out.len() < limit {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        while let Some(end) = text[consumed..].find('\n') {
            let line = text[consumed..consumed + end].trim_end_matches('\r');
            consumed += end + 1;
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k.to_owned();
            } else if let Some(data) = line.strip_prefix("data: ") {
                let job: serde_json::Value = serde_json::from_str(data).unwrap();
                out.push(seen(&kind, &job));
            }
        }
        if out.last().is_some_and(|(k, _, _)| k == "done") {
            break;
        }
    }
    out
}

async fn open_sse(addr: SocketAddr, token: &str, job: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/jobs/{job}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_ws(addr: SocketAddr, token: &str, job: &str) -> Socket {
    let mut request = format!("ws://{addr}/v1/jobs/{job}/events")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

async fn read_ws(socket: &mut Socket, limit: usize) -> Seen {
    let mut out = Vec::new();
    while out.len() < limit {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                out.push(seen(v["event"].as_str().unwrap(), &v["job"]));
            }
            Some(Ok(Message::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("{e}"),
        }
    }
    out
}

async fn wait_streams(ctx: &Ctx, open: usize) {
    let start = Instant::now();
    while ctx.state.event_streams().load(Ordering::SeqCst) != open {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "{}: {} event streams open, expected {open}",
            ctx.name,
            ctx.state.event_streams().load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sse_and_websocket_deliver_the_same_events_and_disconnects_free_their_slots() {
    for ctx in backends(config).await {
        let tenant = crate::jobs::tenant_with_keyset(&ctx, TENANT_A).await;
        let kh = tenant.tokens.keyholder.expose().to_owned();
        for id in ["job-1", "job-2"] {
            jobs::create(
                ctx.state.audit_log(),
                &NewJob {
                    job_id: id,
                    tenant_id: TENANT_A,
                    key_id: KEY_ID,
                    kind: "risk_score",
                    spec: "{}",
                    max_attempts: 3,
                },
            )
            .await
            .unwrap();
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = ctx.app.clone();
        // The server's own listener (timeouts, connection cap, upgrades).
        let limits = ctx.state.config().limits.clone();
        let server = tokio::spawn(async move {
            blindsight_server::listen::serve(listener, app, &limits, std::future::pending()).await
        });

        // Both transports follow job-1 while a worker runs it.
        let sse = open_sse(addr, &kh, "job-1").await;
        let mut ws = open_ws(addr, &kh, "job-1").await;
        let sse_reader = tokio::spawn(read_sse(sse, 100));
        wait_streams(&ctx, 2).await;
        let db = ctx.state.audit_log();
        let lease = jobs::claim(db, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.job.job_id, "job-1");
        for done in [1, 2, 3] {
            tokio::time::sleep(Duration::from_millis(1200)).await;
            assert!(
                jobs::heartbeat(db, &lease, Duration::from_secs(60), done, 4)
                    .await
                    .unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(
            jobs::complete(db, &lease, b"out", None, None)
                .await
                .unwrap()
        );
        let over_ws = read_ws(&mut ws, 100).await;
        let over_sse = sse_reader.await.unwrap();
        assert_eq!(over_ws, over_sse, "{}", ctx.name);
        let kinds: Vec<&str> = over_ws.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(kinds.last(), Some(&"done"), "{over_ws:?}");
        let progress: Vec<i64> = over_ws.iter().map(|(_, _, p)| *p).collect();
        assert_eq!(progress, [0, 0, 1, 2, 3, 4], "{over_ws:?}");
        assert_eq!(over_ws[0].1, "queued");
        assert_eq!(over_ws[5].1, "succeeded");
        wait_streams(&ctx, 0).await;

        // Clients that go away mid-stream (job-2 never finishes) free their slots.
        let mut sse = open_sse(addr, &kh, "job-2").await;
        let mut first = [0u8; 256];
        let n = sse.read(&mut first).await.unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).contains("200 OK"));
        let mut ws = open_ws(addr, &kh, "job-2").await;
        assert_eq!(read_ws(&mut ws, 1).await.len(), 1);
        wait_streams(&ctx, 2).await;
        drop(sse);
        ws.close(None).await.unwrap();
        drop(ws);
        wait_streams(&ctx, 0).await;
        let mut ws = open_ws(addr, &kh, "job-2").await;
        assert_eq!(read_ws(&mut ws, 1).await.len(), 1);
        drop(ws);
        wait_streams(&ctx, 0).await;

        // A handshake without its key is refused with a problem document; the wrong token is
        // refused before any upgrade.
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(
            format!(
                "GET /v1/jobs/job-2/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {kh}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut reply = vec![0u8; 4096];
        let n = raw.read(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply[..n]);
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        assert!(reply.contains("invalid-upgrade"), "{reply}");
        let mut request = format!("ws://{addr}/v1/jobs/job-2/events")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("authorization", "Bearer bst_wrong".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), StatusCode::UNAUTHORIZED)
            }
            other => panic!("a wrong token was not refused: {other:?}"),
        }
        server.abort();
        ctx.finish().await;
    }
}
