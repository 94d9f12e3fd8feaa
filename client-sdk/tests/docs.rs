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

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use blindsight_client::session::Session;
use blindsight_crypto::AppBundle;

// ---------------------------------------------------------------------------------------------
// The documented commands.

/// One command of a `sh` block: where it is, and its text (continuation lines joined,
/// comments removed; a quoted string may span lines).
#[derive(Clone, Debug)]
struct DocCommand {
    file: String,
    line: usize,
    text: String,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The files whose commands must run: the README, every page under `docs/`, the fuzz README.
fn doc_files() -> Vec<String> {
    let root = workspace();
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    let mut files = vec!["README.md".to_owned()];
    files.extend(docs);
    files.push("fuzz/README.md".into());
    files
}

fn doc_commands() -> Vec<DocCommand> {
    enum Fence {
        Outside,
        Shell(Vec<(usize, String)>),
        Other,
    }
    let mut out = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(workspace().join(&file)).unwrap();
        let mut fence = Fence::Outside;
        for (i, line) in text.lines().enumerate() {
            if let Some(lang) = line.strip_prefix("```") {
                fence = match fence {
                    Fence::Outside if matches!(lang.trim(), "sh" | "bash" | "shell") => {
                        Fence::Shell(Vec::new())
                    }
                    Fence::Outside => Fence::Other,
                    Fence::Shell(lines) => {
                        out.extend(split_commands(&file, &lines));
                        Fence::Outside
                    }
                    Fence::Other => Fence::Outside,
                };
                continue;
            }
            if let Fence::Shell(lines) = &mut fence {
                lines.push((i + 1, line.to_owned()));
            }
        }
        assert!(
            matches!(fence, Fence::Outside),
            "{file}: a fenced block is not closed"
        );
    }
    out
}

/// Splits a block into commands, following quotes across lines and `\` continuations, and
/// dropping comments (a `#` outside quotes at the start of a word).
fn split_commands(file: &str, lines: &[(usize, String)]) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let (mut single, mut double) = (false, false);
    for (no, line) in lines {
        if cur.is_empty() {
            start = *no;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut kept = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !single && !double && c == '#' && (i == 0 || chars[i - 1].is_whitespace()) {
                break;
            }
            if c == '\\' && !single && i + 1 < chars.len() {
                kept.push(c);
                kept.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '\'' && !double {
                single = !single;
            } else if c == '"' && !single {
                double = !double;
            }
            kept.push(c);
            i += 1;
        }
        if single || double {
            cur.push_str(&kept);
            cur.push('\n');
            continue;
        }
        let trimmed = kept.trim_end();
        if let Some(body) = trimmed.strip_suffix('\\') {
            cur.push_str(body);
            continue;
        }
        cur.push_str(trimmed);
        if !cur.trim().is_empty() {
            out.push(DocCommand {
                file: file.to_owned(),
                line: start,
                text: cur.trim().to_owned(),
            });
        }
        cur.clear();
    }
    assert!(
        cur.trim().is_empty(),
        "{file}:{start}: a command is not finished"
    );
    out
}

/// Whitespace runs as one space: how commands are compared.
fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The binary a `cargo run` form stands for (the first substitution every command gets).
fn as_binaries(s: &str) -> String {
    s.replace(
        "cargo run --release -p blindsight-server --",
        "blindsight-server",
    )
    .replace("cargo run --release --", "blindsight")
}

/// A selector: a command's exact text, or its beginning followed by `…`.
fn selects(selector: &str, command: &str) -> bool {
    let command = normalize(command);
    match selector.strip_suffix('…') {
        Some(prefix) => command.starts_with(&normalize(prefix)),
        None => command == normalize(selector),
    }
}

/// The one command of `file` that `selector` names (identical repeats count as one).
fn find(commands: &[DocCommand], file: &str, selector: &str) -> DocCommand {
    let found: Vec<&DocCommand> = commands
        .iter()
        .filter(|c| c.file == file && selects(selector, &c.text))
        .collect();
    assert!(
        !found.is_empty(),
        "{file}: no command matches {selector:?}; did the docs change?"
    );
    let first = found[0];
    for other in &found[1..] {
        assert_eq!(
            normalize(&other.text),
            normalize(&first.text),
            "{file}: {selector:?} matches different commands (lines {} and {})",
            first.line,
            other.line
        );
    }
    first.clone()
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// What a command must do.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit 0; when it prints a problem document (curl), that is a failure.
    Success,
    /// Exit 0 and print this.
    Prints(&'static str),
    /// Print a problem document of this type (curl: the refusal the doc describes).
    Problem(&'static str),
}

#[derive(Clone, Copy)]
enum Step {
    /// A documented command (file, selector).
    Doc(&'static str, &'static str, Expect),
    /// `export BLINDSIGHT_TOKEN=` the token of this role (the docs: "keyholder token", …).
    Role(&'static str),
    /// Something the docs leave to the reader.
    Setup(&'static str, fn(&mut Shell)),
    /// SIGTERM to every server started so far; each must exit 0.
    StopServers,
}

use Expect::*;
use Step::*;

const fn doc(file: &'static str, selector: &'static str) -> Step {
    Doc(file, selector, Success)
}

const README: &str = "README.md";
const API: &str = "docs/API.md";
const CLAIMS: &str = "docs/CLAIMS.md";
const OPS: &str = "docs/OPERATIONS.md";

/// The README's commands against a server of one's own on SQLite, the auditor's commands from
/// `CLAIMS.md`, and the SQLite backup, restore and check from `OPERATIONS.md`.
const SQLITE_CLI: &[Step] = &[
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
        "cargo run --release -- query analytics.json…",
        Prints("job-"),
    ),
    Doc(README, "cargo run --release -- jobs", Prints("succeeded")),
    doc(README, "cargo run --release -- results <job-id>…"),
    Setup("out.csv was written", check_csv),
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
    doc(OPS, "install -m 600 blindsight-data/audit-signing-key.p8…"),
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
    Doc(
        OPS,
        "blindsight audit verify --db restored --audit-key audit-key.json",
        Prints("every check passed"),
    ),
];

/// `API.md`'s curl walkthrough, on SQLite.
const API_CURL: &[Step] = &[
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
const POSTGRES_README: &[Step] = &[
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
const POSTGRES_OPERATIONS: &[Step] = &[
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
const ELSEWHERE: &[(&str, &str, &str)] = &[
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
        "fuzz/README.md",
        "cargo install cargo-fuzz",
        "not run: cargo-fuzz needs a nightly toolchain; crypto/tests/it/decoders.rs runs every \
         decoder over the same corpus (and random, truncated and bit-flipped inputs) on stable",
    ),
    (
        "fuzz/README.md",
        "scratch=$(mktemp -d)",
        "not run: part of the cargo-fuzz invocation above",
    ),
    (
        "fuzz/README.md",
        "cargo +nightly fuzz run…",
        "not run: needs a nightly toolchain (see `cargo install cargo-fuzz` above)",
    ),
];

const SCENARIOS: &[(&str, &[Step])] = &[
    ("sqlite-cli", SQLITE_CLI),
    ("api-curl", API_CURL),
    ("postgres-readme", POSTGRES_README),
    ("postgres-operations", POSTGRES_OPERATIONS),
];

#[test]
fn every_documented_command_is_run_here_or_named_elsewhere() {
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
fn readme_commands_against_a_sqlite_server() {
    run_scenario("sqlite-cli", SQLITE_CLI, false);
}

#[test]
fn api_curl_examples() {
    run_scenario("api-curl", API_CURL, false);
}

#[test]
fn readme_postgresql_walkthrough_backup_restore_and_offline_audit() {
    run_scenario("postgres-readme", POSTGRES_README, true);
}

#[test]
fn operations_postgresql_deployment_and_an_openssl_audit_key() {
    run_scenario("postgres-operations", POSTGRES_OPERATIONS, true);
}

fn run_scenario(name: &'static str, steps: &[Step], postgres: bool) {
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

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

// Set-up steps.

fn session_example() -> Session {
    serde_json::from_slice(&std::fs::read(workspace().join("docs/session-example.json")).unwrap())
        .unwrap()
}

fn write_sessions(sh: &mut Shell) {
    let mut lines = String::new();
    for (i, transcript) in [true, false].into_iter().enumerate() {
        let mut s = session_example();
        s.record_id = format!("north-{}", i + 1);
        s.cohort = Some("north".into());
        s.mood_after = 4 + i as u32;
        if !transcript {
            s.transcript = None;
        }
        lines.push_str(&serde_json::to_string(&s).unwrap());
        lines.push('\n');
    }
    std::fs::write(sh.cwd().join("sessions.jsonl"), lines).unwrap();
    sh.set("<record-id>", "north-1");
}

/// The `n`-th JSON block of `MODELS.md` that contains `marker`.
fn models_json(marker: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(workspace().join("docs/MODELS.md")).unwrap();
    let block = text
        .split("```json")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("MODELS.md has no JSON block with {marker}"));
    serde_json::from_str(block).unwrap()
}

fn write_model_and_query(sh: &mut Shell) {
    let mut model = models_json("\"weights\"");
    model["id"] = "my-model".into();
    std::fs::write(
        sh.cwd().join("my-model.json"),
        serde_json::to_vec_pretty(&model).unwrap(),
    )
    .unwrap();
    std::fs::write(
        sh.cwd().join("analytics.json"),
        serde_json::to_vec_pretty(&models_json("\"aggregates\"")).unwrap(),
    )
    .unwrap();
}

fn check_csv(sh: &mut Shell) {
    let csv = std::fs::read_to_string(sh.cwd().join("out.csv")).expect("out.csv was written");
    assert!(csv.lines().count() > 1, "out.csv: {csv}");
}

fn key_file_placeholder(sh: &mut Shell) {
    sh.set("<key or file>", "audit-key.json");
}

fn file_placeholder(sh: &mut Shell) {
    let key_id = sh.var("<key-id>");
    sh.set("<file>", &format!("keys/{key_id}.public"));
}

fn write_record_envelope(sh: &mut Shell) {
    let bytes = std::fs::read(sh.cwd().join("app.bundle")).expect("app.bundle was downloaded");
    let app = AppBundle::decode_pinned(&bytes, &sh.var("<fingerprint>"))
        .expect("the downloaded bundle matches the fingerprint keygen printed");
    let mut session = session_example();
    session.record_id = "rec-1".into();
    session.cohort = Some("north".into());
    let envelope = session.to_record(&app, "northside").unwrap();
    std::fs::write(sh.cwd().join("record.env"), envelope.encode().unwrap()).unwrap();
}

fn check_proof(sh: &mut Shell) {
    let proof = std::fs::read(sh.cwd().join("rec-1.proof")).expect("rec-1.proof was written");
    assert!(proof.len() > 1000, "rec-1.proof is {} bytes", proof.len());
}

fn check_result(sh: &mut Shell) {
    let result = std::fs::read(sh.cwd().join("result.env")).expect("result.env was written");
    assert!(
        problem_type(&String::from_utf8_lossy(&result)).is_none() && result.len() > 1000,
        "result.env: {} bytes",
        result.len()
    );
}

fn copy_session_example(sh: &mut Shell) {
    std::fs::create_dir_all(sh.cwd().join("docs")).unwrap();
    std::fs::copy(
        workspace().join("docs/session-example.json"),
        sh.cwd().join("docs/session-example.json"),
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The shell session.

/// Scratch PostgreSQL databases for one scenario, named after the doc's database names.
struct Pg {
    /// `postgres://user[:password]@host:port`
    base: String,
    host: String,
    port: String,
    user: String,
    password: Option<String>,
    prefix: String,
    created: Vec<String>,
}

impl Pg {
    fn new(url: &str, scenario: &str) -> Self {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .expect("BLINDSIGHT_TEST_POSTGRES_URL is a postgres:// URL");
        let authority = rest.split('/').next().unwrap();
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("postgres", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
            None => (userinfo.to_owned(), None),
        };
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        Self {
            base: format!("postgres://{userinfo}@{hostport}"),
            host: host.to_owned(),
            port: port.to_owned(),
            user,
            password,
            prefix: format!("docs_{}_{}", scenario.replace('-', "_"), std::process::id()),
            created: Vec::new(),
        }
    }

    /// The scratch database standing for the doc's `name`.
    fn scratch(&mut self, name: &str) -> String {
        let scratch = format!("{}_{}", self.prefix, name.replace('-', "_"));
        if !self.created.contains(&scratch) {
            self.created.push(scratch.clone());
        }
        scratch
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", &self.port)
            .env("PGUSER", &self.user);
        if let Some(p) = &self.password {
            cmd.env("PGPASSWORD", p);
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        for db in &self.created {
            let mut cmd = Command::new("dropdb");
            self.env(&mut cmd);
            let _ = cmd
                .args(["--if-exists", "--force", db])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

struct Shell {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    cwd: tempfile::TempDir,
    io: tempfile::TempDir,
    _bin: tempfile::TempDir,
    port: u16,
    n: usize,
    vars: BTreeMap<String, String>,
    servers: Vec<(u32, String)>,
    pg: Option<Pg>,
}

const PASSPHRASE: &str = "docs test passphrase, not a secret";

impl Shell {
    fn start(name: &'static str, pg: Option<Pg>) -> Self {
        let client = PathBuf::from(env!("CARGO_BIN_EXE_blindsight"));
        let server =
            client.with_file_name(format!("blindsight-server{}", std::env::consts::EXE_SUFFIX));
        assert!(
            server.is_file(),
            "{} is missing: run `cargo test --workspace` (or `cargo build -p blindsight-server`) so \
             the server binary is built beside the client's",
            server.display()
        );
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&client, bin.path().join("blindsight")).unwrap();
        std::os::unix::fs::symlink(&server, bin.path().join("blindsight-server")).unwrap();
        let port = free_port();
        let cwd = tempfile::tempdir().unwrap();
        let io = tempfile::tempdir().unwrap();
        let path = std::env::join_paths(std::iter::once(bin.path().to_owned()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut cmd = Command::new("bash");
        for (k, _) in std::env::vars() {
            if k.starts_with("BLINDSIGHT_") && k != "BLINDSIGHT_LOG" {
                cmd.env_remove(&k);
            }
        }
        cmd.args(["--noprofile", "--norc", "-s"])
            .current_dir(cwd.path())
            .env("PATH", path)
            .env("BLINDSIGHT_PASSPHRASE", PASSPHRASE)
            .env("BLINDSIGHT_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pg) = &pg {
            pg.env(&mut cmd);
        }
        // Its own process group, so a failed scenario can stop everything it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("bash runs");
        let stdin = child.stdin.take().unwrap();
        println!(
            "== scenario {name}: in {}, port {port}",
            cwd.path().display()
        );
        Self {
            name,
            child,
            stdin,
            cwd,
            io,
            _bin: bin,
            port,
            n: 0,
            vars: BTreeMap::new(),
            servers: Vec::new(),
            pg,
        }
    }

    fn cwd(&self) -> &Path {
        self.cwd.path()
    }

    fn note(&self, what: &str) {
        println!("-- {what}");
    }

    fn set(&mut self, placeholder: &str, value: &str) {
        self.vars.insert(placeholder.to_owned(), value.to_owned());
    }

    fn var(&self, placeholder: &str) -> String {
        self.vars
            .get(placeholder)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no value for {placeholder} yet (known: {:?})",
                    self.name,
                    self.vars.keys().collect::<Vec<_>>()
                )
            })
            .clone()
    }

    fn send(&mut self, script: &str) {
        self.stdin.write_all(script.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn export(&mut self, name: &str, value: &str) {
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c)),
            "{name}: unexpected characters in {value:?}"
        );
        self.send(&format!("export {name}='{value}'\n"));
    }

    /// The command as it runs here (see the file's header).
    fn prepare(&mut self, text: &str) -> String {
        let port = self.port;
        let mut s = as_binaries(text)
            .replace(":8080", &format!(":{port}"))
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace(
                "https://blindsight.example",
                &format!("http://localhost:{port}"),
            )
            .replace("/var/lib/blindsight", "blindsight-data");
        if s.contains("postgres://")
            || ["createdb ", "dropdb ", "pg_dump ", "pg_restore "]
                .iter()
                .any(|t| s.contains(t))
        {
            s = self.postgres(&s);
        }
        // Placeholders, as a reader copies them from earlier output.
        if s.contains("bst_…") {
            let auditor = self.var("<auditor>");
            s = s.replace("bst_…", &auditor);
        }
        while let Some(i) = s.find('<') {
            let j = i + s[i..].find('>').expect("a placeholder ends with >");
            let value = self.var(&s[i..=j]);
            s.replace_range(i..=j, &value);
        }
        s
    }

    /// Database names and URLs as scratch databases.
    fn postgres(&mut self, s: &str) -> String {
        let pg = self
            .pg
            .as_mut()
            .unwrap_or_else(|| panic!("a PostgreSQL command in a SQLite scenario: {s}"));
        let mut out = String::new();
        for (k, word) in s.split(' ').enumerate() {
            if k > 0 {
                out.push(' ');
            }
            if let Some(at) = word.find("postgres://") {
                // `postgres://…` or `VARIABLE=postgres://…`: the database is the last segment.
                let name = word.rsplit('/').next().unwrap();
                let scratch = pg.scratch(name);
                out.push_str(&format!("{}{}/{scratch}", &word[..at], pg.base));
            } else {
                out.push_str(word);
            }
        }
        // Database names given to the PostgreSQL tools: every word after one of them that is
        // not an option, a redirection or a file.
        let words: Vec<String> = out.split(' ').map(str::to_owned).collect();
        let mut tool = false;
        let mut result = Vec::new();
        for w in words {
            if ["createdb", "dropdb", "pg_dump", "pg_restore"].contains(&w.as_str()) {
                tool = true;
                result.push(w);
                continue;
            }
            if w == "&&" || w == ">" || w == "|" {
                tool = false;
                result.push(w);
                continue;
            }
            let is_name = tool
                && !w.starts_with('-')
                && !w.contains('.')
                && !w.contains('/')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            result.push(if is_name { pg.scratch(&w) } else { w });
        }
        result.join(" ")
    }

    fn wait_for(&self, path: &Path, what: &str, timeout: Duration) {
        let start = Instant::now();
        while !path.exists() {
            if start.elapsed() > timeout {
                panic!("{}: {what} did not finish in {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.io.path().join(name)).unwrap_or_default()
    }

    /// Runs a documented command and checks what it did; captures what later commands use.
    fn run(&mut self, command: &DocCommand, expect: Expect) {
        let mut prepared = self.prepare(&command.text);
        let daemon = is_daemon(&prepared);
        if daemon && !prepared.trim_end().ends_with('&') {
            prepared.push_str(" &");
        }
        self.n += 1;
        let n = self.n;
        let io = self.io.path().display().to_string();
        println!("$ {}    ({}:{})", prepared, command.file, command.line);
        let mut script = format!(
            "{{ {prepared}\n}} >{io}/{n}.out 2>{io}/{n}.err </dev/null\necho $? >{io}/{n}.rc.tmp\n"
        );
        if daemon {
            script.push_str(&format!("echo $! >{io}/{n}.pid\n"));
        }
        script.push_str(&format!("mv {io}/{n}.rc.tmp {io}/{n}.rc\n"));
        self.send(&script);
        self.wait_for(
            &self.io.path().join(format!("{n}.rc")),
            &prepared,
            Duration::from_secs(600),
        );
        let rc: i32 = self.read(&format!("{n}.rc")).trim().parse().unwrap();
        if daemon {
            let pid: u32 = self.read(&format!("{n}.pid")).trim().parse().unwrap();
            self.servers.push((pid, prepared.clone()));
            self.wait_ready(n, pid, &prepared);
            return;
        }
        let out = self.read(&format!("{n}.out"));
        let err = self.read(&format!("{n}.err"));
        let shown = |s: &str| -> String {
            let s = s.trim_end();
            if s.len() > 3000 {
                let mut i = s.len() - 3000;
                while !s.is_char_boundary(i) {
                    i += 1;
                }
                format!("…{}", &s[i..])
            } else {
                s.to_owned()
            }
        };
        println!("{}", shown(&out));
        let context = format!(
            "{}: `{}` ({}:{}) exited {rc}\nstdout:\n{}\nstderr:\n{}",
            self.name,
            prepared,
            command.file,
            command.line,
            shown(&out),
            shown(&err)
        );
        let problem = problem_type(&out);
        match expect {
            Success | Prints(_) => {
                assert_eq!(rc, 0, "{context}");
                assert!(problem.is_none(), "a problem document: {context}");
                if let Prints(what) = expect {
                    assert!(out.contains(what), "expected {what:?} in stdout: {context}");
                }
            }
            Problem(slug) => {
                assert_eq!(
                    problem.as_deref(),
                    Some(format!("https://blindsight.dev/problems/{slug}").as_str()),
                    "expected the {slug} problem: {context}"
                );
            }
        }
        self.capture(&prepared, &out);
    }

    /// Values later commands use: tokens, key ids, fingerprints, job ids.
    fn capture(&mut self, prepared: &str, out: &str) {
        if let Ok(serde_json::Value::Object(reply)) = serde_json::from_str(out.trim()) {
            if let Some(tokens) = reply.get("tokens").and_then(|t| t.as_object()) {
                for role in ["keyholder", "ingest", "auditor"] {
                    let token = tokens[role].as_str().unwrap().to_owned();
                    self.set(&format!("<{role}>"), &token);
                    self.export(&role.to_uppercase(), &token);
                }
            }
            if let Some(job) = reply.get("job_id").and_then(|j| j.as_str()) {
                let job = job.to_owned();
                self.set("<job-id>", &job);
                self.export("JOB_ID", &job);
            }
        }
        let words: Vec<&str> = prepared.split_whitespace().collect();
        let sub = words
            .iter()
            .position(|w| *w == "blindsight")
            .and_then(|i| words.get(i + 1))
            .copied();
        if sub == Some("keygen") {
            for line in out.lines() {
                if let Some(rest) = line.strip_prefix("key set ") {
                    let id = rest.split_whitespace().next().unwrap().to_owned();
                    self.set("<key-id>", &id);
                    self.export("KEY_ID", &id);
                }
                if let Some(fp) = line.strip_prefix("manifest fingerprint ") {
                    self.set("<fingerprint>", fp.trim());
                }
            }
        }
        if matches!(sub, Some("score" | "query")) && words.contains(&"--wait") {
            let job = out.lines().next().unwrap_or_default().trim().to_owned();
            assert!(job.starts_with("job-"), "no job id printed: {out}");
            self.set("<job-id>", &job);
            self.export("JOB_ID", &job);
        }
    }

    /// Waits until a background server answers ready, or a worker has started.
    fn wait_ready(&self, n: usize, pid: u32, prepared: &str) {
        let start = Instant::now();
        loop {
            let log = format!(
                "{}{}",
                self.read(&format!("{n}.out")),
                self.read(&format!("{n}.err"))
            );
            let ready = if prepared.contains(" serve") {
                http_ok(self.port, "/readyz")
            } else {
                log.contains("worker started")
            };
            if ready {
                println!("   ({} is ready)", prepared);
                return;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                panic!("{}: `{prepared}` exited early:\n{log}", self.name);
            }
            if start.elapsed() > Duration::from_secs(180) {
                panic!("{}: `{prepared}` not ready after 180 s:\n{log}", self.name);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to every server, which must shut down gracefully (exit 0).
    fn stop_servers(&mut self) {
        for (pid, command) in std::mem::take(&mut self.servers) {
            self.n += 1;
            let n = self.n;
            let io = self.io.path().display().to_string();
            self.send(&format!(
                "kill -TERM {pid}; wait {pid}; echo $? >{io}/{n}.rc.tmp; mv {io}/{n}.rc.tmp {io}/{n}.rc\n"
            ));
            self.wait_for(
                &self.io.path().join(format!("{n}.rc")),
                &format!("stopping `{command}`"),
                Duration::from_secs(120),
            );
            let rc = self.read(&format!("{n}.rc"));
            assert_eq!(
                rc.trim(),
                "0",
                "{}: `{command}` did not exit 0 on SIGTERM",
                self.name
            );
            println!("   (`{command}` stopped on SIGTERM, exit 0)");
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // Everything the scenario started is in the shell's process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A free port below Linux's ephemeral range (32768–60999), so the outgoing connections of
/// other scenarios, which take ephemeral ports, cannot be given it before the server binds.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Spread by process id so concurrent test runs start apart; 20000–31999.
    let start = (std::process::id() % 1000) as u16 * 12;
    loop {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a command starts a long-running server process.
fn is_daemon(prepared: &str) -> bool {
    let words: Vec<&str> = prepared.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| w[0] == "blindsight-server" && (w[1] == "serve" || w[1] == "worker"))
}

/// The `type` of a problem document, when `out` is one.
fn problem_type(out: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
    let kind = value.get("type")?.as_str()?;
    kind.starts_with("https://blindsight.dev/problems/")
        .then(|| kind.to_owned())
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .is_err()
    {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.1 200")
}
