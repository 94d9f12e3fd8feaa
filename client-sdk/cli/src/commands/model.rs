//! `model`: a risk model registered.

use std::path::Path;

use anyhow::Context;
use blindsight_crypto::compute::RiskModel;

use crate::args::{ServerArgs, read_json};

pub(crate) fn register_model(server: &ServerArgs, file: &Path) -> anyhow::Result<()> {
    let config = server.config()?;
    let model: RiskModel = read_json(file, "risk model")?;
    // Checked here first when its schema is built in, so mistakes are named before any request.
    if let Some(schema) =
        blindsight_crypto::schemas::builtin(&model.schema_id, model.schema_version)
    {
        model
            .compile(&schema)
            .with_context(|| format!("{} is not a valid risk model", file.display()))?;
    }
    let (reg, created) = server.client(&config)?.register_model(&model)?;
    println!(
        "model {} v{} {}",
        reg.model_id,
        reg.version,
        if created {
            "registered"
        } else {
            "was already registered"
        }
    );
    println!("digest {}", reg.digest);
    println!("function {}", reg.function_id);
    Ok(())
}
