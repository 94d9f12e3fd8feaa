//! Every shell command in `README.md`, `docs/*.md` and `fuzz/README.md` runs somewhere: most
//! of them here, as written, one after another in one real `bash` session against the
//! `blindsight` and `blindsight-server` binaries this `cargo test` built; the rest are named in
//! [`ELSEWHERE`] with the test or CI step that runs them. A command added to the docs without
//! either fails `every_documented_command_is_run_here_or_named_elsewhere`, and a documented
//! command that stops working fails its scenario.
//!
//! The only changes made to a documented command before it runs (a reader's own set-up):
//! - `cargo run --release [-p blindsight-server] --` is the `blindsight` (`blindsight-server`)
//!   binary of this build, first on the `PATH`, not a second build in release;
//! - port 8080 is a free port (`BLINDSIGHT_LISTEN` names it to servers started without
//!   `--listen`), `0.0.0.0` is `127.0.0.1`, `https://blindsight.example` is the local server;
//! - `/var/lib/blindsight` is the scenario's `blindsight-data`;
//! - PostgreSQL database names and `postgres://` URLs name scratch databases on the test
//!   cluster (`BLINDSIGHT_TEST_POSTGRES_URL`; `PGHOST`, `PGPORT` and `PGUSER` are set from
//!   it), dropped afterwards;
//! - placeholders (`<keyholder>`, `<key-id>`, `<job-id>`, `bst_…`, …) are the values earlier
//!   commands printed, as a reader copies them, and `BLINDSIGHT_PASSPHRASE` answers the
//!   passphrase prompt;
//! - a `serve` or `worker` runs in the background (the next command waits until it is ready)
//!   until its scenario stops it with SIGTERM, when it must exit 0.
//!
//! Steps marked `Setup` are what the docs leave to the reader (writing a session file, using
//! the token a role was given); each says what it does.
//!
//! The PostgreSQL scenarios run when `BLINDSIGHT_TEST_POSTGRES_URL` is set (as in CI), like
//! the server's own PostgreSQL tests. `bash`, `curl`, `openssl` and `sqlite3` must be
//! installed (`.ci/run` installs what is missing), and `createdb`, `dropdb`, `pg_dump` and
//! `pg_restore` for the PostgreSQL scenarios.
//!
//! Size: the walkthroughs are data, one list of steps each, kept beside the list of commands
//! run elsewhere so that the two can be read against each other.

//!
//! This file holds the scenarios; `commands.rs` finds the documented commands, `setup.rs` the
//! set-up steps, `shell.rs` the bash session and scratch PostgreSQL databases.

mod commands;
mod setup;
mod shell;

use commands::*;
use setup::*;
use shell::*;

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// What a command must do.
#[derive(Clone, Copy)]
pub(crate) enum Expect {
    /// Exit 0; when it prints a problem document (curl), that is a failure.
    Success,
    /// Exit 0 and print this.
    Prints(&'static str),
    /// Print a problem document of this type (curl: the refusal the doc describes).
    Problem(&'static str),
}

#[derive(Clone, Copy)]
pub(crate) enum Step {
    /// A documented command (file, selector).
    Doc(&'static str, &'static str, Expect),
    /// `export BLINDSIGHT_TOKEN=` the token of this role (the docs: "keyholder token", …).
    Role(&'static str),
    /// Something the docs leave to the reader.
    Setup(&'static str, fn(&mut Shell)),
    /// SIGTERM to every server started so far; each must exit 0.
    StopServers,
}

pub(crate) use Expect::*;
pub(crate) use Step::*;

pub(crate) const fn doc(file: &'static str, selector: &'static str) -> Step {
    Doc(file, selector, Success)
}

pub(crate) const README: &str = "README.md";
pub(crate) const API: &str = "docs/API.md";
pub(crate) const CLAIMS: &str = "docs/CLAIMS.md";
pub(crate) const OPS: &str = "docs/OPERATIONS.md";

/// The README's commands against a server of one's own on SQLite, the auditor's commands from
/// `CLAIMS.md`, and the SQLite backup, restore and check from `OPERATIONS.md`.
pub(crate) const SQLITE_CLI: &[Step] = &[
    doc(
        README,
        "export BLINDSIGHT_ADMIN_TOKEN=$(openssl rand -hex 32)",
    ),
    doc(README, "cargo run --release -p blindsight-server -- serve"),
    doc(README, "curl -s -X POST localhost:8080/v1/tenants…"),
    doc(
        README,
        "export BLINDSIGHT_URL=http://localhost:8080 BLINDSIGHT_TENANT=northside",
    ),
    doc(README, "cargo run --release -- keygen --out-dir keys/"),
    Role("keyholder"),
    doc(
        README,
        "cargo run --release -- register keys/<key-id>.public",
    ),
    Setup(
        "sessions.jsonl: two sessions of cohort `north` from docs/session-example.json",
        write_sessions,
    ),
    Role("ingest"),
    doc(README, "cargo run --release -- record sessions.jsonl…"),
    Setup(
        "training.jsonl: two practice sessions of one trainee from docs/training-example.json",
        write_training,
    ),
    doc(
        README,
        "cargo run --release -- record training.jsonl --training…",
    ),
    Role("keyholder"),
    Setup(
        "my-model.json: MODELS.md's model JSON under the id `my-model`; analytics.json: MODELS.md's query",
        write_model_and_query,
    ),
    doc(README, "cargo run --release -- model my-model.json"),
    Doc(
        README,
        "cargo run --release -- score --key-id <key-id> --cohort north --wait",
        Prints("job-"),
    ),
    Doc(
        README,
        "cargo run --release -- score --model bias…",
        Prints("job-"),
    ),
    Doc(
        README,
        "cargo run --release -- query analytics.json…",
        Prints("job-"),
    ),
    Doc(README, "cargo run --release -- jobs", Prints("succeeded")),
    doc(README, "cargo run --release -- results <job-id>…"),
    Setup("out.csv was written", check_csv),
    Doc(
        README,
        "cargo run --release -- supervise…",
        Prints("refl/question"),
    ),
    Doc(
        README,
        "cargo run --release -- transcript open <record-id>…",
        Prints("hopeless"),
    ),
    Role("auditor"),
    doc(
        CLAIMS,
        "curl -s https://blindsight.example/v1/audit/key > audit-key.json",
    ),
    Setup("<key or file>: audit-key.json", key_file_placeholder),
    Doc(
        README,
        "cargo run --release -- audit verify --audit-key <key or file> --reexecute 2",
        Prints("every check passed"),
    ),
    Doc(
        CLAIMS,
        "BLINDSIGHT_URL=https://blindsight.example BLINDSIGHT_TOKEN=bst_…",
        Prints("every check passed"),
    ),
    doc(
        OPS,
        "sqlite3 blindsight-data/blindsight.sqlite3 \".backup backup.sqlite3\"",
    ),
    doc(
        OPS,
        "install -m 600 blindsight-data/audit-signing-key.p8 audit-signing-key.backup.p8",
    ),
    Setup("<file>: the public bundle", file_placeholder),
    Doc(
        README,
        "cargo run --release -p blindsight-server -- admin check-bundle keys/<key-id>.public",
        Prints("fingerprints"),
    ),
    Doc(
        OPS,
        "blindsight-server admin check-bundle <file>",
        Prints("fingerprints"),
    ),
    StopServers,
    Doc(
        README,
        "cargo run --release -- audit verify --db ./blindsight-data…",
        Prints("every check passed"),
    ),
    Doc(
        CLAIMS,
        "blindsight audit verify --db /var/lib/blindsight --audit-key audit-key.json",
        Prints("every check passed"),
    ),
    doc(
        OPS,
        "mkdir -m 700 restored && sqlite3 restored/blindsight.sqlite3…",
    ),
    doc(
        OPS,
        "install -m 600 audit-signing-key.backup.p8 restored/audit-signing-key.p8",
    ),
    doc(
        OPS,
        "install -m 600 blindsight-data/audit-signing-key.p8.heads.json restored/",
    ),
    Doc(
        OPS,
        "blindsight audit verify --db restored --audit-key audit-key.json",
        Prints("every check passed"),
    ),
    // Resolve first: the check exits non-zero while a chain is halted.
    Doc(
        OPS,
        "blindsight-server audit resolve --data-dir restored…",
        Prints("every chain extends the head kept for it"),
    ),
    Doc(
        OPS,
        "blindsight-server audit check --data-dir restored",
        Prints("every chain extends the head kept for it"),
    ),
];

/// `API.md`'s curl walkthrough, on SQLite.
pub(crate) const API_CURL: &[Step] = &[
    doc(API, "export BLINDSIGHT_ADMIN_TOKEN=$(openssl rand -hex 32)"),
    doc(API, "cargo run --release -p blindsight-server -- serve &"),
    Doc(
        API,
        "curl -s -X POST localhost:8080/v1/tenants…",
        Prints("auditor"),
    ),
    doc(README, "cargo run --release -- keygen --out-dir keys/"),
    Doc(
        API,
        "curl -s -X PUT localhost:8080/v1/keysets/$KEY_ID…",
        Prints("manifest_fingerprint"),
    ),
    Doc(
        API,
        "curl -s -D - localhost:8080/v1/keysets/$KEY_ID/public…",
        Prints(" 200 "),
    ),
    Setup(
        "record.env: docs/session-example.json as record rec-1 of cohort north, encrypted and proven with app.bundle (pinned)",
        write_record_envelope,
    ),
    Doc(
        API,
        "curl -s -X POST localhost:8080/v1/records…",
        Prints("rec-1"),
    ),
    Doc(
        API,
        "curl -s \"localhost:8080/v1/records?cohort=north&limit=100\"…",
        Prints("rec-1"),
    ),
    doc(API, "curl -s localhost:8080/v1/records/rec-1/proof…"),
    Setup("rec-1.proof was written", check_proof),
    Doc(
        API,
        "curl -s -X POST localhost:8080/v1/jobs -H \"Authorization: Bearer $KEYHOLDER\" -d '{\"kind\": \"risk_score\"…",
        Prints("queued"),
    ),
    Doc(
        API,
        "curl -s -X POST localhost:8080/v1/jobs -H \"Authorization: Bearer $KEYHOLDER\" -d '{\"kind\": \"aggregate\"…",
        Problem("cohort-too-small"),
    ),
    Doc(
        API,
        "curl -sN localhost:8080/v1/jobs/$JOB_ID/events…",
        Prints("event: done"),
    ),
    doc(API, "curl -s localhost:8080/v1/jobs/$JOB_ID/result…"),
    Setup("result.env was written", check_result),
    Doc(
        API,
        "curl -s localhost:8080/v1/jobs/$JOB_ID/receipt…",
        Prints("signature"),
    ),
    Doc(
        API,
        "curl -s localhost:8080/v1/audit/key",
        Prints("public_key"),
    ),
    Doc(
        API,
        "curl -s localhost:8080/v1/audit/head -H \"Authorization: Bearer $AUDITOR\"",
        Prints("northside"),
    ),
    Doc(
        API,
        "curl -s \"localhost:8080/v1/audit?after=0&limit=1000\"…",
        Prints("tenant.created"),
    ),
    Doc(
        API,
        "curl -s localhost:8080/v1/audit/head -H \"Authorization: Bearer $BLINDSIGHT_ADMIN_TOKEN\"",
        Prints("signature"),
    ),
    Doc(
        API,
        "BLINDSIGHT_URL=http://localhost:8080 BLINDSIGHT_TOKEN=$AUDITOR blindsight audit verify --reexecute 1",
        Prints("every check passed"),
    ),
    StopServers,
];

/// The README's walkthrough to a server of one's own on PostgreSQL, a worker process beside
/// it, then `OPERATIONS.md`'s PostgreSQL backup and restore and `CLAIMS.md`'s offline audit.
pub(crate) const POSTGRES_README: &[Step] = &[
    doc(README, "createdb blindsight"),
    doc(
        README,
        "export BLINDSIGHT_DATABASE_URL=postgres://$USER@localhost/blindsight",
    ),
    doc(
        README,
        "export BLINDSIGHT_ADMIN_TOKEN=$(openssl rand -hex 32)",
    ),
    doc(
        README,
        "cargo run --release -p blindsight-server -- serve &",
    ),
    doc(README, "curl -s -X POST localhost:8080/v1/tenants…"),
    doc(
        README,
        "export BLINDSIGHT_URL=http://localhost:8080 BLINDSIGHT_TENANT=northside",
    ),
    doc(
        README,
        "cargo run --release -- keygen --out-dir keys/ --key-id north-1",
    ),
    doc(
        README,
        "BLINDSIGHT_TOKEN=<keyholder> cargo run --release -- register…",
    ),
    Setup(
        "docs/session-example.json in the working directory",
        copy_session_example,
    ),
    Doc(
        README,
        "BLINDSIGHT_TOKEN=<ingest> cargo run --release -- record…",
        Prints("1 record(s) stored"),
    ),
    Doc(
        README,
        "BLINDSIGHT_TOKEN=<keyholder> cargo run --release -- score…",
        Prints("job-"),
    ),
    Doc(
        README,
        "BLINDSIGHT_TOKEN=<keyholder> cargo run --release -- results…",
        Prints("2026-11-21-client-0042-s07"),
    ),
    Doc(
        README,
        "BLINDSIGHT_TOKEN=<auditor> cargo run --release -- audit verify --reexecute 1",
        Prints("every check passed"),
    ),
    doc(README, "cargo run --release -p blindsight-server -- worker"),
    doc(
        CLAIMS,
        "curl -s https://blindsight.example/v1/audit/key > audit-key.json",
    ),
    doc(OPS, "pg_dump -Fc blindsight > blindsight.dump"),
    StopServers,
    doc(OPS, "createdb blindsight_restored && pg_restore…"),
    Doc(
        OPS,
        "blindsight audit verify --db postgres://blindsight@db.internal/blindsight_restored…",
        Prints("every check passed"),
    ),
    Doc(
        CLAIMS,
        "blindsight audit verify --db postgres://auditor@db/blindsight…",
        Prints("\"passed\": true"),
    ),
];

/// `OPERATIONS.md`'s PostgreSQL deployment (`migrate`, `serve --listen`) and a server started
/// with an audit key made with OpenSSL.
pub(crate) const POSTGRES_OPERATIONS: &[Step] = &[
    doc(OPS, "createdb blindsight"),
    doc(
        OPS,
        "export BLINDSIGHT_DATABASE_URL=postgres://blindsight@db.internal/blindsight",
    ),
    doc(OPS, "blindsight-server migrate"),
    doc(OPS, "blindsight-server serve --listen 0.0.0.0:8080"),
    StopServers,
    doc(OPS, "openssl genpkey -algorithm ed25519…"),
    doc(OPS, "blindsight-server serve --audit-key-file audit.p8"),
    StopServers,
];

/// Documented commands this file does not run, and what runs them instead.
pub(crate) const ELSEWHERE: &[(&str, &str, &str)] = &[
    (
        "docs/OPERATIONS.md",
        "blindsight-server audit check",
        "server/tests/api/freshness.rs (a_restored_backup_is_caught_across_restarts: a halted chain named, then passing after resolve)",
    ),
    (
        "docs/OPERATIONS.md",
        "blindsight-server audit resolve --reason…",
        "server/tests/api/freshness.rs (a_restored_backup_is_caught_across_restarts: the incident recorded with its reason)",
    ),
    (
        "docs/BENCHMARKS.md",
        "BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release -p blindsight-benches --bin scale",
        "benches/tests/bins.rs runs `scale --quick` on the test PostgreSQL cluster (the default \
         run differs only in its record count and task size; about 5 minutes, by hand)",
    ),
    (
        "docs/BENCHMARKS.md",
        "BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release -p blindsight-benches --bin scale -- --records 128 …",
        "benches/tests/bins.rs runs `scale --quick`; this run (about 9 minutes) is by hand",
    ),
    (
        "docs/BENCHMARKS.md",
        "BLINDSIGHT_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo run --release -p blindsight-benches --bin scale -- --records 1000 …",
        "benches/tests/bins.rs runs `scale --quick`; this run (about 70 minutes) is by hand",
    ),
    (
        OPS,
        "blindsight-server worker --database-url \"$DATABASE_URL\" --audit-key-file …",
        "server/tests/api/tasks.rs starts three `blindsight-server worker --threads 1` processes \
         on one PostgreSQL database with a shared audit key file, kills one mid-task, and checks \
         the job completes once",
    ),
    (
        README,
        "cargo run --release -- demo",
        "client-sdk/tests/cli.rs runs `blindsight demo` (3 records; the library's demo in \
         client-sdk/tests/demo.rs); the default 24-record release run is timed in BENCHMARKS.md",
    ),
    (README, "cargo test --workspace", ".ci/run runs it"),
    (
        README,
        "cargo bench -p blindsight-benches",
        "both benches have `test = true`: `cargo test` runs every benchmark once (criterion's test mode)",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo bench -p blindsight-benches --bench crypto",
        "`cargo test` runs the bench once in criterion's test mode (benches/Cargo.toml)",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo bench -p blindsight-benches --bench compute",
        "`cargo test` runs the bench once in criterion's test mode, at a cohort of 10",
    ),
    (
        README,
        "cargo run --release -p blindsight-benches --bin compare -- --quick",
        "benches/tests/harness.rs",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin compare -- --quick",
        "benches/tests/harness.rs",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin compare",
        "the same binary and code as `--quick` (benches/tests/harness.rs) at cohorts of 10, 100 \
         and 1,000: about 15 minutes in release, run by hand for BENCHMARKS.md",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin ingest -- --quick",
        "benches/tests/bins.rs runs `ingest --quick`",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin ingest",
        "benches/tests/bins.rs runs `ingest --quick` (the default run differs only in record \
         and uploader counts)",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin rss",
        "benches/tests/bins.rs runs `rss --tenants 1`",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin lane",
        "benches/tests/bins.rs runs `lane --quick` (the default run differs only in cohort sizes)",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin lane -- --records 1000,10000,100000",
        "benches/tests/bins.rs runs `lane --quick` (this run differs only in cohort sizes)",
    ),
    (
        "docs/BENCHMARKS.md",
        "cargo run --release -p blindsight-benches --bin lane -- --records 1000000",
        "benches/tests/bins.rs runs `lane --quick` (this run differs only in cohort size; a \
         million records take about 20 GB of disk and 11 minutes to store)",
    ),
    (
        "fuzz/README.md",
        ".ci/fuzz 300",
        "run by CI: .ci/run calls `.ci/fuzz 60` after the tests (this run differs only in time)",
    ),
    (
        "fuzz/README.md",
        "fuzz/campaign 600 record lane_list",
        "not run here: the long campaign, ten minutes per target, run by hand and reported in \
         fuzz/README.md",
    ),
    (
        "fuzz/README.md",
        "export RUSTC_WRAPPER=$PWD/fuzz/rustc-wrapper",
        ".ci/fuzz sets the same wrapper for its build",
    ),
    (
        "fuzz/README.md",
        "scratch=$(mktemp -d)",
        "part of the cargo fuzz invocation below, which .ci/fuzz runs for every target",
    ),
    (
        "fuzz/README.md",
        "cargo fuzz run -s none envelope \"$scratch\"…",
        ".ci/fuzz runs every target this way (built once with the wrapper, from the corpus, new \
         inputs to a scratch directory)",
    ),
    (
        "fuzz/README.md",
        "cargo fuzz run -s none envelope fuzz/artifacts…",
        "replays a reproducer: .ci/fuzz prints this command for every crash it finds",
    ),
];

pub(crate) const SCENARIOS: &[(&str, &[Step])] = &[
    ("sqlite-cli", SQLITE_CLI),
    ("api-curl", API_CURL),
    ("postgres-readme", POSTGRES_README),
    ("postgres-operations", POSTGRES_OPERATIONS),
];

#[test]
pub(crate) fn every_documented_command_is_run_here_or_named_elsewhere() {
    let commands = doc_commands();
    assert!(
        commands.len() > 50,
        "only {} commands found",
        commands.len()
    );
    // What the scenarios run, by the command it is once `cargo run` forms are binaries: the
    // same command documented twice (`blindsight-server serve` in OPERATIONS.md, its `cargo
    // run` form in the README) runs once.
    let mut covered = Vec::new();
    for (_, steps) in SCENARIOS {
        for step in *steps {
            if let Doc(file, selector, _) = step {
                covered.push(normalize(&as_binaries(
                    &find(&commands, file, selector).text,
                )));
            }
        }
    }
    for (file, selector, what) in ELSEWHERE {
        find(&commands, file, selector);
        assert!(!what.is_empty());
    }
    let missing: Vec<String> = commands
        .iter()
        .filter(|c| {
            !covered.contains(&normalize(&as_binaries(&c.text)))
                && !ELSEWHERE
                    .iter()
                    .any(|(f, s, _)| *f == c.file && selects(s, &c.text))
        })
        .map(|c| format!("{}:{}: {}", c.file, c.line, c.text))
        .collect();
    assert!(
        missing.is_empty(),
        "documented commands that no test runs (add them to a scenario in client-sdk/tests/docs.rs, \
         or to ELSEWHERE with what runs them):\n{}",
        missing.join("\n")
    );
}

#[test]
pub(crate) fn readme_commands_against_a_sqlite_server() {
    run_scenario("sqlite-cli", SQLITE_CLI, false);
}

#[test]
pub(crate) fn api_curl_examples() {
    run_scenario("api-curl", API_CURL, false);
}

#[test]
pub(crate) fn readme_postgresql_walkthrough_backup_restore_and_offline_audit() {
    run_scenario("postgres-readme", POSTGRES_README, true);
}

#[test]
pub(crate) fn operations_postgresql_deployment_and_an_openssl_audit_key() {
    run_scenario("postgres-operations", POSTGRES_OPERATIONS, true);
}

pub(crate) fn run_scenario(name: &'static str, steps: &[Step], postgres: bool) {
    let pg = if postgres {
        match std::env::var("BLINDSIGHT_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Pg::new(&url, name)),
            _ => {
                eprintln!(
                    "{name}: skipped (set BLINDSIGHT_TEST_POSTGRES_URL to run the PostgreSQL scenarios)"
                );
                return;
            }
        }
    } else {
        None
    };
    let mut tools = vec!["bash", "curl", "openssl", "sqlite3", "install"];
    if pg.is_some() {
        tools.extend(["createdb", "dropdb", "pg_dump", "pg_restore"]);
    }
    for tool in tools {
        assert!(
            on_path(tool),
            "{tool} is not installed: the documented commands use it (apt-get install curl \
             openssl sqlite3 postgresql-client; .ci/run installs them)"
        );
    }
    let commands = doc_commands();
    let mut sh = Shell::start(name, pg);
    for step in steps {
        match *step {
            Doc(file, selector, expect) => {
                let command = find(&commands, file, selector);
                sh.run(&command, expect);
            }
            Role(role) => {
                let token = sh.var(&format!("<{role}>"));
                sh.export("BLINDSIGHT_TOKEN", &token);
            }
            Setup(what, f) => {
                sh.note(&format!("setup: {what}"));
                f(&mut sh);
            }
            StopServers => sh.stop_servers(),
        }
    }
    sh.stop_servers();
}

pub(crate) fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}
