//! Key generation into a keystore (the secrets never leave Rust) and a look inside bundles.

use std::path::PathBuf;

use blindsight_client::bindings::Input;
use blindsight_client::{Error, keystore};
use blindsight_crypto::{AppBundle, DEFAULT_ITERATIONS, KeySet, KeystoreFile, PublicBundle};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors;
use crate::recorder::BytesOrPath;

/// What `keygen` wrote.
struct Written {
    key_id: String,
    fingerprint: String,
    keystore: PathBuf,
    public: PathBuf,
    app: PathBuf,
}

fn generate(
    out_dir: &std::path::Path,
    passphrase: &str,
    key_id: Option<&str>,
) -> Result<Written, Error> {
    let keys = match key_id {
        Some(id) => KeySet::generate_with_id(id, |_| {})?,
        None => KeySet::generate_with_progress(|_| {})?,
    };
    let (secret, public) = keys.into_parts();
    let id = secret.key_id().to_owned();
    let ks = out_dir.join(format!("{id}.keystore"));
    keystore::save(&ks, &secret, passphrase, DEFAULT_ITERATIONS)?;
    drop(secret);
    let public_path = out_dir.join(format!("{id}.public"));
    keystore::write_private_atomic(&public_path, &public.encode()?, false)?;
    let app_path = out_dir.join(format!("{id}.app"));
    keystore::write_private_atomic(&app_path, &public.app_bundle().encode()?, false)?;
    Ok(Written {
        fingerprint: public.manifest().fingerprint()?,
        key_id: id,
        keystore: ks,
        public: public_path,
        app: app_path,
    })
}

/// Generates a key set in `out_dir`: `<key_id>.keystore` (the secrets, encrypted under
/// `passphrase`, mode 0600, never overwritten), `<key_id>.public` (what the key holder
/// registers) and `<key_id>.app` (what apps load). Returns `key_id`, `fingerprint` (the
/// manifest fingerprint apps pin) and the three paths. The secret keys never reach Python.
#[pyfunction]
#[pyo3(signature = (out_dir, passphrase, key_id=None))]
pub(crate) fn keygen<'py>(
    py: Python<'py>,
    out_dir: PathBuf,
    passphrase: &str,
    key_id: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    if passphrase.chars().count() < 12 {
        return Err(errors::invalid(
            Input::Other,
            Some("passphrase"),
            "choose a passphrase of at least 12 characters",
        ));
    }
    let written = py
        .detach(|| generate(&out_dir, passphrase, key_id))
        .map_err(|e| errors::sdk(&e, Input::Other))?;
    let d = PyDict::new(py);
    d.set_item("key_id", written.key_id)?;
    d.set_item("fingerprint", written.fingerprint)?;
    d.set_item("keystore", written.keystore.display().to_string())?;
    d.set_item("public", written.public.display().to_string())?;
    d.set_item("app", written.app.display().to_string())?;
    Ok(d)
}

/// What a bundle or keystore file is, from decoding it: `kind` (`app`, `public` or
/// `keystore`), `key_id`, `components` (what it holds), `secret` (whether any component is
/// secret: only a keystore's, which are encrypted) and, for bundles, the manifest
/// `fingerprint`. Every component is decoded and checked against the manifest.
#[pyfunction]
pub(crate) fn describe_bundle<'py>(
    py: Python<'py>,
    bundle: BytesOrPath,
) -> PyResult<Bound<'py, PyDict>> {
    let bytes = bundle.read("read the bundle")?;
    let d = PyDict::new(py);
    let crypto = |e: blindsight_crypto::Error| errors::sdk(&Error::Crypto(e), Input::Other);
    let public_parts = [
        "key manifest",
        "compact public key",
        "CRS",
        "transcript public key",
    ];
    if let Ok(keystore) = KeystoreFile::decode(&bytes) {
        d.set_item("kind", "keystore")?;
        d.set_item("key_id", keystore.key_id)?;
        d.set_item(
            "components",
            vec![
                "client key (encrypted)",
                "transcript secret key (encrypted)",
            ],
        )?;
        d.set_item("secret", true)?;
        return Ok(d);
    }
    let (kind, app, mut components) = match py.detach(|| AppBundle::decode(&bytes)) {
        Ok(app) => ("app", app, public_parts.to_vec()),
        Err(app_err) => match py.detach(|| PublicBundle::decode(&bytes)) {
            Ok(public) => {
                let mut parts = public_parts.to_vec();
                parts.push("compressed server key");
                ("public", public.app_bundle().clone(), parts)
            }
            Err(_) => return Err(crypto(app_err)),
        },
    };
    components.sort_unstable();
    d.set_item("kind", kind)?;
    d.set_item("key_id", app.key_id())?;
    d.set_item("fingerprint", app.manifest().fingerprint().map_err(crypto)?)?;
    d.set_item("components", components)?;
    d.set_item("secret", false)?;
    Ok(d)
}
