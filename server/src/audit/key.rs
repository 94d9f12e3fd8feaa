//! The server's Ed25519 audit signing key (ring). It signs chain heads and job receipts, each
//! under its own domain-separation prefix, and nothing else. It
//! lives in a PKCS#8 (DER) file, owner-only (mode 0600): created atomically on first start
//! under the data directory, or supplied by the operator (`--audit-key-file`). Its bytes are
//! never logged, and `Debug` shows only the public key id. Beside its file it keeps the heads
//! it signed (`witness`).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blindsight_crypto::receipt::{Receipt, SignedReceipt, receipt_message};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::chain::{SignedHead, head_message, key_id};
use super::witness::{Witness, WitnessError};

/// The key file's name under the data directory.
pub const AUDIT_KEY_FILE: &str = "audit-signing-key.p8";

/// Why the signing key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read, created or written.
    #[error("audit signing key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "audit signing key {path} is accessible to other users (mode {mode:o}); make it owner-only: chmod 600 {path}"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not an Ed25519 PKCS#8 key.
    #[error(
        "audit signing key {path} is not an Ed25519 private key in PKCS#8 DER form (e.g. `openssl genpkey -algorithm ed25519 -outform DER`): {reason}"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What ring said.
        reason: String,
    },
    /// The system random number generator failed.
    #[error("couldn't generate an audit signing key: the system RNG failed")]
    Rng,
    /// The heads kept beside the key could not be read.
    #[error(transparent)]
    Witness(#[from] WitnessError),
}

/// The audit signing key, with the heads it signed ([`Witness`]). Cloning shares both.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<Ed25519KeyPair>,
    key_id: String,
    witness: Arc<Witness>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl SigningKey {
    fn from_pair(pair: Ed25519KeyPair, witness: Witness) -> Self {
        let key_id = key_id(pair.public_key().as_ref());
        Self {
            pair: Arc::new(pair),
            key_id,
            witness: Arc::new(witness),
        }
    }

    fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Rng)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// A key that lives only in memory: for a process that was given no key (tests, a
    /// worker-only process). Heads it signs cannot be checked after the process ends, and
    /// the heads it keeps are forgotten with it.
    pub fn ephemeral() -> Result<Self, KeyError> {
        let der = Self::generate_pkcs8()?;
        Self::from_pkcs8(&der, Path::new("(in memory)"), Witness::in_memory())
    }

    /// Decodes a PKCS#8 document: v2 (what ring and this server write, public key checked) or
    /// v1 (what `openssl genpkey` writes).
    fn from_pkcs8(der: &[u8], path: &Path, witness: Witness) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(der))
            .map_err(|e| KeyError::Invalid {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self::from_pair(pair, witness))
    }

    /// Loads the key the operator supplied. The file must exist and be owner-only.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        check_private(path)?;
        let der = Zeroizing::new(std::fs::read(path).map_err(io(path))?);
        Self::from_pkcs8(&der, path, Witness::beside(path)?)
    }

    /// Loads the key at `path`, creating it (and its directory, owner-only) first when there
    /// is none (`true` when this call created it). Creation is atomic: the key is written to a temporary owner-only file in
    /// the same directory and linked into place, so a crash never leaves a partial key and two
    /// processes starting at once end up with the same one.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(path)(e)),
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        crate::db::create_private_dir(dir).map_err(io(dir))?;
        let der = Self::generate_pkcs8()?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name()
                .map_or("audit-key".into(), |n| n.to_string_lossy()),
            hex::encode(blindsight_crypto::random_bytes::<8>().map_err(|_| KeyError::Rng)?)
        ));
        let written = write_private(&tmp, &der).and_then(|()| {
            // Links fail if the target exists: whoever linked first wins, and the others load
            // the winner's key below.
            std::fs::hard_link(&tmp, path)
        });
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                sync_dir(dir);
                Ok((Self::from_pkcs8(&der, path, Witness::beside(path)?)?, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(path)?, false))
            }
            Err(e) => Err(io(path)(e)),
        }
    }

    /// The heads this key signed, kept beside its file.
    pub fn witness(&self) -> &Arc<Witness> {
        &self.witness
    }

    /// The key id: SHA-256 of the public key, hex.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Signs a chain's head (docs/FORMATS.md): the chain held `seq` entries, the last with
    /// `hash` written at time `at`, and the head before it had digest `prev_head`.
    pub fn sign_head(
        &self,
        tenant_id: Option<&str>,
        seq: i64,
        hash: &[u8; 32],
        at: i64,
        prev_head: &[u8; 32],
    ) -> SignedHead {
        let signature = self
            .pair
            .sign(&head_message(tenant_id, seq, hash, at, prev_head));
        SignedHead {
            tenant_id: tenant_id.map(str::to_owned),
            seq,
            hash: hex::encode(hash),
            at,
            prev_head: Some(hex::encode(prev_head)),
            key_id: self.key_id.clone(),
            signature: hex::encode(signature.as_ref()),
        }
    }
}

impl SigningKey {
    /// Signs a job receipt (docs/FORMATS.md, "Receipts"): its canonical JSON, under the
    /// receipt domain.
    pub fn sign_receipt(&self, receipt: &Receipt) -> SignedReceipt {
        let text = receipt.canonical();
        let signature = self.pair.sign(&receipt_message(&text));
        SignedReceipt {
            receipt: text,
            key_id: self.key_id.clone(),
            signature: hex::encode(signature.as_ref()),
        }
    }
}

/// Creates `path` (which must not exist) owner-only, writes `bytes` and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a new directory entry durable (best effort: not every platform can sync a
/// directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Refuses a key file that group or others may access.
fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_key_id() {
        let k = SigningKey::ephemeral().unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains(k.key_id()), "{shown}");
        assert!(!shown.contains("pair"), "{shown}");
        assert_eq!(k.public_key().len(), 32);
    }
}
