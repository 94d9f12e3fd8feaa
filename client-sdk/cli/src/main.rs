//! The `blindsight` command-line tool: one file per command under `commands/`.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod errors;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use blindsight_crypto::compute::CRISIS_MODEL_ID;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::args::{KeysetArgs, SelectArgs, ServerArgs, WaitArgs};
use crate::commands::{
    Format, SuperviseArgs, audit_verify, keygen, list_models, open_transcript, query, record,
    register, register_model, score, show_jobs, show_results, supervise,
};
use crate::errors::hint;
#[cfg(feature = "server")]
use crate::progress::StderrProgress;

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
        /// docs/session-example.json (with --training, docs/training-example.json).
        file: PathBuf,
        /// The sessions are therapist-training practice sessions (`training` v1): features
        /// are extracted from the trainee's own messages on this machine.
        #[arg(long)]
        training: bool,
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
        /// The model id (built in: `crisis` over sessions, `bias` over training sessions).
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
    /// Supervisor report over training sessions (keyholder token): per trainee and for the
    /// whole group, mean technique counts, the reflection-to-question ratio, bias incidents by
    /// category, first vs last sessions, and each session's bias v1 score, computed on
    /// ciphertext and decrypted with the keystore.
    Supervise {
        #[command(flatten)]
        server: ServerArgs,
        /// The key set the training sessions are encrypted under.
        #[arg(long, env = "BLINDSIGHT_KEY_ID")]
        key_id: Option<String>,
        /// Only this trainee (a pseudonym; repeat for several). Default: every trainee.
        #[arg(long = "trainee", value_name = "PSEUDONYM")]
        trainees: Vec<String>,
        /// Sessions in the first and last windows progress compares.
        #[arg(long, default_value_t = supervisor_window(), value_parser = clap::value_parser!(u16).range(1..=1000))]
        window: u16,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the report to this file (mode 0600: it is decrypted data) instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The keystore of the key set (passphrase from BLINDSIGHT_PASSPHRASE or a prompt).
        #[arg(long, env = "BLINDSIGHT_KEYSTORE")]
        keystore: Option<PathBuf>,
        /// Seconds to wait for the jobs.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
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
    /// Heads saved by an earlier run (--save-heads): fail unless every chain still contains
    /// them unchanged (catches entries removed, an older backup restored, a rewritten chain).
    #[arg(long, value_name = "FILE")]
    since: Option<PathBuf>,
    /// After a passing run, save every chain's verified signed head here (replacing the
    /// file), for the next run's --since. Keep it where the server's operator cannot write.
    #[arg(long, value_name = "FILE")]
    save_heads: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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
        } => demo(usize::from(records), seed, data_dir),
        Command::Keygen { out_dir, key_id } => keygen(out_dir, key_id),
        Command::Register { server, bundle } => register(&server, &bundle),
        Command::Record {
            server,
            keyset,
            file,
            training,
        } => record(&server, &keyset, &file, training),
        Command::Supervise {
            server,
            key_id,
            trainees,
            window,
            format,
            output,
            keystore,
            timeout,
        } => supervise(
            &server,
            &SuperviseArgs {
                key_id: key_id.as_deref(),
                trainees: &trainees,
                window: usize::from(window),
                format,
                output: output.as_ref(),
                keystore: keystore.as_ref(),
                timeout,
            },
        ),
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

/// The default progress window of `supervise`.
fn supervisor_window() -> u16 {
    blindsight_client::supervisor::DEFAULT_WINDOW as u16
}

/// `demo`: the embedded server needs the `server` feature.
#[cfg(feature = "server")]
fn demo(records: usize, seed: u64, data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let options = blindsight_cli::demo::Options {
        records,
        seed,
        data_dir,
    };
    let report = blindsight_cli::demo::run(
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

#[cfg(not(feature = "server"))]
fn demo(_records: usize, _seed: u64, _data_dir: Option<PathBuf>) -> anyhow::Result<()> {
    Err(errors::hinted(
        "this blindsight was built without the `server` feature, which `demo` needs",
        "build it with default features (`cargo run --release -- demo`)",
    ))
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
