//! `score`: a risk-score job.

use blindsight_client::api::{JobRequest, ModelRef};

use super::wait::queue;
use crate::args::{SelectArgs, ServerArgs, WaitArgs};

pub(crate) fn score(
    server: &ServerArgs,
    select: &SelectArgs,
    model: &str,
    model_version: u32,
    wait: &WaitArgs,
) -> anyhow::Result<()> {
    let config = server.config()?;
    // A built-in model reads its own schema (`bias` reads `training`) unless told otherwise.
    let selection = match blindsight_crypto::compute::builtin_model(model, model_version) {
        Some(m) => select.selection_over((&m.schema_id, m.schema_version))?,
        None => select.selection()?,
    };
    let request = JobRequest::risk_score(
        select.key_id(&config)?,
        ModelRef::new(model, model_version),
        selection,
    );
    queue(server, &config, &request, wait)
}
