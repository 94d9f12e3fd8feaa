//! Queueing a job and following it to the end: what `score`, `query` and `results` share.

use std::time::Duration;

use blindsight_client::api::{Client, Job, JobRequest, JobStatus};

use crate::args::{ConfigFile, ServerArgs, WaitArgs};
use crate::progress::StderrProgress;

/// A bar on a terminal, plain lines otherwise; returns the job as it finished.
pub(super) fn follow(client: &Client, job_id: &str, timeout: Duration) -> anyhow::Result<Job> {
    let job = client.wait_with_progress(
        job_id,
        &format!("job {job_id}"),
        &mut StderrProgress::default(),
        timeout,
    );
    Ok(job?)
}

pub(super) fn queue(
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
