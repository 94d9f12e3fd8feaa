//! `register`: a key set's public bundle sent to the server.

use std::path::PathBuf;

use anyhow::Context;

use crate::args::ServerArgs;

pub(crate) fn register(server: &ServerArgs, bundle: &PathBuf) -> anyhow::Result<()> {
    let config = server.config()?;
    let bytes = std::fs::read(bundle)
        .with_context(|| format!("couldn't read public bundle {}", bundle.display()))?;
    let public = blindsight_crypto::PublicBundle::decode(&bytes)
        .with_context(|| format!("{} is not a valid public bundle", bundle.display()))?;
    let reg = server
        .client(&config)?
        .register_keyset(public.key_id(), &bytes)?;
    println!(
        "key set {} {}",
        reg.key_id,
        if reg.created {
            "registered"
        } else {
            "was already registered"
        }
    );
    println!("manifest fingerprint {}", reg.manifest_fingerprint);
    Ok(())
}
