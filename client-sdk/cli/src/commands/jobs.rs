//! `jobs`: the tenant's jobs, or one job.

use crate::args::{ServerArgs, format_time};

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
    if let Some(t) = j.tasks {
        println!(
            "tasks     {} of {} done, {} running (and a merge)",
            t.succeeded, t.total, t.running
        );
    }
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
    // The spec holds the request and the selected record ids (or rollup parts), never data.
    if let Ok(spec) = blindsight_proto::ListedSpec::parse(&j.spec) {
        if let Ok(request) = serde_json::to_string(&spec.request) {
            println!("request   {request}");
        }
        if !spec.rollup.is_empty() {
            let records: u64 = spec.rollup.iter().map(|p| p.records).sum();
            println!(
                "records   {records} (from {} lane rollup part{})",
                spec.rollup.len(),
                if spec.rollup.len() == 1 { "" } else { "s" }
            );
        } else if let Some(records) = &spec.records {
            println!("records   {}", records.len());
        }
    }
    Ok(())
}
