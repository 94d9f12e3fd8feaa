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
    let request = JobRequest::risk_score(
        select.key_id(&config)?,
        ModelRef::new(model, model_version),
        select.selection()?,
    );
    queue(server, &config, &request, wait)
}
