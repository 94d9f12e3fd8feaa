//! The `blindsight` command-line tool.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use blindsight_client::api::{
    ApiError, Client, Job, JobRequest, JobStatus, ModelRef, RecordQuery, Selection, Uploaded,
};
use blindsight_client::audit::{self, DbSource, FetchOptions};
use blindsight_client::demo::{self, Progress as _};
use blindsight_client::session::Session;
use blindsight_client::{keystore, results};
use blindsight_crypto::compute::{AggregateQuery, CRISIS_MODEL_ID, RiskModel};
use blindsight_crypto::{DEFAULT_ITERATIONS, KeySet, SecretKeys};
use blindsight_server::audit::verify;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Deserialize;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "blindsight",
    version,
    about = "Blindsight: risk scoring and analytics on data the service can never read"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the end-to-end demo on an embedded server: keys, a synthetic cohort encrypted and
    /// proven, risk scores and aggregates on ciphertext, decryption, and every decrypted value
    /// checked against the plaintext computation (non-zero exit on any mismatch).
    Demo {
        /// Synthetic sessions to record (1–1000).
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(1..=1000))]
        records: u16,
        /// The seed the synthetic cohort is drawn from.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Keep the server's database and the keystore in DIR (default: a temporary directory,
        /// removed at the end).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Generate a key set: a keystore (secrets, passphrase-encrypted) and the public bundles.
    Keygen {
        /// Directory to write `<key-id>.keystore`, `<key-id>.public` and `<key-id>.app` into.
        #[arg(long, env = "BLINDSIGHT_KEY_DIR", default_value = ".")]
        out_dir: PathBuf,
        /// The key-set id (up to 64 of A–Z a–z 0–9 - _); random when absent.
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Register a key set's public bundle with the server (keyholder token).
    Register {
        #[command(flatten)]
        server: ServerArgs,
        /// The `<key-id>.public` file written by `keygen`.
        bundle: PathBuf,
    },
    /// Encrypt, prove and upload sessions (ingest token): one JSON session, or a JSONL batch
    /// (one session per line). Every session is validated before anything is encrypted.
    Record {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        keyset: KeysetArgs,
        /// A `.json` file (one session) or `.jsonl` file (one per line); format in
        /// docs/session-example.json.
        file: PathBuf,
    },
    /// Sealed transcripts.
    #[command(subcommand)]
    Transcript(TranscriptCommand),
    /// Check the server's privacy claims (auditor token, or the server's database).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Register a risk model (a JSON file: id, version, schema_id, schema_version, weights,
    /// thresholds, rules) with the server (keyholder token). Models are immutable: change one
    /// by registering a new version.
    Model {
        #[command(flatten)]
        server: ServerArgs,
        /// The model's JSON file.
        file: PathBuf,
    },
    /// List the risk models jobs can name: built in and registered (keyholder or auditor
    /// token).
    Models {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Score the selected records with a risk model, on ciphertext (keyholder token). Prints
    /// the job id; decrypt with `blindsight results <job-id>`.
    Score {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        select: SelectArgs,
        /// The model id (the built-in model is `crisis`).
        #[arg(long, default_value = CRISIS_MODEL_ID)]
        model: String,
        /// The model version.
        #[arg(long, default_value_t = 1)]
        model_version: u32,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Compute aggregates over a cohort, on ciphertext (keyholder token): a JSON file such as
    /// {"aggregates": [{"op": "count"}, {"op": "mean", "field": "mood_change"}]}. Prints the job
    /// id; decrypt with `blindsight results <job-id>`.
    Query {
        #[command(flatten)]
        server: ServerArgs,
        /// The query's JSON file.
        file: PathBuf,
        #[command(flatten)]
        select: SelectArgs,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the tenant's jobs, newest first, or show one (keyholder or auditor token).
    Jobs {
        #[command(flatten)]
        server: ServerArgs,
        /// Show this job.
        job_id: Option<String>,
    },
    /// Wait for a job, decrypt its results with the keystore and print them as a table
    /// (keyholder token; passphrase from BLINDSIGHT_PASSPHRASE or a prompt).
    Results {
        #[command(flatten)]
        server: ServerArgs,
        /// The job id.
        job_id: String,
        /// The keystore of the key set the job ran under.
        #[arg(long, env = "BLINDSIGHT_KEYSTORE")]
        keystore: Option<PathBuf>,
        /// Also write the results as CSV to this file (mode 0600: they are decrypted data).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Also write the results as JSON to this file (mode 0600).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Seconds to wait for an unfinished job.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
}

/// Which records a job reads: routing metadata only.
#[derive(Args)]
struct SelectArgs {
    /// The key set the records are encrypted under.
    #[arg(long, env = "BLINDSIGHT_KEY_ID")]
    key_id: Option<String>,
    /// Only records with this cohort label.
    #[arg(long)]
    cohort: Option<String>,
    /// Only records recorded at or after this time: seconds since the epoch, YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SSZ (UTC).
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Only records recorded before this time (same forms as --since).
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Only this record (repeat for several); each must match the rest of the selection.
    #[arg(long = "record", value_name = "RECORD_ID")]
    records: Vec<String>,
    /// The record schema.
    #[arg(long, default_value = blindsight_crypto::schemas::SESSION_SCHEMA_ID)]
    schema: String,
    /// The record schema's version.
    #[arg(long, default_value_t = blindsight_crypto::schemas::SESSION_SCHEMA_VERSION)]
    schema_version: u32,
}

#[derive(Args)]
struct WaitArgs {
    /// Wait for the job to finish, showing its progress.
    #[arg(long)]
    wait: bool,
    /// With --wait: seconds to wait before giving up (the job keeps running).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

#[derive(Subcommand)]
enum TranscriptCommand {
    /// Fetch a record's sealed transcript and open it with the keystore (keyholder token).
    Open {
        #[command(flatten)]
        server: ServerArgs,
        /// The record id.
        record_id: String,
        /// The keystore written by `keygen` (passphrase from BLINDSIGHT_PASSPHRASE or a prompt).
        #[arg(long, env = "BLINDSIGHT_KEYSTORE")]
        keystore: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify every privacy claim; exits non-zero when any check fails.
    ///
    /// Checks the audit chains and their signed heads, every record's proof, every job's signed
    /// receipt (and, with --reexecute, jobs run again), what is stored, the key sets' manifests
    /// and the minimum cohorts. Reads a tenant's evidence over the API (--url and an auditor
    /// token) or a whole server's from its database (--db), and prints the report on stdout.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Read the server's database instead of its API: the data directory, its SQLite file
    /// (opened read-only) or a postgres:// URL. Never migrated.
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
    /// A published audit key to trust (repeat for keys it was rotated from): 64 hex digits,
    /// or a file holding them or the JSON of GET /v1/audit/key.
    #[arg(long = "audit-key", value_name = "HEX|FILE")]
    audit_keys: Vec<String>,
    /// Re-execute this many succeeded jobs, sampled at random, and compare their outputs with
    /// the receipts (slow: FHE work; fetches the server keys).
    #[arg(long, value_name = "N", default_value_t = 0)]
    reexecute: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The optional JSON config file (`--config`, `BLINDSIGHT_CONFIG`): defaults for the flags
/// below. Tokens and passphrases never go in it.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    url: Option<String>,
    tenant: Option<String>,
    key_id: Option<String>,
    manifest_fingerprint: Option<String>,
    keystore: Option<PathBuf>,
}

#[derive(Args)]
struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "BLINDSIGHT_URL")]
    url: Option<String>,
    /// A bearer token (never written to the config file).
    #[arg(long, env = "BLINDSIGHT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The tenant id.
    #[arg(long, env = "BLINDSIGHT_TENANT")]
    tenant: Option<String>,
    /// A JSON config file with defaults (url, tenant, key_id, manifest_fingerprint, keystore).
    #[arg(long, env = "BLINDSIGHT_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct KeysetArgs {
    /// The key set to encrypt under.
    #[arg(long, env = "BLINDSIGHT_KEY_ID")]
    key_id: Option<String>,
    /// The manifest fingerprint to pin (printed by `keygen` and `register`): a bundle with any
    /// other fingerprint is refused.
    #[arg(long, env = "BLINDSIGHT_PIN")]
    pin: Option<String>,
}

impl ServerArgs {
    fn config(&self) -> anyhow::Result<ConfigFile> {
        let Some(path) = &self.config else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("couldn't read config file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }

    fn client(&self, config: &ConfigFile) -> anyhow::Result<Client> {
        let url = self.url.clone().or_else(|| config.url.clone()).context(
            "no server URL: pass --url, set BLINDSIGHT_URL, or put \"url\" in the config file",
        )?;
        let token = self
            .token
            .as_deref()
            .context("no token: pass --token or set BLINDSIGHT_TOKEN")?;
        Ok(Client::new(&url, token))
    }

    fn tenant(&self, config: &ConfigFile) -> anyhow::Result<String> {
        self.tenant.clone().or_else(|| config.tenant.clone()).context(
            "no tenant id: pass --tenant, set BLINDSIGHT_TENANT, or put \"tenant\" in the config file",
        )
    }
}

/// The passphrase that opens an existing keystore: BLINDSIGHT_PASSPHRASE or one prompt.
fn unlock_passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password("keystore passphrase: ").context(
            "couldn't read a passphrase (set BLINDSIGHT_PASSPHRASE when there is no terminal)",
        )?,
    ))
}

/// The keystore path from --keystore, BLINDSIGHT_KEYSTORE or the config file.
fn keystore_path(flag: Option<&PathBuf>, config: &ConfigFile) -> anyhow::Result<PathBuf> {
    flag.cloned().or(config.keystore.clone()).context(
        "no keystore: pass --keystore, set BLINDSIGHT_KEYSTORE, or put \"keystore\" in the config file",
    )
}

fn open_keystore(path: &Path) -> anyhow::Result<SecretKeys> {
    let pass = unlock_passphrase()?;
    keystore::load(path, &pass)
        .with_context(|| format!("couldn't open keystore {}", path.display()))
}

/// A new keystore's passphrase: BLINDSIGHT_PASSPHRASE or a prompt, twice.
fn passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    let first = Zeroizing::new(rpassword::prompt_password("keystore passphrase: ").context(
        "couldn't read a passphrase (set BLINDSIGHT_PASSPHRASE when there is no terminal)",
    )?);
    let second = Zeroizing::new(rpassword::prompt_password("repeat passphrase: ")?);
    anyhow::ensure!(*first == *second, "the passphrases differ");
    Ok(first)
}

fn keygen(out_dir: PathBuf, key_id: Option<String>) -> anyhow::Result<()> {
    let pass = passphrase()?;
    anyhow::ensure!(
        pass.chars().count() >= 12,
        "choose a passphrase of at least 12 characters"
    );
    let step = |s: blindsight_crypto::KeygenStep| eprintln!("keygen: {}…", s.describe());
    let keys = match key_id {
        Some(id) => KeySet::generate_with_id(&id, step)?,
        None => KeySet::generate_with_progress(step)?,
    };
    let (secret, public) = keys.into_parts();
    let id = secret.key_id().to_owned();
    let ks = out_dir.join(format!("{id}.keystore"));
    keystore::save(&ks, &secret, &pass, DEFAULT_ITERATIONS)
        .with_context(|| format!("couldn't write keystore {}", ks.display()))?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.public")),
        &public.encode()?,
        false,
    )?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.app")),
        &public.app_bundle().encode()?,
        false,
    )?;
    println!("key set {id}");
    println!("manifest fingerprint {}", public.manifest().fingerprint()?);
    println!("keystore {}", ks.display());
    Ok(())
}

fn register(server: &ServerArgs, bundle: &PathBuf) -> anyhow::Result<()> {
    let config = server.config()?;
    let bytes = std::fs::read(bundle)
        .with_context(|| format!("couldn't read public bundle {}", bundle.display()))?;
    let public = blindsight_crypto::PublicBundle::decode(&bytes)
        .with_context(|| format!("{} is not a valid public bundle", bundle.display()))?;
    let reg = server
        .client(&config)?
        .register_keyset(public.key_id(), &bytes)?;
    println!(
        "key set {} {}",
        reg.key_id,
        if reg.created {
            "registered"
        } else {
            "was already registered"
        }
    );
    println!("manifest fingerprint {}", reg.manifest_fingerprint);
    Ok(())
}

/// Checks every field is present and in range, as encryption would, without encrypting.
fn validate(session: &Session) -> anyhow::Result<()> {
    let values = session.values()?;
    blindsight_crypto::schemas::session_v1().order_values(&values)?;
    Ok(())
}

/// Reads one session (`.json`) or a batch (`.jsonl`), validating every one before returning.
fn read_sessions(file: &PathBuf) -> anyhow::Result<Vec<Session>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("couldn't read {}", file.display()))?;
    let jsonl = file.extension().is_some_and(|e| e == "jsonl");
    let mut sessions = Vec::new();
    if jsonl {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let session: Session = serde_json::from_str(line)
                .with_context(|| format!("{} line {}", file.display(), n + 1))?;
            validate(&session).with_context(|| format!("{} line {}", file.display(), n + 1))?;
            sessions.push(session);
        }
    } else {
        let session: Session =
            serde_json::from_str(&text).with_context(|| file.display().to_string())?;
        session
            .values()
            .with_context(|| file.display().to_string())?;
        sessions.push(session);
    }
    anyhow::ensure!(!sessions.is_empty(), "{} holds no sessions", file.display());
    Ok(sessions)
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (callers then print plain
/// lines).
fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Progress on stderr for steps whose length may change (jobs, the demo): a bar from
/// [`progress`] on a terminal, a plain line per update otherwise.
#[derive(Default)]
struct StderrProgress {
    what: String,
    bar: Option<indicatif::ProgressBar>,
}

impl demo::Progress for StderrProgress {
    fn begin(&mut self, what: &str, total: u64) {
        self.end();
        let bar = progress(usize::try_from(total).unwrap_or(usize::MAX), what);
        bar.enable_steady_tick(Duration::from_millis(250));
        self.what = what.to_owned();
        self.bar = Some(bar);
    }

    fn update(&mut self, done: u64, total: u64, note: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(format!("{} {note}", self.what));
            }
            _ => eprintln!("{}: {note} {done}/{total}", self.what),
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn record(server: &ServerArgs, keyset: &KeysetArgs, file: &PathBuf) -> anyhow::Result<()> {
    let config = server.config()?;
    let sessions = read_sessions(file)?;
    let tenant = server.tenant(&config)?;
    let key_id = keyset.key_id.clone().or(config.key_id.clone()).context(
        "no key set: pass --key-id, set BLINDSIGHT_KEY_ID, or put \"key_id\" in the config file",
    )?;
    let pin = keyset.pin.clone().or(config.manifest_fingerprint.clone()).context(
        "no pinned fingerprint: pass --pin (the manifest fingerprint `keygen` printed) or set BLINDSIGHT_PIN",
    )?;
    let client = server.client(&config)?;
    let bundle = client
        .app_bundle(&key_id, &pin)
        .context("couldn't load the pinned key set")?;
    let bar = progress(sessions.len(), "encrypt, prove, upload");
    let plain = bar.is_hidden();
    let (mut created, mut already, mut skipped) = (0, 0, 0);
    for (i, session) in sessions.iter().enumerate() {
        let envelope = session
            .to_record(&bundle, &tenant)
            .with_context(|| format!("session {}", session.record_id))?;
        match client.upload_record(&envelope) {
            Ok(Uploaded::Created(_)) => created += 1,
            Ok(Uploaded::AlreadyStored) => already += 1,
            // The record id is the idempotency key: a re-run of a batch (fresh encryption,
            // so other bytes) resumes past what an earlier run stored.
            Err(blindsight_client::Error::Api(e)) if e.slug() == Some("record-exists") => {
                skipped += 1;
                bar.suspend(|| {
                    eprintln!(
                        "skipped {}: the record id is already used on the server",
                        session.record_id
                    )
                });
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "uploading {} ({created} stored before it)",
                    session.record_id
                )));
            }
        }
        bar.inc(1);
        if plain {
            eprintln!("[{}/{}] {}", i + 1, sessions.len(), session.record_id);
        }
    }
    bar.finish_and_clear();
    println!("{created} record(s) stored, {already} already stored, {skipped} skipped");
    Ok(())
}

fn open_transcript(
    server: &ServerArgs,
    record_id: &str,
    keystore_flag: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let tenant = server.tenant(&config)?;
    let path = keystore_path(keystore_flag, &config)?;
    let client = server.client(&config)?;
    let summary = client
        .records(&RecordQuery::default())?
        .into_iter()
        .find(|r| r.record_id == record_id)
        .with_context(|| format!("the server has no record {record_id:?} for this tenant"))?;
    let sealed = client.sealed_transcript(record_id)?;
    let secret = open_keystore(&path)?;
    let meta = summary.metadata(&tenant)?;
    let text = blindsight_crypto::open(secret.transcript_secret(), &meta.transcript_aad(), &sealed)
        .context(
            "the transcript did not open: wrong keystore, or it was not sealed for this record",
        )?;
    println!("{}", String::from_utf8_lossy(&text));
    Ok(())
}

/// `--since`/`--until`: seconds since the epoch, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    let bad =
        || format!("{s:?} is not seconds since the epoch, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (s, None),
    };
    let nums = |text: &str, sep: char, n: usize| -> Result<Vec<i64>, String> {
        let parts: Vec<i64> = text
            .split(sep)
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if parts.len() == n {
            Ok(parts)
        } else {
            Err(bad())
        }
    };
    let d = nums(date, '-', 3)?;
    let (y, m, day) = (d[0], d[1], d[2]);
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&day) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(t) = time {
        let t = nums(t, ':', 3)?;
        if !(0..24).contains(&t[0]) || !(0..60).contains(&t[1]) || !(0..60).contains(&t[2]) {
            return Err(bad());
        }
        secs += t[0] * 3600 + t[1] * 60 + t[2];
    }
    Ok(secs)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch (H. Hinnant's `civil_from_days`).
fn format_time(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl SelectArgs {
    fn key_id(&self, config: &ConfigFile) -> anyhow::Result<String> {
        self.key_id.clone().or(config.key_id.clone()).context(
            "no key set: pass --key-id, set BLINDSIGHT_KEY_ID, or put \"key_id\" in the config file",
        )
    }

    fn selection(&self) -> anyhow::Result<Selection> {
        if let (Some(since), Some(until)) = (self.since, self.until) {
            anyhow::ensure!(
                since < until,
                "--since ({}) must be before --until ({})",
                format_time(since),
                format_time(until)
            );
        }
        Ok(Selection {
            schema_id: self.schema.clone(),
            schema_version: self.schema_version,
            cohort: self.cohort.clone(),
            since: self.since,
            until: self.until,
            record_ids: (!self.records.is_empty()).then(|| self.records.clone()),
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(file: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("couldn't read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", file.display()))
}

fn register_model(server: &ServerArgs, file: &Path) -> anyhow::Result<()> {
    let config = server.config()?;
    let model: RiskModel = read_json(file, "risk model")?;
    // Checked here first when its schema is built in, so mistakes are named before any request.
    if let Some(schema) =
        blindsight_crypto::schemas::builtin(&model.schema_id, model.schema_version)
    {
        model
            .compile(&schema)
            .with_context(|| format!("{} is not a valid risk model", file.display()))?;
    }
    let reg = server.client(&config)?.register_model(&model)?;
    println!(
        "model {} v{} {}",
        reg.model_id,
        reg.version,
        if reg.created {
            "registered"
        } else {
            "was already registered"
        }
    );
    println!("digest {}", reg.digest);
    println!("function {}", reg.function_id);
    Ok(())
}

fn list_models(server: &ServerArgs) -> anyhow::Result<()> {
    let config = server.config()?;
    let models = server.client(&config)?.models()?;
    let id = models
        .iter()
        .map(|m| m.model_id.len())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<id$}  {:>7}  {:<10}  digest",
        "model", "version", "origin"
    );
    for m in models {
        println!(
            "{:<id$}  {:>7}  {:<10}  {}",
            m.model_id,
            m.version,
            if m.builtin { "built in" } else { "registered" },
            m.digest
        );
    }
    Ok(())
}

/// A bar on a terminal, plain lines otherwise; returns the job as it finished.
fn follow(client: &Client, job_id: &str, timeout: Duration) -> anyhow::Result<Job> {
    let mut progress = StderrProgress::default();
    progress.begin(&format!("job {job_id}"), 0);
    let job = client.wait_for_job(
        job_id,
        |job| {
            progress.update(
                job.progress_done.max(0) as u64,
                job.progress_total.max(0) as u64,
                job.status.name(),
            );
        },
        timeout,
    );
    progress.end();
    Ok(job?)
}

fn queue(
    server: &ServerArgs,
    config: &ConfigFile,
    request: &JobRequest,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let client = server.client(config)?;
    let created = client.create_job(request)?;
    // stdout carries only the job id, so scripts can capture it.
    println!("{}", created.job_id);
    eprintln!(
        "queued {} job {} over {} record(s)",
        created.kind, created.job_id, created.records
    );
    if !wait.wait {
        eprintln!(
            "follow it with `blindsight jobs {0}`; decrypt with `blindsight results {0}`",
            created.job_id
        );
        return Ok(());
    }
    let job = follow(&client, &created.job_id, Duration::from_secs(wait.timeout))?;
    match job.status {
        JobStatus::Succeeded => {
            eprintln!(
                "job {0} succeeded; decrypt with `blindsight results {0}`",
                job.job_id
            );
            Ok(())
        }
        _ => Err(anyhow::anyhow!(
            "job {} failed: {}",
            job.job_id,
            job.error.as_deref().unwrap_or("no reason recorded")
        )),
    }
}

fn score(
    server: &ServerArgs,
    select: &SelectArgs,
    model: &str,
    model_version: u32,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let request = JobRequest::risk_score(
        select.key_id(&config)?,
        ModelRef::new(model, model_version),
        select.selection()?,
    );
    queue(server, &config, &request, wait)
}

fn query(
    server: &ServerArgs,
    file: &Path,
    select: &SelectArgs,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let query: AggregateQuery = read_json(file, "query")?;
    let selection = select.selection()?;
    if let Some(schema) =
        blindsight_crypto::schemas::builtin(&selection.schema_id, selection.schema_version)
    {
        query
            .compile(&schema, 1)
            .with_context(|| format!("{} is not a valid query", file.display()))?;
    }
    let request = JobRequest::aggregate(select.key_id(&config)?, query, selection);
    queue(server, &config, &request, wait)
}

fn show_jobs(server: &ServerArgs, job_id: Option<&str>) -> anyhow::Result<()> {
    let config = server.config()?;
    let client = server.client(&config)?;
    let Some(job_id) = job_id else {
        let jobs = client.jobs()?;
        if jobs.is_empty() {
            println!("no jobs");
            return Ok(());
        }
        let id = jobs.iter().map(|j| j.job_id.len()).max().unwrap_or(0);
        let kind = jobs.iter().map(|j| j.kind.len()).max().unwrap_or(0).max(4);
        println!(
            "{:<id$}  {:<kind$}  {:<9}  {:>11}  created (UTC)",
            "job", "kind", "status", "progress"
        );
        for j in jobs {
            println!(
                "{:<id$}  {:<kind$}  {:<9}  {:>11}  {}",
                j.job_id,
                j.kind,
                j.status.name(),
                format!("{}/{}", j.progress_done, j.progress_total),
                format_time(j.created_at)
            );
        }
        return Ok(());
    };
    let j = client.job(job_id)?;
    println!("job       {}", j.job_id);
    println!("kind      {}", j.kind);
    println!("key set   {}", j.key_id);
    println!(
        "status    {} (attempt {} of {})",
        j.status, j.attempts, j.max_attempts
    );
    println!("progress  {}/{}", j.progress_done, j.progress_total);
    println!("created   {} UTC", format_time(j.created_at));
    if let Some(t) = j.started_at {
        println!("started   {} UTC", format_time(t));
    }
    if let Some(t) = j.finished_at {
        println!("finished  {} UTC", format_time(t));
    }
    if let Some(e) = &j.error {
        println!("error     {e}");
    }
    // The spec holds the request and the selected record ids, never data.
    if let Ok(spec) = serde_json::from_str::<serde_json::Value>(&j.spec) {
        if let Some(request) = spec.get("request") {
            println!("request   {request}");
        }
        if let Some(records) = spec.get("records").and_then(|r| r.as_array()) {
            println!("records   {}", records.len());
        }
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    keystore::write_private_atomic(path, text.as_bytes(), true)
        .with_context(|| format!("couldn't write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn show_results(
    server: &ServerArgs,
    job_id: &str,
    keystore_flag: Option<&PathBuf>,
    csv: Option<&Path>,
    json: Option<&Path>,
    timeout: u64,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let path = keystore_path(keystore_flag, &config)?;
    let client = server.client(&config)?;
    let mut job = client.job(job_id)?;
    // The keystore is opened before any wait, so a wrong passphrase or key set fails fast.
    let secret = open_keystore(&path)?;
    anyhow::ensure!(
        secret.key_id() == job.key_id,
        "job {} ran under key set {}, but {} holds key set {}; pass that key set's keystore",
        job.job_id,
        job.key_id,
        path.display(),
        secret.key_id()
    );
    if !job.status.is_finished() {
        job = follow(&client, job_id, Duration::from_secs(timeout))?;
    }
    let results = results::fetch(&client, &job.job_id, &secret)?;
    print!("{}", results.table());
    if let Some(path) = csv {
        write_private(path, &results.to_csv())?;
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&results.to_json())?;
        write_private(path, &(text + "\n"))?;
    }
    Ok(())
}

/// An error that carries its own hint (printed as `error: …; hint: …`).
#[derive(Debug)]
struct Hinted {
    message: String,
    hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

/// The server's refusal (or the client's wait) a cause of an error is, if it is one.
fn api_error<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a ApiError> {
    cause.downcast_ref::<ApiError>().or_else(|| {
        match cause.downcast_ref::<blindsight_client::Error>() {
            Some(blindsight_client::Error::Api(e)) => Some(e),
            _ => None,
        }
    })
}

/// A hint for errors the user can act on, by the server's problem slug.
fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return Some(h.hint.clone());
        }
        let Some(api) = api_error(cause) else {
            continue;
        };
        if let ApiError::WaitTimedOut { job_id, .. } = api {
            return Some(format!(
                "wait again with `blindsight results {job_id}` or a longer --timeout"
            ));
        }
        let hint = match api.slug()? {
            "cohort-too-small" => {
                "widen the selection (--cohort, --since, --until) to at least the tenant's minimum cohort, set when the tenant is created"
            }
            "no-records" => {
                "check --key-id, --cohort and --since/--until (times are when a record was recorded, else received)"
            }
            "unknown-record" => {
                "each --record must be stored under --key-id and match the rest of the selection"
            }
            "unknown-model" => {
                "register it with `blindsight model <file.json>`, or use the built-in --model crisis --model-version 1"
            }
            "model-exists" => "models are immutable: register a change under a new version",
            "unknown-key-set" | "unknown-keyset" => {
                "register the key set with `blindsight register <key-id>.public`"
            }
            "unknown-schema" => "the built-in schema is --schema session --schema-version 1",
            "unknown-job" => "list this tenant's jobs with `blindsight jobs`",
            "job-not-finished" => "wait for it with `blindsight results <job-id>`",
            "forbidden" => "this command needs the key holder's token in BLINDSIGHT_TOKEN",
            "unauthorized" => "check BLINDSIGHT_TOKEN: it must be a token issued for this tenant",
            _ => return None,
        };
        return Some(hint.to_owned());
    }
    None
}

/// The server's problem slug in an error's chain, if the server refused.
fn refusal_slug(err: &anyhow::Error) -> Option<String> {
    err.chain()
        .find_map(|cause| api_error(cause)?.slug().map(str::to_owned))
}

/// Plain progress lines (when stderr is not a terminal) at most every tenth of a step.
struct Throttled {
    inner: StderrProgress,
    terminal: bool,
    what: String,
    decile: Option<u64>,
}

impl Throttled {
    fn new() -> Self {
        Self {
            inner: StderrProgress::default(),
            terminal: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            what: String::new(),
            decile: None,
        }
    }
}

impl demo::Progress for Throttled {
    fn begin(&mut self, what: &str, total: u64) {
        self.what = what.to_owned();
        self.decile = None;
        if self.terminal {
            self.inner.begin(what, total);
        } else {
            eprintln!("{what}…");
        }
    }

    fn update(&mut self, done: u64, total: u64, note: &str) {
        if self.terminal {
            self.inner.update(done, total, note);
            return;
        }
        let decile = (done * 10).checked_div(total).unwrap_or(0);
        if total > 0 && self.decile != Some(decile) {
            self.decile = Some(decile);
            eprintln!("{}: {done}/{total}", self.what);
        }
    }

    fn end(&mut self) {
        self.inner.end();
    }
}

/// The verification checks' progress: a bar per check on a terminal, plain lines otherwise.
#[derive(Default)]
struct CheckProgress {
    state: std::sync::Mutex<CheckState>,
}

#[derive(Default)]
struct CheckState {
    check: String,
    bar: Option<indicatif::ProgressBar>,
    decile: Option<u64>,
}

impl CheckProgress {
    fn update(&self, p: verify::Progress<'_>) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.check != p.check {
            if let Some(bar) = s.bar.take() {
                bar.finish_and_clear();
            }
            s.check = p.check.to_owned();
            s.decile = None;
            let bar = progress(
                usize::try_from(p.total).unwrap_or(usize::MAX),
                &format!("check {}", p.check),
            );
            s.bar = (!bar.is_hidden()).then_some(bar);
        }
        match &s.bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done);
            }
            None => {
                let decile = (p.done * 10).checked_div(p.total).unwrap_or(10);
                if s.decile != Some(decile) {
                    s.decile = Some(decile);
                    eprintln!("check {}: {}/{}", p.check, p.done, p.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Ok(mut s) = self.state.lock()
            && let Some(bar) = s.bar.take()
        {
            bar.finish_and_clear();
        }
    }
}

/// `blindsight audit verify`: the evidence from the API or the database, the checks, the
/// report. `matches` tells flags given on the command line from the environment's.
fn audit_verify(args: &VerifyArgs, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let on_command_line =
        |id: &str| matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
    let mut keys = args
        .audit_keys
        .iter()
        .map(|k| audit::parse_audit_key(k))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut fetching = Throttled::new();
    let mut evidence = match &args.db {
        Some(db) => {
            if let Some(flag) = ["url", "token", "config"]
                .into_iter()
                .find(|id| on_command_line(id))
            {
                return Err(hinted(
                    format!("--db and --{flag} name two sources to audit"),
                    "audit either a server's API (--url with an auditor token) or its database (--db), not both",
                ));
            }
            let source = DbSource::parse(db)?;
            if keys.is_empty() {
                return Err(hinted(
                    format!(
                        "no audit key to check the signatures in {} against",
                        source.describe()
                    ),
                    "pass the published key: --audit-key <hex or file from GET /v1/audit/key>",
                ));
            }
            audit::load_evidence(&source, &mut fetching)?
        }
        None => {
            let config = args.server.config()?;
            if args.server.url.is_none() && config.url.is_none() {
                return Err(hinted(
                    "nothing to audit: no server URL and no database",
                    "pass --url (or BLINDSIGHT_URL) with an auditor token in BLINDSIGHT_TOKEN, or --db <data directory, SQLite file or postgres:// URL>",
                ));
            }
            let client = args.server.client(&config)?;
            if keys.is_empty() {
                let key = client
                    .audit_key()
                    .context("couldn't read the server's audit key (GET /v1/audit/key)")?;
                eprintln!(
                    "warning: trusting audit key {} as served by the server being audited; pin the published key with --audit-key",
                    key.key_id
                );
                keys.push(hex::decode(&key.public_key)?);
            }
            let options = FetchOptions {
                reexecute: args.reexecute,
            };
            audit::fetch_evidence(&client, &options, &mut fetching).map_err(|e| {
                if refusal_slug(&e).as_deref() == Some("forbidden") {
                    hinted(
                        format!("{e:#}"),
                        "audit verify needs the tenant's auditor (or keyholder) token in BLINDSIGHT_TOKEN",
                    )
                } else {
                    e
                }
            })?
        }
    };
    evidence.trusted_keys = keys;
    let bars = CheckProgress::default();
    let options = verify::Options {
        reexecute: args.reexecute,
    };
    let report = verify::verify(&evidence, &options, &|p| bars.update(p));
    bars.finish();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let text = report.render();
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    if report.passed {
        return Ok(());
    }
    let first = report
        .first_failure
        .as_deref()
        .unwrap_or("a check failed")
        .replace(['\n', '\r'], " ");
    let failed = report.checks.iter().find(|c| !c.passed).map(|c| c.name);
    Err(hinted(
        format!("audit verification failed: {first}"),
        match failed {
            Some("chain" | "receipts") => {
                "every failure is listed in the report on stdout; heads and receipts must be signed by a key given with --audit-key (the one the operator published, and any it was rotated from)"
            }
            _ => {
                "every failure is listed in the report on stdout (--json for a machine-readable one)"
            }
        },
    ))
}

fn run(cli: Cli, matches: &ArgMatches) -> anyhow::Result<()> {
    match cli.command {
        Command::Audit(AuditCommand::Verify(args)) => {
            let verify = matches
                .subcommand_matches("audit")
                .and_then(|m| m.subcommand_matches("verify"));
            audit_verify(&args, verify)
        }
        Command::Demo {
            records,
            seed,
            data_dir,
        } => {
            let options = demo::Options {
                records: usize::from(records),
                seed,
                data_dir,
            };
            let report = demo::run(
                &options,
                &mut std::io::stdout(),
                &mut StderrProgress::default(),
            )?;
            println!("{}", report.summary());
            anyhow::ensure!(
                report.mismatches == 0,
                "{} decrypted value(s) differ from the plaintext computation (listed above)",
                report.mismatches
            );
            Ok(())
        }
        Command::Keygen { out_dir, key_id } => keygen(out_dir, key_id),
        Command::Register { server, bundle } => register(&server, &bundle),
        Command::Record {
            server,
            keyset,
            file,
        } => record(&server, &keyset, &file),
        Command::Transcript(TranscriptCommand::Open {
            server,
            record_id,
            keystore,
        }) => open_transcript(&server, &record_id, keystore.as_ref()),
        Command::Model { server, file } => register_model(&server, &file),
        Command::Models { server } => list_models(&server),
        Command::Score {
            server,
            select,
            model,
            model_version,
            wait,
        } => score(&server, &select, &model, model_version, &wait),
        Command::Query {
            server,
            file,
            select,
            wait,
        } => query(&server, &file, &select, &wait),
        Command::Jobs { server, job_id } => show_jobs(&server, job_id.as_deref()),
        Command::Results {
            server,
            job_id,
            keystore,
            csv,
            json,
            timeout,
        } => show_results(
            &server,
            &job_id,
            keystore.as_ref(),
            csv.as_deref(),
            json.as_deref(),
            timeout,
        ),
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match hint(&e) {
                Some(h) => eprintln!("error: {e:#}; hint: {h}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format_in_utc() {
        assert_eq!(parse_time("1795300000"), Ok(1_795_300_000));
        assert_eq!(parse_time("2026-02-28T10:00:00Z"), Ok(1_772_272_800));
        assert_eq!(parse_time("2000-02-29"), Ok(951_782_400));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-01-01T10:00:00",
            "yesterday",
            "2026-1",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(format_time(1_795_300_000), "2026-11-21 22:26:40");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_time(-1), "1969-12-31 23:59:59");
    }
}
