//! The `blindsight` command-line tool.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use blindsight_client::api::{Client, RecordQuery, Uploaded};
use blindsight_client::session::Session;
use blindsight_client::{demo, keystore};
use blindsight_crypto::{DEFAULT_ITERATIONS, KeySet, RecordMetadata};
use clap::{Args, Parser, Subcommand};
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
    /// Run the end-to-end demo: keys, encrypted records with proofs, computation on ciphertext, decryption.
    Demo {
        /// Where to write the demo keystore (default: a fresh temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
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

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar
    } else {
        indicatif::ProgressBar::hidden()
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
    keystore_path: Option<&PathBuf>,
) -> anyhow::Result<()> {
    let config = server.config()?;
    let tenant = server.tenant(&config)?;
    let path = keystore_path.cloned().or(config.keystore.clone()).context(
        "no keystore: pass --keystore, set BLINDSIGHT_KEYSTORE, or put \"keystore\" in the config file",
    )?;
    let client = server.client(&config)?;
    let summary = client
        .records(&RecordQuery::default())?
        .into_iter()
        .find(|r| r.record_id == record_id)
        .with_context(|| format!("the server has no record {record_id:?} for this tenant"))?;
    let sealed = client.sealed_transcript(record_id)?;
    let pass = if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        Zeroizing::new(p)
    } else {
        Zeroizing::new(rpassword::prompt_password("keystore passphrase: ")?)
    };
    let secret = keystore::load(&path, &pass)?;
    let meta = RecordMetadata {
        tenant,
        key_id: summary.key_id,
        schema_id: summary.schema_id,
        schema_version: u32::try_from(summary.schema_version)?,
        record_id: summary.record_id,
        cohort: summary.cohort,
        lexicon_version: summary.lexicon_version,
        recorded_at: summary.recorded_at.map(u64::try_from).transpose()?,
    };
    let text = blindsight_crypto::open(secret.transcript_secret(), &meta.transcript_aad(), &sealed)
        .context(
            "the transcript did not open: wrong keystore, or it was not sealed for this record",
        )?;
    println!("{}", String::from_utf8_lossy(&text));
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { dir } => {
            match dir {
                Some(dir) => demo::run(&mut std::io::stdout(), &dir)?,
                None => {
                    // The demo's keystore holds throwaway keys: remove it with its directory.
                    let dir = tempdir()?;
                    let result = demo::run(&mut std::io::stdout(), &dir);
                    let _ = std::fs::remove_dir_all(&dir);
                    result?
                }
            };
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
    }
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("blindsight-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("couldn't create {}", dir.display()))?;
    Ok(dir)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
