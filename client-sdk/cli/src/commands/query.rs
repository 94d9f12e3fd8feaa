//! `query`: an aggregate job.

use std::path::Path;

use anyhow::Context;
use blindsight_client::api::JobRequest;
use blindsight_crypto::compute::AggregateQuery;

use super::wait::queue;
use crate::args::{SelectArgs, ServerArgs, WaitArgs, read_json};

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
