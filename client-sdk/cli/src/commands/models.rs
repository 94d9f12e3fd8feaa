//! `models`: the models the server knows.

use crate::args::ServerArgs;

pub(crate) fn list_models(server: &ServerArgs) -> anyhow::Result<()> {
    let config = server.config()?;
    let models = server.client(&config)?.models()?;
    let id = models
        .iter()
        .map(|m| m.model_id.len())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<id$}  {:>7}  {:<10}  digest",
        "model", "version", "origin"
    );
    for m in models {
        println!(
            "{:<id$}  {:>7}  {:<10}  {}",
            m.model_id,
            m.version,
            if m.builtin { "built in" } else { "registered" },
            m.digest
        );
    }
    Ok(())
}
