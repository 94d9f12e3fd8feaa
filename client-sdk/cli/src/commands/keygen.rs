//! `keygen`: a new key set, its keystore and public bundles.

use std::path::PathBuf;

use anyhow::Context;
use blindsight_client::keystore;
use blindsight_crypto::{DEFAULT_ITERATIONS, KeySet};

use crate::args::passphrase;

pub(crate) fn keygen(out_dir: PathBuf, key_id: Option<String>) -> anyhow::Result<()> {
    let pass = passphrase()?;
    anyhow::ensure!(
        pass.chars().count() >= 12,
        "choose a passphrase of at least 12 characters"
    );
    let step = |s: blindsight_crypto::KeygenStep| eprintln!("keygen: {}…", s.describe());
    let keys = match key_id {
        Some(id) => KeySet::generate_with_id(&id, step)?,
        None => KeySet::generate_with_progress(step)?,
    };
    let (secret, public) = keys.into_parts();
    let id = secret.key_id().to_owned();
    let ks = out_dir.join(format!("{id}.keystore"));
    keystore::save(&ks, &secret, &pass, DEFAULT_ITERATIONS)
        .with_context(|| format!("couldn't write keystore {}", ks.display()))?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.public")),
        &public.encode()?,
        false,
    )?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.app")),
        &public.app_bundle().encode()?,
        false,
    )?;
    println!("key set {id}");
    println!("manifest fingerprint {}", public.manifest().fingerprint()?);
    println!("keystore {}", ks.display());
    Ok(())
}
