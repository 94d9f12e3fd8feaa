//! `score`, `query`, `jobs` and `results`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use blindsight_client::api::{Client, Job, JobRequest, JobStatus, ModelRef};
use blindsight_client::results;
use blindsight_crypto::compute::AggregateQuery;

use crate::args::{
    ConfigFile, SelectArgs, ServerArgs, WaitArgs, format_time, keystore_path, open_keystore,
    read_json, write_private,
};
use crate::progress::StderrProgress;

/// A bar on a terminal, plain lines otherwise; returns the job as it finished.
fn follow(client: &Client, job_id: &str, timeout: Duration) -> anyhow::Result<Job> {
    let job = client.wait_with_progress(
        job_id,
        &format!("job {job_id}"),
        &mut StderrProgress::default(),
        timeout,
    );
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

pub(crate) fn score(
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

pub(crate) fn query(
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

pub(crate) fn show_jobs(server: &ServerArgs, job_id: Option<&str>) -> anyhow::Result<()> {
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

pub(crate) fn show_results(
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
