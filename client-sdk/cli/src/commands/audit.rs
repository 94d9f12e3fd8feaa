//! `audit verify`, over the API or (with the `server` feature) offline from a database.

use anyhow::Context;
use blindsight_client::api::Problem;
use blindsight_client::audit::{self, FetchOptions};
use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::VerifyArgs;
use crate::errors::{hinted, refusal};
use crate::progress::{CheckProgress, StderrProgress};

/// `blindsight audit verify`: the evidence from the API or the database, the checks, the
/// report. `matches` tells flags given on the command line from the environment's.
pub(crate) fn audit_verify(args: &VerifyArgs, matches: Option<&ArgMatches>) -> anyhow::Result<()> {
    let on_command_line =
        |id: &str| matches.and_then(|m| m.value_source(id)) == Some(ValueSource::CommandLine);
    let mut keys = args
        .audit_keys
        .iter()
        .map(|k| audit::parse_audit_key(k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut fetching = StderrProgress::default();
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
            offline(db, keys.is_empty(), &mut fetching)?
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
                let e = anyhow::Error::from(e);
                if refusal(&e) == Some(Problem::Forbidden) {
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
    if let Some(path) = &args.since {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "couldn't read the kept heads {} (--since names a file an earlier run wrote with --save-heads)",
                path.display()
            )
        })?;
        let kept = blindsight_audit::KeptHeads::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        evidence.kept_heads = kept.heads;
    }
    let bars = CheckProgress::default();
    let options = blindsight_audit::Options {
        reexecute: args.reexecute,
    };
    let report = blindsight_audit::verify(&evidence, &options, &|p| bars.update(p));
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
        if let Some(path) = &args.save_heads {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let kept = blindsight_audit::KeptHeads::of(&evidence, now);
            write_atomically(path, kept.to_json().as_bytes()).with_context(|| {
                format!("couldn't save the verified heads to {}", path.display())
            })?;
            eprintln!(
                "saved {} verified head(s) to {}; pass it as --since next time",
                kept.heads.len(),
                path.display()
            );
        }
        return Ok(());
    }
    if args.save_heads.is_some() {
        eprintln!("the verified heads were not saved: the audit failed");
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

/// `--db`: the server's database read directly (the `server` feature).
#[cfg(feature = "server")]
fn offline(
    db: &str,
    no_keys: bool,
    progress: &mut StderrProgress,
) -> anyhow::Result<blindsight_audit::Evidence> {
    let source = blindsight_cli::offline::DbSource::parse(db)?;
    if no_keys {
        return Err(hinted(
            format!(
                "no audit key to check the signatures in {} against",
                source.describe()
            ),
            "pass the published key: --audit-key <hex or file from GET /v1/audit/key>",
        ));
    }
    blindsight_cli::offline::load_evidence(&source, progress)
}

#[cfg(not(feature = "server"))]
fn offline(
    _db: &str,
    _no_keys: bool,
    _progress: &mut StderrProgress,
) -> anyhow::Result<blindsight_audit::Evidence> {
    Err(hinted(
        "this blindsight was built without the `server` feature, which `audit verify --db` needs",
        "audit over the API (--url), or build with default features",
    ))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, synced and then
/// renamed over it: a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}
