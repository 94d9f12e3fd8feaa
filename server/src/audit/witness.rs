//! The heads this server signed, kept outside the database, beside the signing key: the
//! server's own memory of how far each chain had grown.
//!
//! Whoever can write the database but lacks the signing key can still delete the newest
//! entries of a chain and move its head back (or restore an older backup): the shortened
//! chain is a valid chain, and the next event would be signed on top of it. So before a
//! process appends to a chain or signs its head it checks that the chain in the database
//! still extends the last head it kept (`store::audit`), and after every commit it keeps the
//! new head here, written durably (a temporary file, synced, renamed over the old one) under
//! an exclusive lock, so processes sharing a key file share their heads. A chain that does
//! not extend its kept head is halted: nothing is appended to it or signed for it, `/readyz`
//! reports it, and only `blindsight-server audit resolve` (which records the incident in the
//! chain itself) lifts it.
//!
//! The file is `<key file>.heads.json`, owner-only, JSON: `{"format":
//! "blindsight-kept-heads/v1", "chains": {"<tenant id, or empty for the server-wide chain>":
//! {"seq": 12, "hash": "<64 hex digits>"}}}`. It holds ids and hashes only.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The suffix appended to the key file's name for the kept heads.
pub const HEADS_SUFFIX: &str = ".heads.json";

const FORMAT: &str = "blindsight-kept-heads/v1";

/// A head this server signed: the chain held `seq` entries, the last with `hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptHead {
    /// The number of entries.
    pub seq: i64,
    /// The last entry's hash, 64 hex digits.
    pub hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadsFile {
    format: String,
    chains: BTreeMap<String, KeptHead>,
}

/// How a chain in the database departs from the head kept for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The chain: a tenant id, or empty for the server-wide chain.
    pub chain: String,
    /// The head this server signed last.
    pub kept: KeptHead,
    /// The chain's head in the database now.
    pub found_seq: i64,
    /// The hash the database holds at the kept head's position (`None`: the chain no longer
    /// reaches it).
    pub found_hash: Option<String>,
}

impl Divergence {
    /// `shortened` (entries removed, an older backup) or `rewritten` (entries replaced).
    pub fn cause(&self) -> &'static str {
        if self.found_hash.is_none() {
            "shortened"
        } else {
            "rewritten"
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain = if self.chain.is_empty() {
            "the server-wide audit chain".to_owned()
        } else {
            format!("tenant {:?}'s audit chain", self.chain)
        };
        let short = &self.kept.hash[..12.min(self.kept.hash.len())];
        match &self.found_hash {
            None => write!(
                f,
                "{chain} no longer extends the head this server signed (entry {}, {short}…): it ends at entry {} in the database — entries were removed or an older backup was restored",
                self.kept.seq, self.found_seq
            )?,
            Some(_) => write!(
                f,
                "{chain} no longer extends the head this server signed (entry {}, {short}…): entry {} differs in the database — entries were rewritten",
                self.kept.seq, self.kept.seq
            )?,
        }
        f.write_str(
            "; nothing is appended to it or signed for it until an operator runs `blindsight-server audit resolve`",
        )
    }
}

/// Compares a chain's head in the database with the head kept for it: `hash_at_kept` is the
/// hash the database holds at the kept head's `seq` (`None` when the chain is shorter).
pub fn judge(
    chain: &str,
    kept: &KeptHead,
    found_seq: i64,
    hash_at_kept: Option<&str>,
) -> Result<(), Divergence> {
    let divergence = |found_hash: Option<&str>| Divergence {
        chain: chain.to_owned(),
        kept: kept.clone(),
        found_seq,
        found_hash: found_hash.map(str::to_owned),
    };
    if found_seq < kept.seq {
        return Err(divergence(None));
    }
    match hash_at_kept {
        Some(h) if h.eq_ignore_ascii_case(&kept.hash) => Ok(()),
        Some(h) => Err(divergence(Some(h))),
        None => Err(divergence(None)),
    }
}

/// Why the kept heads could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// The file could not be read or written.
    #[error("kept audit heads {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a kept-heads file.
    #[error(
        "kept audit heads {path} are unreadable ({reason}); restore the file from a backup, or move it aside and accept the database's heads with `blindsight-server audit resolve`"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Group or others may access the file.
    #[error(
        "kept audit heads {path} are accessible to other users (mode {mode:o}); make them owner-only: chmod 600 {path}"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
}

/// The heads one signing key signed, in memory and (for a key from a file) on disk.
#[derive(Debug)]
pub struct Witness {
    path: Option<PathBuf>,
    kept: Mutex<BTreeMap<String, KeptHead>>,
    halted: Mutex<BTreeMap<String, Divergence>>,
    fault: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Witness {
    /// Heads kept only while the process runs (a key that lives only in memory).
    pub fn in_memory() -> Self {
        Self {
            path: None,
            kept: Mutex::default(),
            halted: Mutex::default(),
            fault: Mutex::default(),
        }
    }

    /// The heads kept beside the key file `key_path`, read now (none yet when the file does
    /// not exist).
    pub fn beside(key_path: &Path) -> Result<Self, WitnessError> {
        let mut name = key_path.as_os_str().to_owned();
        name.push(HEADS_SUFFIX);
        let path = PathBuf::from(name);
        let kept = read(&path)?.unwrap_or_default();
        Ok(Self {
            path: Some(path),
            kept: Mutex::new(kept),
            halted: Mutex::default(),
            fault: Mutex::default(),
        })
    }

    /// The file, if the heads are kept on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The head kept for `chain`.
    pub fn kept(&self, chain: &str) -> Option<KeptHead> {
        lock(&self.kept).get(chain).cloned()
    }

    /// Every kept head, by chain.
    pub fn all(&self) -> BTreeMap<String, KeptHead> {
        lock(&self.kept).clone()
    }

    /// Re-reads `chain`'s head from the file (an operator may have resolved it, or another
    /// process moved it); `true` when it changed.
    pub fn reload(&self, chain: &str) -> bool {
        let Some(path) = &self.path else {
            return false;
        };
        let Ok(on_disk) = read(path) else {
            return false;
        };
        let fresh = on_disk.unwrap_or_default().remove(chain);
        let mut kept = lock(&self.kept);
        if kept.get(chain) == fresh.as_ref() {
            return false;
        }
        match fresh {
            Some(h) => kept.insert(chain.to_owned(), h),
            None => kept.remove(chain),
        };
        true
    }

    /// Keeps `chain`'s new head (`seq`, `hash`) after its transaction committed, unless a
    /// later one is kept already; durably when the heads live in a file.
    pub fn keep(&self, chain: &str, seq: i64, hash: &str) -> Result<(), WitnessError> {
        let head = KeptHead {
            seq,
            hash: hash.to_owned(),
        };
        {
            let mut kept = lock(&self.kept);
            if kept.get(chain).is_some_and(|k| k.seq >= seq) {
                return Ok(());
            }
            kept.insert(chain.to_owned(), head.clone());
        }
        let written = self.update_file(|on_disk| {
            if on_disk.get(chain).is_none_or(|k| k.seq < seq) {
                on_disk.insert(chain.to_owned(), head);
            }
        });
        self.note_write(&written);
        written
    }

    /// Replaces `chain`'s kept head whatever it was (an operator's resolution).
    pub fn reset(&self, chain: &str, seq: i64, hash: &str) -> Result<(), WitnessError> {
        let head = KeptHead {
            seq,
            hash: hash.to_owned(),
        };
        lock(&self.kept).insert(chain.to_owned(), head.clone());
        let written = self.update_file(|on_disk| {
            on_disk.insert(chain.to_owned(), head);
        });
        self.note_write(&written);
        if written.is_ok() {
            lock(&self.halted).remove(chain);
        }
        written
    }

    fn note_write(&self, written: &Result<(), WitnessError>) {
        let mut fault = lock(&self.fault);
        match written {
            Ok(()) => *fault = None,
            Err(e) => {
                if fault.is_none() {
                    tracing::error!(error = %e, "couldn't keep the signed audit head beside the signing key: a rollback of the newest entries would go unnoticed until it can");
                }
                *fault = Some(e.to_string());
            }
        }
    }

    /// Marks `chain` halted (logged the first time).
    pub fn halt(&self, divergence: &Divergence) {
        let mut halted = lock(&self.halted);
        if halted.get(&divergence.chain) != Some(divergence) {
            tracing::error!(chain = %divergence.chain, cause = divergence.cause(), "{divergence}");
            halted.insert(divergence.chain.clone(), divergence.clone());
        }
    }

    /// Lifts `chain`'s halt: it extends its kept head again.
    pub fn clear(&self, chain: &str) {
        lock(&self.halted).remove(chain);
    }

    /// What keeps the audit log from being trusted now: halted chains, or a file that could
    /// not be written. Empty when all is well.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = lock(&self.halted).values().map(|d| d.to_string()).collect();
        if let Some(f) = lock(&self.fault).as_ref() {
            out.push(format!("couldn't keep the signed audit heads: {f}"));
        }
        out
    }

    /// Reads the file under its lock, lets `update` change it, and writes it back durably.
    fn update_file(
        &self,
        update: impl FnOnce(&mut BTreeMap<String, KeptHead>),
    ) -> Result<(), WitnessError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let io = |source| WitnessError::Io {
            path: path.clone(),
            source,
        };
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        let lock_file = private_options(false)
            .open(PathBuf::from(lock_name))
            .map_err(io)?;
        lock_file.lock().map_err(io)?;
        let mut chains = read(path)?.unwrap_or_default();
        update(&mut chains);
        let text = serde_json::to_vec_pretty(&HeadsFile {
            format: FORMAT.into(),
            chains,
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        let mut file = private_options(true).open(&tmp).map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Options that create an owner-only file (`new`: it must not exist).
fn private_options(new: bool) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if new {
        options.create_new(true);
    } else {
        options.create(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Reads a kept-heads file (`None` when there is none).
fn read(path: &Path) -> Result<Option<BTreeMap<String, KeptHead>>, WitnessError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(WitnessError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(WitnessError::Permissions {
                    path: path.to_owned(),
                    mode: mode & 0o7777,
                });
            }
        }
    }
    let invalid = |reason: String| WitnessError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let file: HeadsFile = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if file.format != FORMAT {
        return Err(invalid(format!("format {:?}, not {FORMAT:?}", file.format)));
    }
    for (chain, head) in &file.chains {
        if head.seq < 0 || crate::audit::chain::parse_hash(&head.hash).is_none() {
            return Err(invalid(format!("the head of chain {chain:?} is malformed")));
        }
    }
    Ok(Some(file.chains))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u8) -> String {
        hex::encode([n; 32])
    }

    #[test]
    fn heads_survive_a_restart_and_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.p8");
        let w = Witness::beside(&key).unwrap();
        assert_eq!(w.kept("t"), None);
        w.keep("t", 3, &hash(3)).unwrap();
        w.keep("t", 2, &hash(2)).unwrap();
        w.keep("", 1, &hash(1)).unwrap();
        let again = Witness::beside(&key).unwrap();
        assert_eq!(again.kept("t").unwrap().seq, 3);
        assert_eq!(again.kept("").unwrap().hash, hash(1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(w.path().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another process sharing the file moved a chain; a reload sees it.
        again.keep("t", 5, &hash(5)).unwrap();
        assert!(w.reload("t"));
        assert_eq!(w.kept("t").unwrap().seq, 5);
        // An operator's reset goes backwards.
        w.reset("t", 4, &hash(4)).unwrap();
        assert!(again.reload("t"));
        assert_eq!(again.kept("t").unwrap().seq, 4);
    }

    #[test]
    fn a_chain_that_does_not_extend_its_kept_head_is_named() {
        let kept = KeptHead {
            seq: 5,
            hash: hash(5),
        };
        judge("t", &kept, 5, Some(&hash(5))).unwrap();
        judge("t", &kept, 9, Some(&hash(5))).unwrap();
        let shortened = judge("t", &kept, 3, None).unwrap_err();
        assert_eq!(shortened.cause(), "shortened");
        assert!(
            shortened.to_string().contains("it ends at entry 3"),
            "{shortened}"
        );
        let rewritten = judge("", &kept, 7, Some(&hash(6))).unwrap_err();
        assert_eq!(rewritten.cause(), "rewritten");
        assert!(
            rewritten
                .to_string()
                .starts_with("the server-wide audit chain"),
            "{rewritten}"
        );
        let w = Witness::in_memory();
        w.halt(&rewritten);
        assert_eq!(w.problems().len(), 1);
        w.clear("");
        assert!(w.problems().is_empty());
    }

    #[test]
    fn a_damaged_or_shared_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.p8");
        let heads = dir.path().join(format!("key.p8{HEADS_SUFFIX}"));
        std::fs::write(&heads, b"{not json").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&heads, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let e = Witness::beside(&key).unwrap_err().to_string();
        assert!(e.contains("unreadable"), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(
                &heads,
                br#"{"format":"blindsight-kept-heads/v1","chains":{}}"#,
            )
            .unwrap();
            std::fs::set_permissions(&heads, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Witness::beside(&key).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }
}
