//! Connections a hostile client holds open: idle and partial requests are timed out and,
//! at the connection cap, give way to new connections, so `/healthz` keeps answering with
//! 20,000 idle connections held open; a stalled upload does not hold shutdown past the
//! grace period. Runs `blindsight-server serve` as a process (its own descriptor limit).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::ADMIN;

/// A `serve` process on a loopback port, and that port.
fn serve(dir: &std::path::Path, args: &[&str]) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "0"])
        .args(args)
        .env("BLINDSIGHT_DATA_DIR", dir)
        .env("BLINDSIGHT_ADMIN_TOKEN", ADMIN)
        .env("BLINDSIGHT_LOG", "info")
        .env_remove("BLINDSIGHT_DATABASE_URL")
        .env_remove("BLINDSIGHT_AUDIT_KEY_FILE")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listen=").nth(1) {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not start:\n{log}");
}

fn healthz(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn open_idle(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect()
}

/// Run by the test below as a second process (one process's descriptors cannot hold all the
/// connections): holds `BLINDSIGHT_TEST_HOLD=<addr>,<n>` idle connections until its standard
/// input closes. On its own it does nothing.
#[test]
fn hold_connections_helper() {
    let Ok(spec) = std::env::var("BLINDSIGHT_TEST_HOLD") else {
        return;
    };
    let (addr, n) = spec.split_once(',').unwrap();
    per_process();
    let held = open_idle(addr.parse().unwrap(), n.parse().unwrap());
    println!("held {}", held.len());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Connections one test process can hold: 10,000, or what its open-files limit (raised to
/// the hard limit) leaves room for.
fn per_process() -> usize {
    let limit = rlimit::increase_nofile_limit(20_000).unwrap_or(1024);
    (limit.saturating_sub(300) as usize).min(10_000)
}

#[test]
fn healthz_answers_with_20000_idle_connections_held_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = serve(dir.path(), &["--header-timeout", "3"]);
    let n = per_process();
    if n < 10_000 {
        eprintln!("the open-files limit allows {n} connections per process, not 10,000");
    }
    // Half the connections in a second process, half here.
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "connections::hold_connections_helper",
            "--nocapture",
        ])
        .env("BLINDSIGHT_TEST_HOLD", format!("{addr},{n}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let here = open_idle(addr, n - 10);
    // The test harness prints its own lines around the helper's.
    let held = BufReader::new(helper.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("held"));
    assert_eq!(held.as_deref(), Some(format!("held {n}").as_str()));
    // Ten more start a request and stall in its headers.
    let mut stalled = open_idle(addr, 10);
    for s in &mut stalled {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
            .unwrap();
    }
    // 20,000 idle connections are held by clients: the server still answers, at once.
    for _ in 0..3 {
        let r = healthz(addr);
        assert!(r.starts_with("HTTP/1.1 200"), "{r:?}");
    }
    // The stalled ones are closed after the header timeout.
    let stalled = &mut stalled[9];
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = stalled
        .read(&mut buf)
        .unwrap_or_else(|e| panic!("a stalled request was not timed out: {e}"));
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(start.elapsed() < Duration::from_secs(15));
    drop(here);
    drop(helper.stdin.take());
    helper.wait().unwrap();
    let r = healthz(addr);
    assert!(r.starts_with("HTTP/1.1 200"), "{r:?}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_stalled_upload_does_not_hold_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = serve(dir.path(), &["--shutdown-grace", "2"]);
    // An upload that declares 100 kB and sends 10 bytes, then nothing.
    let mut upload = TcpStream::connect(addr).unwrap();
    upload
        .write_all(
            b"POST /v1/records HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer bst_x\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n0123456789",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "{status:?}");
    // Cut at the grace period, not held for the 120 s request timeout.
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(upload);
}

/// Sends `head` then `body_len` bytes of `fill` (stopping if the server answers first), and
/// returns the response's status line.
fn upload(addr: SocketAddr, head: String, prefix: Vec<u8>, body_len: usize) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut sent = 0;
    let chunk = vec![0u8; 1 << 20];
    let mut first = Some(prefix);
    while sent < body_len {
        let piece = first
            .take()
            .unwrap_or_else(|| chunk[..chunk.len().min(body_len - sent)].to_vec());
        if s.write_all(&piece).is_err() {
            break;
        }
        sent += piece.len();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The server's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    kib / 1024
}

#[test]
fn parallel_key_set_uploads_stay_within_a_memory_bound() {
    use blindsight_crypto::{Envelope, Kind};
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = serve(dir.path(), &[]);
    // A tenant's keyholder token, over HTTP.
    let body = r#"{"name":"Clinic","tenant_id":"tenant-m"}"#;
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/tenants HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut created = String::new();
    s.read_to_string(&mut created).unwrap();
    let token = created
        .split("\"keyholder\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let before = peak_rss_mib(server.id());

    const SIZE: usize = 200 << 20;
    let head = |len: usize| {
        format!(
            "PUT /v1/keysets/ks-1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    // A public bundle header declaring a 200 MiB payload, followed by zeros.
    let mut header = Envelope::encode(Kind::PublicBundle, "ks-1", b"{}", &[]).unwrap();
    let at = header.len() - 8;
    let payload = (SIZE - header.len()) as u64;
    header[at..].copy_from_slice(&payload.to_be_bytes());
    let statuses: Vec<String> = std::thread::scope(|s| {
        let mut uploads = Vec::new();
        // Six garbage bodies of 200 MiB each: refused from their first bytes.
        for _ in 0..6 {
            let h = head(SIZE);
            uploads
                .push(s.spawn(move || upload(addr, h, b"PK\x03\x04 not a bundle".to_vec(), SIZE)));
        }
        // Six well-framed 200 MiB bodies: at most two are read at once, the others wait.
        for _ in 0..6 {
            let (h, prefix) = (head(SIZE), header.clone());
            uploads.push(s.spawn(move || upload(addr, h, prefix, SIZE)));
        }
        uploads.into_iter().map(|u| u.join().unwrap()).collect()
    });
    let peak = peak_rss_mib(server.id());
    eprintln!("peak RSS {peak} MiB (before: {before} MiB): {statuses:?}");
    for status in &statuses[..6] {
        assert!(status.contains(" 400 "), "{statuses:?}");
    }
    let shed = statuses[6..].iter().filter(|s| s.contains(" 503 ")).count();
    assert!(shed >= 1, "{statuses:?}");
    // Stated bound: two bodies being read (200 MiB each, reserved exactly) and what the
    // server held before. Twelve bodies read at once would need ~2.4 GiB.
    let bound = before + 2 * 200 + 150;
    assert!(
        peak <= bound,
        "peak RSS {peak} MiB over the bound {bound} MiB (before: {before} MiB); {statuses:?}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
