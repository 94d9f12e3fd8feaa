//! Keystore files: the key holder's secrets, encrypted under a passphrase
//! ([`blindsight_crypto::seal_keystore`]), written atomically (temporary file in the same
//! directory, fsync, rename) with mode 0600, so a crash never leaves a half-written keystore
//! and no other user can read it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use blindsight_crypto::{KeystoreFile, SecretKeys, seal_keystore};

use crate::{Error, Result};

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically with mode 0600. With `overwrite` false an existing
/// file is an error and is left untouched.
pub fn write_private_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    if !overwrite && path.exists() {
        return Err(Error::KeystoreExists(path.to_owned()));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keystore".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let mut file = options.open(&tmp).map_err(io("create", &tmp))?;
        file.write_all(bytes).map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io("rename into place", path))?;
        // Make the rename itself durable.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Encrypts `secret` under `passphrase` and writes it to `path` (never overwriting).
pub fn save(path: &Path, secret: &SecretKeys, passphrase: &str, iterations: u32) -> Result<()> {
    let bytes = seal_keystore(secret, passphrase, iterations)?;
    write_private_atomic(path, &bytes, false)
}

/// Reads and decrypts the keystore at `path`.
pub fn load(path: &Path, passphrase: &str) -> Result<SecretKeys> {
    let bytes = fs::read(path).map_err(io("read keystore", path))?;
    Ok(KeystoreFile::decode(&bytes)?.open(passphrase)?)
}
