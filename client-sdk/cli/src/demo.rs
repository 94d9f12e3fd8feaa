//! `blindsight demo`, the README's main job: every role of Blindsight in one process, through
//! the same calls a real deployment makes, and every decrypted number checked against the
//! plaintext computation.
//!
//! 1. An embedded `blindsight-server` starts on a loopback port (SQLite in a temporary
//!    directory, or [`Options::data_dir`]), with one job worker.
//! 2. The key holder generates a key set, writes and re-opens a passphrase-encrypted
//!    keystore; the admin creates a tenant; the key holder registers the public bundle.
//! 3. The app loads the app bundle pinned by its manifest fingerprint and records a
//!    synthetic cohort ([`synthetic_cohort`]): lexicon features extracted on the device,
//!    encrypted, proven, transcripts sealed, uploaded over HTTP.
//! 4. The key holder queues a `risk_score` job with the built-in `crisis` v1 and one
//!    `aggregate` job of seven aggregates over the cohort; the server computes on ciphertext.
//! 5. The key holder decrypts both ([`crate::results`]), opens one high-tier record's sealed
//!    transcript for follow-up, and compares every decrypted value with the same computation
//!    in clear ([`CompiledModel::evaluate_clear`](blindsight_crypto::compute::CompiledModel::evaluate_clear),
//!    [`AggregateQuery::evaluate_clear`]).
//! 6. A training platform records a synthetic therapist-training group
//!    ([`synthetic_training_group`]: 3 trainees × 4 practice sessions under `training` v1,
//!    technique and bias counts extracted on the device from the trainee's own messages); the
//!    supervising clinic (the key holder) runs the supervisor report on ciphertext (`bias` v1
//!    over every session, one aggregate job per view: the group, and per trainee all, first
//!    and last sessions), decrypts it and checks every value against the same computation in
//!    clear.
//! 7. The tenant's auditor, holding nothing secret, runs `audit verify`'s checks over the API
//!    (chain and signed head, every proof, every receipt, storage, manifests, cohorts); a
//!    failed check counts as a mismatch.
//!
//! [`run`] writes a readable report and returns the counts; the CLI prints
//! [`Report::summary`] and fails on any mismatch.

mod audit;
mod check;
mod cohort;
mod server;
mod supervisor;
mod training;
mod upload;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blindsight_crypto::compute::{Aggregate, AggregateQuery, CRISIS_MODEL_ID};
use blindsight_crypto::schemas::session_v1;
use blindsight_crypto::{KeySet, KeygenStep, Value};

pub use self::cohort::{COHORTS, synthetic_cohort};
use blindsight_client::api::{
    ApiError, Client, Job, JobRequest, JobStatus, ModelRef, NewTenant, Problem, Selection,
};
pub use blindsight_client::progress::{Progress, Quiet};
use blindsight_client::results::{self};
use blindsight_client::session::Session;
use blindsight_client::{Error, keystore};

pub use self::server::EmbeddedServer;
pub use self::training::{SESSIONS_PER_TRAINEE, TRAINEES, synthetic_training_group};

/// The demo's results: errors carry what they were doing.
type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// The largest cohort the demo records (each record costs seconds of FHE work).
pub const MAX_RECORDS: usize = 1000;

/// The demo keystore's passphrase. The keys are throwaway; never use a literal passphrase for
/// real keys.
pub const DEMO_PASSPHRASE: &str = "blindsight demo passphrase (throwaway keys)";

/// How long the demo waits for one job.
const JOB_TIMEOUT: Duration = Duration::from_secs(3600);

/// What the demo runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Synthetic sessions to record (1 to [`MAX_RECORDS`]; default 24).
    pub records: usize,
    /// The seed the cohort is drawn from (default 7).
    pub seed: u64,
    /// Where to keep the server's database and the keystore; `None` (the default): a fresh
    /// temporary directory, removed when the demo ends.
    pub data_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            records: 24,
            seed: 7,
            data_dir: None,
        }
    }
}

/// What the demo did and found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Sessions recorded (encrypted, proven and uploaded).
    pub records: usize,
    /// Records whose score and tier were decrypted.
    pub scored: usize,
    /// Aggregates decrypted (0 when the cohort is below the tenant's minimum).
    pub aggregates: usize,
    /// Practice sessions of the training group recorded (encrypted, proven and uploaded).
    pub training_sessions: usize,
    /// Practice sessions whose `bias` v1 score and tier were decrypted.
    pub training_scored: usize,
    /// Supervisor views decrypted (the group's, and three per trainee).
    pub training_views: usize,
    /// Decrypted values that differ from the plaintext computation (0 when all is well),
    /// including a missing or unexpected result, or a transcript that did not open to the text
    /// the app sealed.
    pub mismatches: usize,
    /// Each mismatch, in words.
    pub mismatch_details: Vec<String>,
    /// Decrypted records per tier, indexed by the tier's value (none, low, moderate, high).
    pub tiers: [usize; 4],
    /// The directory that was kept (`Options::data_dir`), if any.
    pub data_dir: Option<PathBuf>,
}

impl Report {
    /// The one-line summary the CLI ends with:
    /// `demo: records=24 scored=24 aggregates=7 training=12 bias_scored=12 training_views=10
    /// mismatches=0` (one line).
    pub fn summary(&self) -> String {
        format!(
            "demo: records={} scored={} aggregates={} training={} bias_scored={} training_views={} mismatches={}",
            self.records,
            self.scored,
            self.aggregates,
            self.training_sessions,
            self.training_scored,
            self.training_views,
            self.mismatches
        )
    }
}

/// The seven aggregates the demo computes over the whole cohort.
pub fn demo_query() -> AggregateQuery {
    let field = |f: &str| f.to_owned();
    AggregateQuery {
        aggregates: vec![
            Aggregate::Count,
            Aggregate::Mean {
                field: field("mood_change"),
            },
            Aggregate::Mean {
                field: field("phq9_total"),
            },
            Aggregate::Histogram {
                field: field("phq9_total"),
                edges: vec![5, 10, 15, 20],
            },
            Aggregate::CountAtLeast {
                field: field("gad7_total"),
                threshold: 10,
            },
            Aggregate::Max {
                field: field("phq9_9"),
            },
            Aggregate::SumWhere {
                field: field("mood_after"),
                where_field: field("phq9_total"),
                at_least: 10,
            },
        ],
        privacy: None,
    }
}

/// Writes a line of the report; a closed output does not stop the demo.
macro_rules! say {
    ($out:expr) => { let _ = writeln!($out); };
    ($out:expr, $($arg:tt)*) => { let _ = writeln!($out, $($arg)*); };
}
pub(crate) use say;

fn secs(since: Instant) -> String {
    format!("{:.1} s", since.elapsed().as_secs_f64())
}

/// Runs the demo, writing the report to `out` and the progress of long steps to `progress`.
/// Returns the counts; mismatches are reported, not errors (the CLI turns them into one).
pub fn run(options: &Options, out: &mut dyn Write, progress: &mut dyn Progress) -> Result<Report> {
    if !(1..=MAX_RECORDS).contains(&options.records) {
        anyhow::bail!(
            "the cohort must have 1 to {MAX_RECORDS} records, not {}",
            options.records
        );
    }
    // Declared before the server, so the server stops before the directory is removed.
    let temp;
    let dir: &Path = match &options.data_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
            dir
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("blindsight-demo-")
                .tempdir()
                .map_err(|source| Error::Io {
                    action: "create a temporary directory in",
                    path: std::env::temp_dir(),
                    source,
                })?;
            temp.path()
        }
    };
    Demo {
        out,
        progress,
        options,
        dir,
        started: Instant::now(),
        mismatches: Vec::new(),
    }
    .run()
}

struct Demo<'a> {
    out: &'a mut dyn Write,
    progress: &'a mut dyn Progress,
    options: &'a Options,
    dir: &'a Path,
    started: Instant,
    mismatches: Vec<String>,
}

/// The clear record values of a session, in schema order.
fn clear_values(session: &Session) -> Result<Vec<Value>> {
    Ok(session_v1().order_values(&session.values()?)?)
}

impl Demo<'_> {
    fn mismatch(&mut self, what: String) {
        say!(self.out, "      MISMATCH: {what}");
        self.mismatches.push(what);
    }

    fn run(mut self) -> Result<Report> {
        let n = self.options.records;
        say!(
            self.out,
            "Blindsight demo: {n} synthetic session(s) (seed {}), every role on this machine",
            self.options.seed
        );

        // 1. The server.
        let admin_token = hex::encode(blindsight_crypto::random_bytes::<32>()?);
        let server_dir = self.dir.join("server");
        let server = EmbeddedServer::start(&server_dir, &admin_token)?;
        say!(
            self.out,
            "[1/9] server: embedded blindsight-server on {} (SQLite in {}, 1 job worker)",
            server.url(),
            server_dir.display()
        );

        // 2. The key holder's keys, keystore, tenant and registration.
        let t = Instant::now();
        self.progress.begin("keygen", KeygenStep::ALL.len() as u64);
        let keys = KeySet::generate_with_progress(|step| {
            let done = KeygenStep::ALL.iter().position(|s| *s == step).unwrap_or(0);
            self.progress
                .update(done as u64, KeygenStep::ALL.len() as u64, step.describe());
        });
        self.progress.end();
        let (secret, public) = keys?.into_parts();
        let key_id = secret.key_id().to_owned();
        let pin = public.manifest().fingerprint()?;
        say!(
            self.out,
            "[2/9] key holder: key set {key_id} generated in {} (128-bit TFHE, ZK CRS, X25519)",
            secs(t)
        );
        say!(self.out, "      manifest fingerprint {pin}");
        let keystore_path = self.dir.join(format!("{key_id}.keystore"));
        keystore::save(
            &keystore_path,
            &secret,
            DEMO_PASSPHRASE,
            blindsight_crypto::DEFAULT_ITERATIONS,
        )?;
        drop(secret);
        let secret = keystore::load(&keystore_path, DEMO_PASSPHRASE)?;
        say!(
            self.out,
            "      keystore written (PBKDF2-SHA256, ChaCha20-Poly1305, mode 0600) and re-opened: {}",
            keystore_path.display()
        );
        let min_cohort = if n < 10 { 2 } else { 10 };
        let tenant = Client::new(server.url(), &admin_token).create_tenant_with(&NewTenant {
            name: "Demo clinic".into(),
            tenant_id: None,
            min_cohort_size: Some(min_cohort),
            privacy_budget: None,
        })?;
        let keyholder = Client::new(server.url(), tenant.tokens.keyholder.expose());
        let app = Client::new(server.url(), tenant.tokens.ingest.expose());
        keyholder.register_keyset(&key_id, &public.encode()?)?;
        drop(public);
        say!(
            self.out,
            "      tenant {} created (minimum cohort {min_cohort}); public bundle registered",
            tenant.tenant_id
        );

        // 3. The app records the cohort.
        let bundle = app.app_bundle(&key_id, &pin)?;
        say!(
            self.out,
            "[3/9] app: app bundle loaded, pinned by its manifest fingerprint"
        );
        let sessions = synthetic_cohort(n, self.options.seed);
        let t = Instant::now();
        let bytes = self.upload_each(
            &app,
            &bundle,
            &tenant.tenant_id,
            "encrypt + prove + upload",
            &sessions,
            |s| s,
        )?;
        let per_cohort: Vec<String> = COHORTS
            .iter()
            .map(|c| {
                let k = sessions
                    .iter()
                    .filter(|s| s.cohort.as_deref() == Some(*c))
                    .count();
                format!("{c} {k}")
            })
            .collect();
        say!(
            self.out,
            "[4/9] app: {n} session(s) ({}) encrypted, proven and uploaded in {} ({} KiB each on average; transcripts sealed, lexicon features extracted on the device)",
            per_cohort.join(", "),
            secs(t),
            bytes / n / 1024
        );

        // 4. Jobs on ciphertext.
        let risk = keyholder.create_job(&JobRequest::risk_score(
            &key_id,
            ModelRef::crisis_v1(),
            Selection::default(),
        ))?;
        let query = demo_query();
        let mut refused = None;
        let aggregate = match keyholder.create_job(&JobRequest::aggregate(
            &key_id,
            query.clone(),
            Selection::default(),
        )) {
            Ok(created) => Some(created),
            Err(ApiError::Refused {
                problem: Some(Problem::CohortTooSmall),
                detail,
                ..
            }) => {
                refused = Some(format!(
                    "      aggregate job refused: the cohort has {n} record(s), below the tenant's minimum cohort of {min_cohort}, so no aggregates are computed (server: {detail}); run with --records {min_cohort} or more"
                ));
                None
            }
            Err(e) => return Err(e.into()),
        };
        let risk_job = self.wait(&keyholder, &risk.job_id, "risk_score (crisis v1)")?;
        say!(
            self.out,
            "[5/9] server: risk_score job {} ({CRISIS_MODEL_ID} v1) over {} record(s) done{}",
            risk.job_id,
            risk.records,
            took(&risk_job)
        );
        if risk.records != n as u64 {
            self.mismatch(format!(
                "the risk job selected {} records, the app uploaded {n}",
                risk.records
            ));
        }
        if let Some(refused) = refused {
            say!(self.out, "{refused}");
        }
        let aggregate_job = match &aggregate {
            Some(created) => {
                let job = self.wait(&keyholder, &created.job_id, "aggregate")?;
                say!(
                    self.out,
                    "      aggregate job {} ({} aggregates) over {} record(s) done{}",
                    created.job_id,
                    query.aggregates.len(),
                    created.records,
                    took(&job)
                );
                Some(job)
            }
            None => None,
        };

        // 5. Decrypt and check.
        let t = Instant::now();
        let scores = results::fetch(&keyholder, &risk_job.job_id, &secret)?;
        let aggregates = match &aggregate_job {
            Some(job) => Some(results::fetch(&keyholder, &job.job_id, &secret)?),
            None => None,
        };
        say!(
            self.out,
            "[6/9] key holder: results decrypted in {} and checked against the plaintext computation",
            secs(t)
        );
        let clear: Vec<Vec<Value>> = sessions.iter().map(clear_values).collect::<Result<_>>()?;
        let (scored, tiers, rows) = self.check_scores(&scores, &sessions, &clear)?;
        let aggregates = match &aggregates {
            Some(a) => self.check_aggregates(a, &query, &clear)?,
            None => 0,
        };

        // 6. The transcript of a high-tier record, as the key holder opens it for follow-up.
        self.open_transcript(&keyholder, &tenant.tenant_id, &secret, &rows, &sessions)?;

        // 7. The training group, and the supervisor's report on ciphertext.
        let training = self.training(
            &app,
            &keyholder,
            &bundle,
            &tenant.tenant_id,
            &key_id,
            &secret,
        )?;

        // 8. The auditor checks every claim, with public material only.
        let auditor = Client::new(server.url(), tenant.tokens.auditor.expose());
        self.audit(&auditor)?;

        let mismatches = self.mismatches.len();
        say!(
            self.out,
            "checked {scored} score(s) and tier(s), {aggregates} aggregate(s), one transcript, {} bias score(s) and {} supervisor view(s): {}",
            training.scored,
            training.views,
            if mismatches == 0 {
                "every decrypted value equals the plaintext computation".to_owned()
            } else {
                format!("{mismatches} mismatch(es)")
            }
        );
        if let Some(dir) = &self.options.data_dir {
            say!(
                self.out,
                "kept {} (the server's database, and the keystore: passphrase {DEMO_PASSPHRASE:?})",
                dir.display()
            );
            if let Ok(key) = auditor.audit_key() {
                say!(
                    self.out,
                    "      audit it offline: blindsight audit verify --db {} --audit-key {}",
                    server_dir.display(),
                    key.public_key
                );
            }
        }
        say!(self.out, "done in {}", secs(self.started));
        drop((keyholder, app));
        drop(server);
        Ok(Report {
            records: n,
            scored,
            aggregates,
            training_sessions: training.sessions,
            training_scored: training.scored,
            training_views: training.views,
            mismatches,
            mismatch_details: self.mismatches,
            tiers,
            data_dir: self.options.data_dir.clone(),
        })
    }

    /// Waits for a job with progress; a failed job is an error.
    fn wait(&mut self, client: &Client, job_id: &str, what: &str) -> Result<Job> {
        let job = client.wait_with_progress(
            job_id,
            &format!("{what} job"),
            &mut *self.progress,
            JOB_TIMEOUT,
        );
        let job = job?;
        if job.status != JobStatus::Succeeded {
            return Err(Error::JobFailed {
                job_id: job.job_id,
                reason: job.error.unwrap_or_else(|| "no reason recorded".into()),
            }
            .into());
        }
        Ok(job)
    }
}

/// ` in 12.3 s` from a finished job's times (whole seconds on the server's clock).
fn took(job: &Job) -> String {
    match (job.started_at, job.finished_at) {
        (Some(s), Some(f)) => format!(" in about {} s", (f - s).max(0)),
        _ => String::new(),
    }
}

/// The first sentence of a transcript (synthetic here), cut to about 80 characters.
fn first_sentence(text: &str) -> String {
    let end = text.find(['.', '!', '?']).map_or(text.len(), |i| i + 1);
    let sentence = &text[..end];
    if sentence.chars().count() > 80 {
        let cut: String = sentence.chars().take(79).collect();
        format!("{cut}…")
    } else if end < text.len() {
        format!("{sentence} …")
    } else {
        sentence.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_compiles_and_has_seven_aggregates() {
        let q = demo_query();
        assert_eq!(q.aggregates.len(), 7);
        q.compile(&session_v1(), 24).unwrap();
    }

    #[test]
    fn summaries_and_sentences_read_well() {
        let report = Report {
            records: 24,
            scored: 24,
            aggregates: 7,
            training_sessions: 12,
            training_scored: 12,
            training_views: 10,
            mismatches: 0,
            mismatch_details: Vec::new(),
            tiers: [6, 6, 6, 6],
            data_dir: None,
        };
        assert_eq!(
            report.summary(),
            "demo: records=24 scored=24 aggregates=7 training=12 bias_scored=12 training_views=10 mismatches=0"
        );
        assert_eq!(report.summary().lines().count(), 1);
        assert_eq!(first_sentence("One. Two."), "One. …");
        assert_eq!(first_sentence("No stop"), "No stop");
        assert!(first_sentence(&"x".repeat(200)).ends_with('…'));
    }

    #[test]
    fn out_of_range_cohorts_are_refused_before_anything_runs() {
        for records in [0, MAX_RECORDS + 1] {
            let options = Options {
                records,
                ..Options::default()
            };
            let err = run(&options, &mut Vec::new(), &mut Quiet).unwrap_err();
            assert!(err.to_string().contains("1 to 1000 records"), "{err}");
        }
    }
}
