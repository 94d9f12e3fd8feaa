//! Server memory: the resident set (VmRSS) and its peak (VmHWM) of a process holding a real
//! server's state (the router, SQLite storage, FHE pool and key cache that
//! `blindsight-server serve` runs), at start, then as tenants' key sets are registered and
//! their key material loaded into the key cache the way the server loads it (the proof
//! verifier, all that ingest needs; then the decompressed server key, which jobs add). Each
//! tenant has its own key set.
//!
//! ```sh
//! cargo run --release -p blindsight-benches --bin rss                          # 4 tenants
//! cargo run --release -p blindsight-benches --bin rss -- --key-cache-mib 1024   # under a smaller cache bound
//! ```
//!
//! Key sets are generated before the measured process state exists, by a child process (so
//! key generation's own memory is not counted), into a temporary directory, or into `--keys
//! DIR` where they are kept and reused by later runs. Registration goes through the router
//! in-process (`PUT /v1/keysets/{key_id}` with the bundle as the request body, as after hyper
//! has received it); no socket is opened. Linux only: it reads `/proc/self/status`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Method, Request};
use blindsight_benches::RunInfo;
use blindsight_crypto::KeySet;
use blindsight_proto::TenantCreated;
use blindsight_server::http::{AppState, app};
use blindsight_server::registry;
use blindsight_server::{AdminToken, ServerConfig};
use serde::Serialize;
use tower::ServiceExt;

const ADMIN: &str = "admin-token-for-the-rss-bench-0123456789abc";
/// The hidden child mode: `rss --generate-key-set KEY_ID PATH` writes one public bundle.
const GENERATE: &str = "--generate-key-set";
const MIB: f64 = 1024.0 * 1024.0;

const USAGE: &str = "usage: rss [--tenants N] [--key-cache-mib M] [--keys DIR] [--json PATH]
  --tenants N        tenants (each its own key set) to load, one after another (default 4)
  --key-cache-mib M  the server's key-cache bound, as `serve --key-cache-mib` (default 4096)
  --keys DIR         keep the generated public bundles in DIR and reuse them on later runs
  --json PATH        also write the table as JSON to PATH";

struct Args {
    tenants: usize,
    key_cache_mib: Option<u64>,
    keys: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut out = Args {
        tenants: 4,
        key_cache_mib: None,
        keys: None,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> anyhow::Result<u64> {
        v.with_context(|| format!("{flag} needs a number"))?
            .parse()
            .with_context(|| format!("{flag} needs a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tenants" => out.tenants = number(it.next(), "--tenants")?.clamp(1, 64) as usize,
            "--key-cache-mib" => out.key_cache_mib = Some(number(it.next(), "--key-cache-mib")?),
            "--keys" => out.keys = Some(it.next().context("--keys needs a directory")?.into()),
            "--json" => out.json = Some(it.next().context("--json needs a path")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    Ok(out)
}

/// One measurement.
#[derive(Serialize)]
struct Row {
    stage: String,
    /// Tenants whose key material (verifier and server key) has been loaded so far.
    tenants_loaded: usize,
    vm_rss_mib: f64,
    /// The process's peak resident set so far.
    vm_hwm_mib: f64,
    /// The peak within this stage alone (VmHWM reset at the previous stage through
    /// `/proc/self/clear_refs`); `None` where the kernel refuses the reset.
    stage_peak_mib: Option<f64>,
    key_cache_entries: usize,
    key_cache_mib: f64,
}

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    run: RunInfo,
    key_cache_bound_mib: f64,
    public_bundle_mib: f64,
    keygen_s: Option<f64>,
    rows: Vec<Row>,
    /// (VmRSS with every tenant loaded − VmRSS at start) ÷ tenants, when the cache bound
    /// evicted nothing.
    rss_per_tenant_mib: Option<f64>,
    /// Whether the cache bound evicted key material.
    evicted: bool,
}

fn main() -> anyhow::Result<()> {
    if !cfg!(target_os = "linux") {
        eprintln!(
            "rss: Linux only: it reads VmRSS and VmHWM from /proc/self/status, which this OS ({}) does not have",
            std::env::consts::OS
        );
        std::process::exit(2);
    }
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.first().map(String::as_str) == Some(GENERATE) {
        let [_, key_id, path] = raw.as_slice() else {
            bail!("usage: rss {GENERATE} KEY_ID PATH");
        };
        let (_secret, public) = KeySet::generate_with_id(key_id, |_| {})?.into_parts();
        std::fs::write(path, public.encode()?).with_context(|| format!("couldn't write {path}"))?;
        return Ok(());
    }
    let args = args()?;
    let run = RunInfo::start();

    // Key sets first, each in a child process: nothing of key generation stays in this one.
    let temp;
    let dir = match &args.keys {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("couldn't create {}", dir.display()))?;
            dir.as_path()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path()
        }
    };
    let tenants: Vec<(String, String, PathBuf)> = (1..=args.tenants)
        .map(|k| {
            (
                format!("bench-rss-{k}"),
                format!("ks-rss-{k}"),
                dir.join(format!("ks-rss-{k}.public")),
            )
        })
        .collect();
    let keygen = generate_missing(&tenants)?;

    let mut config = ServerConfig::new();
    config.admin_token = Some(AdminToken::new(ADMIN).map_err(anyhow::Error::msg)?);
    if let Some(mib) = args.key_cache_mib {
        config.limits.key_cache_bytes = mib << 20;
    }
    let bound = config.limits.key_cache_bytes as f64 / MIB;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bench-server")
        .enable_all()
        .build()
        .context("couldn't start the server's runtime")?;
    let data = tempfile::tempdir()?;
    let report = runtime.block_on(async {
        let db = blindsight_server::open_and_migrate(None, data.path()).await?;
        let state = AppState::new(db, config);
        state.set_ready(true);
        let router = app(state.clone());
        let mut probe = Probe::new();
        let mut rows = vec![probe.row(&state, "server started (SQLite, no tenants)", 0)?];
        let mut bundle_bytes = 0;
        for (k, (tenant, key_id, path)) in tenants.iter().enumerate() {
            eprintln!("rss: tenant {} of {}…", k + 1, tenants.len());
            let created = call(
                &router,
                Method::POST,
                "/v1/tenants",
                ADMIN,
                serde_json::to_vec(&serde_json::json!({"name": tenant, "tenant_id": tenant}))?,
            )
            .await?;
            let created: TenantCreated = serde_json::from_slice(&created)?;
            let bundle =
                std::fs::read(path).with_context(|| format!("couldn't read {}", path.display()))?;
            bundle_bytes = bundle.len();
            call(
                &router,
                Method::PUT,
                &format!("/v1/keysets/{key_id}"),
                created.tokens.keyholder.expose(),
                bundle,
            )
            .await?;
            rows.push(probe.row(&state, &format!("tenant {}: key set registered", k + 1), k)?);
            // The proof verifier: all that ingest (`POST /v1/records`) loads.
            registry::verifier(&state, tenant, key_id)
                .await
                .map_err(|e| anyhow::anyhow!("loading the verifier: {e}"))?
                .context("the key set was not stored")?;
            rows.push(probe.row(&state, &format!("tenant {}: verifier loaded", k + 1), k)?);
            // What a job adds: the key set's server key, decompressed once and cached.
            registry::server_key(&state, tenant, key_id)
                .await
                .map_err(|e| anyhow::anyhow!("loading the server key: {e}"))?
                .context("the key set was not stored")?;
            rows.push(probe.row(
                &state,
                &format!("tenant {}: server key loaded", k + 1),
                k + 1,
            )?);
        }
        state.db().close().await;
        let first = rows.first().map_or(0.0, |r| r.vm_rss_mib);
        let last = rows.last().map_or(0.0, |r| r.vm_rss_mib);
        // Two entries per tenant (server key, verifier) unless the bound evicted some.
        let evicted = rows
            .last()
            .is_some_and(|r| r.key_cache_entries < 2 * tenants.len());
        anyhow::Ok(Report {
            run: run.finish(),
            key_cache_bound_mib: bound,
            public_bundle_mib: bundle_bytes as f64 / MIB,
            keygen_s: keygen,
            rss_per_tenant_mib: (!evicted).then(|| (last - first) / tenants.len() as f64),
            evicted,
            rows,
        })
    })?;
    print_table(&report);
    blindsight_benches::write_json(args.json.as_deref(), &report)?;
    Ok(())
}

/// Generates, in a child process each, the bundles not already on disk; the mean time per
/// key set when any was generated.
fn generate_missing(tenants: &[(String, String, PathBuf)]) -> anyhow::Result<Option<f64>> {
    let exe = std::env::current_exe().context("couldn't find this program to re-run it")?;
    let mut times = Vec::new();
    for (_, key_id, path) in tenants {
        if path.exists() {
            continue;
        }
        eprintln!("rss: generating key set {key_id} (child process)…");
        let start = std::time::Instant::now();
        let partial = path.with_extension("partial");
        let status = Command::new(&exe)
            .arg(GENERATE)
            .arg(key_id)
            .arg(&partial)
            .status()
            .context("couldn't start the key-generating child")?;
        if !status.success() {
            bail!("generating key set {key_id} failed: {status}");
        }
        std::fs::rename(&partial, path)?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok((!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64))
}

/// Sends one request through the router in-process; the body of a 2xx answer.
async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> anyhow::Result<axum::body::Bytes> {
    let request = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body))?;
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let body = to_bytes(response.into_body(), 16 << 20).await?;
    if !status.is_success() {
        bail!(
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(body)
}

/// Reads `/proc/self/status`, resetting the peak after each reading where the kernel allows.
struct Probe {
    resettable: bool,
    peak_kib: u64,
}

impl Probe {
    fn new() -> Self {
        let mut p = Self {
            resettable: false,
            peak_kib: 0,
        };
        p.resettable = p.reset();
        p
    }

    /// Resets VmHWM to the current VmRSS (`echo 5 > /proc/self/clear_refs`, Linux ≥ 4.0).
    fn reset(&self) -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }

    fn row(&mut self, state: &AppState, stage: &str, tenants: usize) -> anyhow::Result<Row> {
        let (rss, hwm) = status_kib()?;
        let stage_peak = self.resettable.then_some(hwm);
        // With resets, VmHWM is this stage's peak; the process peak is the largest of them.
        self.peak_kib = self.peak_kib.max(hwm);
        if self.resettable {
            self.resettable = self.reset();
        }
        let (entries, weight) = state.key_cache().stats();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let row = Row {
            stage: stage.into(),
            tenants_loaded: tenants,
            vm_rss_mib: mib(rss),
            vm_hwm_mib: mib(self.peak_kib),
            stage_peak_mib: stage_peak.map(mib),
            key_cache_entries: entries,
            key_cache_mib: weight as f64 / MIB,
        };
        eprintln!(
            "rss: {stage}: VmRSS {:.0} MiB, peak {:.0} MiB",
            row.vm_rss_mib, row.vm_hwm_mib
        );
        Ok(row)
    }
}

/// VmRSS and VmHWM, in KiB.
fn status_kib() -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(Path::new("/proc/self/status"))
        .context("couldn't read /proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("/proc/self/status has no {name}"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn print_table(r: &Report) {
    println!(
        "\n{}; key-cache bound {:.0} MiB; public bundle {:.1} MiB{}\n",
        r.run.header(),
        r.key_cache_bound_mib,
        r.public_bundle_mib,
        r.keygen_s.map_or(String::new(), |s| format!(
            "; key generation {s:.1} s per key set (child process, not counted)"
        )),
    );
    println!(
        "| stage | tenants loaded so far | VmRSS | peak (VmHWM) | peak within stage | key cache entries | key cache |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in &r.rows {
        println!(
            "| {} | {} | {:.0} MiB | {:.0} MiB | {} | {} | {:.0} MiB |",
            row.stage,
            row.tenants_loaded,
            row.vm_rss_mib,
            row.vm_hwm_mib,
            row.stage_peak_mib
                .map_or("–".into(), |m| format!("{m:.0} MiB")),
            row.key_cache_entries,
            row.key_cache_mib,
        );
    }
    let last = r.rows.last();
    match r.rss_per_tenant_mib {
        Some(per) => println!(
            "\nResident memory per tenant whose keys are loaded: {per:.0} MiB ((last − first \
             VmRSS) ÷ tenants)."
        ),
        None => println!(
            "\nThe key-cache bound ({:.0} MiB) evicted the least recently used key material: \
             {} entries ({:.0} MiB) are held, and VmRSS stays at {:.0} MiB.",
            r.key_cache_bound_mib,
            last.map_or(0, |l| l.key_cache_entries),
            last.map_or(0.0, |l| l.key_cache_mib),
            last.map_or(0.0, |l| l.vm_rss_mib),
        ),
    }
    println!(
        "The key cache holds decoded key material (a decompressed server key and a proof \
         verifier per key set) up to its bound (`serve --key-cache-mib`), least recently used \
         evicted; its weight is the serialized size of what it holds. \"peak within stage\" \
         is the transient peak since the previous row (VmHWM reset through \
         /proc/self/clear_refs)."
    );
}
