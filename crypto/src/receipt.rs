//! Job receipts: what the server signs when it stores a job's output, so anyone holding the
//! published audit key can check which function ran, on which exact inputs and model, under
//! which server key, and which output it produced.
//!
//! A receipt is canonical JSON ([`Receipt`], keys in byte order, no whitespace) kept as the
//! exact text that was signed, with an Ed25519 signature over [`RECEIPT_DOMAIN`] and that
//! text. The inputs are named by a Merkle root ([`inputs_root`]) over each record's id and the
//! SHA-256 of its stored proven list, in the job's order, so a receipt stays small for any
//! number of records and an auditor recomputes it from the stored ciphertext. The byte
//! layouts are specified in docs/FORMATS.md ("Receipts").

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::codec::sha256_hex;

/// Domain separation for receipt signatures: the audit key signs chain heads under another
/// domain, so neither can be passed off as the other.
pub const RECEIPT_DOMAIN: &str = "blindsight/receipt/v1";

/// The receipt layout this build writes and reads.
pub const RECEIPT_VERSION: u32 = 1;

/// Leaf and node prefixes of the inputs' Merkle tree (RFC 6962 style), so a leaf can never
/// be mistaken for a node.
const LEAF: u8 = 0;
const NODE: u8 = 1;

/// What a job's receipt states. Every digest is SHA-256, 64 lowercase hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Layout version ([`RECEIPT_VERSION`]).
    pub version: u32,
    /// The job.
    pub job_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// `risk_score` or `aggregate`.
    pub kind: String,
    /// Function id and version, e.g. `risk_score/crisis-v1` or `aggregate/v2`.
    pub function: String,
    /// Digest of the job's frozen spec (the exact request, model and record ids).
    pub spec_digest: String,
    /// Digest of the model's canonical JSON (risk jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_digest: Option<String>,
    /// The key set the inputs are encrypted under.
    pub key_id: String,
    /// Digest of the server (evaluation) key the job ran with: the key set's manifest
    /// fingerprint for it.
    pub server_key_fingerprint: String,
    /// The parameter-set id.
    pub parameter_set: String,
    /// The FFT code path the job ran on ([`fft_path`]): outputs are bit-for-bit reproducible
    /// on the same path.
    pub fft: String,
    /// How many records the job read.
    pub inputs: u64,
    /// [`inputs_root`] of the records, in the job's order.
    pub inputs_root: String,
    /// Digest of the stored output envelope.
    pub output_digest: String,
    /// For a job whose query asks for privacy: the zCDP ρ spent and the commitment to the
    /// seed its noise was drawn from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<ReceiptPrivacy>,
    /// For a job cut into tasks: how, and what each task produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<ReceiptTasks>,
    /// The server build that ran the job, e.g. `blindsight-server/0.1.0`.
    pub build: String,
    /// When the output was stored (seconds since the epoch).
    pub at: i64,
}

/// The privacy a receipt states (`crate::dp`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptPrivacy {
    /// ρ of zCDP, in millionths.
    pub rho_micro: u64,
    /// `crate::dp::seed_commitment` of the noise seed.
    pub seed_commitment: String,
}

/// How a job cut into tasks was computed (`crate::compute::task_ranges`): the records per
/// task, and a Merkle root over the digests of the tasks' partial results in task order
/// ([`tasks_root`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptTasks {
    /// Records per task (the last may hold fewer).
    pub task_records: u64,
    /// How many tasks.
    pub tasks: u64,
    /// [`tasks_root`] of their partial results.
    pub outputs_root: String,
}

/// The Merkle root (as [`inputs_root_of_leaves`]) over the SHA-256 digests of a job's tasks'
/// partial results, in task order.
pub fn tasks_root(partials: &[&[u8]]) -> String {
    let leaves: Vec<[u8; 32]> = partials
        .iter()
        .map(|p| {
            let d = ring::digest::digest(&ring::digest::SHA256, p);
            let mut leaf = [0u8; 32];
            leaf.copy_from_slice(d.as_ref());
            leaf
        })
        .collect();
    inputs_root_of_leaves(&leaves)
}

/// A receipt as stored and served: the signed text, the signing key's id and the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    /// The receipt's canonical JSON, exactly as signed.
    pub receipt: String,
    /// The signing key's id: SHA-256 of its Ed25519 public key, hex.
    pub key_id: String,
    /// Ed25519 signature over [`receipt_message`], 128 hex digits.
    pub signature: String,
}

/// Why a receipt does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt is not a receipt this build reads.
    #[error("receipt is malformed: {0}")]
    Malformed(String),
    /// It names a signing key the auditor does not trust.
    #[error("receipt is signed by key {0}, which is not a published audit key")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("receipt signature does not verify with key {0}")]
    BadSignature(String),
}

/// The FFT code path this process evaluates on, e.g. `dif4/x86-64-v4`.
///
/// Every bootstrap multiplies polynomials through tfhe's floating-point FFT, and the rounding
/// of that FFT ends up in the output ciphertexts' low bits. The build pins one FFT algorithm
/// (tfhe's `experimental-force_fft_algo_dif4`: no per-process choice by timing), and tfhe-fft
/// picks its SIMD code at run time: AVX-512 (`x86-64-v4`), AVX2 with FMA (`x86-64-v3`), or
/// portable code (`scalar`). The same inputs, key and path give the same output bytes on any
/// machine and thread count; two paths may round differently.
pub fn fft_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if pulp::x86::V4::try_new().is_some() {
            return "dif4/x86-64-v4";
        }
        if pulp::x86::V3::try_new().is_some() {
            return "dif4/x86-64-v3";
        }
    }
    "dif4/scalar"
}

/// The bytes a receipt signature covers: the domain, length-prefixed, then the receipt text.
pub fn receipt_message(receipt: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + RECEIPT_DOMAIN.len() + receipt.len());
    out.extend_from_slice(&(RECEIPT_DOMAIN.len() as u64).to_be_bytes());
    out.extend_from_slice(RECEIPT_DOMAIN.as_bytes());
    out.extend_from_slice(receipt.as_bytes());
    out
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// One record's leaf of the inputs tree ([`inputs_root`]): for a job that hashes its inputs as
/// it reads them and keeps 32 bytes per record.
pub fn input_leaf(record_id: &str, proven_list_digest: &str) -> [u8; 32] {
    leaf_hash(record_id, proven_list_digest)
}

/// [`inputs_root`] of leaves made with [`input_leaf`].
pub fn inputs_root_of_leaves(leaves: &[[u8; 32]]) -> String {
    hex::encode(tree_hash(leaves))
}

fn leaf_hash(record_id: &str, proven_list_digest: &str) -> [u8; 32] {
    sha256(&[
        &[LEAF],
        &(record_id.len() as u64).to_be_bytes(),
        record_id.as_bytes(),
        proven_list_digest.as_bytes(),
    ])
}

fn tree_hash(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => sha256(&[]),
        [one] => *one,
        _ => {
            // Split at the largest power of two below the count (RFC 6962, section 2.1).
            let split = 1usize << (usize::BITS - 1 - (leaves.len() - 1).leading_zeros());
            let left = tree_hash(&leaves[..split]);
            let right = tree_hash(&leaves[split..]);
            sha256(&[&[NODE], &left, &right])
        }
    }
}

/// The Merkle root (hex) of a job's inputs: one leaf per record, in the job's order, hashing
/// `0x00`, the record id's length (8 bytes, big-endian), the id, and the hex digest of its
/// stored proven list; each node hashes `0x01` and its two children. An empty list's root is
/// SHA-256 of nothing.
pub fn inputs_root<'a>(inputs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let leaves: Vec<[u8; 32]> = inputs
        .into_iter()
        .map(|(id, digest)| leaf_hash(id, digest))
        .collect();
    hex::encode(tree_hash(&leaves))
}

/// [`inputs_root`] of records given with their stored proven lists (each list is hashed
/// here): what a worker states and an auditor recomputes.
pub fn inputs_root_of_lists<'a>(records: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let leaves: Vec<[u8; 32]> = records
        .into_iter()
        .map(|(id, list)| leaf_hash(id, &sha256_hex(list)))
        .collect();
    hex::encode(tree_hash(&leaves))
}

impl Receipt {
    /// The canonical JSON this receipt is signed as: keys in byte order, no whitespace.
    pub fn canonical(&self) -> String {
        // Through a `Value`: serde_json's maps keep keys sorted, whatever the field order.
        let value = serde_json::to_value(self).unwrap_or_default();
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_value(value).unwrap_or_default();
        serde_json::to_string(&sorted).unwrap_or_default()
    }
}

impl SignedReceipt {
    /// SHA-256 of the stored JSON (what the audit log's `job.succeeded` entry names).
    pub fn digest_of(stored_json: &str) -> String {
        sha256_hex(stored_json.as_bytes())
    }

    /// Checks the signature with whichever of `trusted` (32-byte Ed25519 public keys) the
    /// receipt names, and returns what it states.
    pub fn verify(&self, trusted: &[Vec<u8>]) -> Result<Receipt, ReceiptError> {
        let key = trusted
            .iter()
            .find(|k| sha256_hex(k) == self.key_id)
            .ok_or_else(|| ReceiptError::UnknownKey(self.key_id.clone()))?;
        let signature = hex::decode(&self.signature)
            .map_err(|_| ReceiptError::Malformed("the signature is not hex".into()))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&receipt_message(&self.receipt), &signature)
            .map_err(|_| ReceiptError::BadSignature(self.key_id.clone()))?;
        let receipt: Receipt = serde_json::from_str(&self.receipt)
            .map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if receipt.version != RECEIPT_VERSION {
            return Err(ReceiptError::Malformed(format!(
                "layout version {} (this build reads {RECEIPT_VERSION})",
                receipt.version
            )));
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{Ed25519KeyPair, KeyPair};

    use super::*;

    fn receipt() -> Receipt {
        Receipt {
            version: RECEIPT_VERSION,
            job_id: "job-1".into(),
            tenant_id: "tenant-a".into(),
            kind: "risk_score".into(),
            function: "risk_score/crisis-v1".into(),
            spec_digest: "00".repeat(32),
            model_digest: Some("11".repeat(32)),
            key_id: "ks".into(),
            server_key_fingerprint: "22".repeat(32),
            parameter_set: "p".into(),
            fft: fft_path().into(),
            inputs: 2,
            inputs_root: inputs_root([("a", "aa"), ("b", "bb")]),
            output_digest: "33".repeat(32),
            privacy: None,
            tasks: None,
            build: "blindsight-server/0.0.0".into(),
            at: 1_800_000_000,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_round_trips() {
        let r = receipt();
        let text = r.canonical();
        assert!(text.starts_with(r#"{"at":1800000000,"build":"#), "{text}");
        assert!(!text.contains(' '));
        assert_eq!(serde_json::from_str::<Receipt>(&text).unwrap(), r);
        let mut risk_free = r.clone();
        risk_free.model_digest = None;
        assert!(!risk_free.canonical().contains("model_digest"));
    }

    #[test]
    fn signatures_verify_and_each_forgery_is_refused() {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[3u8; 32]).unwrap();
        let pk = pair.public_key().as_ref().to_vec();
        let text = receipt().canonical();
        let signed = SignedReceipt {
            signature: hex::encode(pair.sign(&receipt_message(&text)).as_ref()),
            receipt: text,
            key_id: sha256_hex(&pk),
        };
        assert_eq!(signed.verify(std::slice::from_ref(&pk)).unwrap(), receipt());

        let mut forged = signed.clone();
        forged.receipt = forged.receipt.replace("job-1", "job-2");
        assert!(matches!(
            forged.verify(std::slice::from_ref(&pk)),
            Err(ReceiptError::BadSignature(_))
        ));
        let other = Ed25519KeyPair::from_seed_unchecked(&[4u8; 32]).unwrap();
        let other_pk = other.public_key().as_ref().to_vec();
        assert!(matches!(
            signed.verify(std::slice::from_ref(&other_pk)),
            Err(ReceiptError::UnknownKey(_))
        ));
        // Signed by an untrusted key that names itself: still refused.
        let mut resigned = signed.clone();
        resigned.key_id = sha256_hex(&other_pk);
        resigned.signature = hex::encode(other.sign(&receipt_message(&signed.receipt)).as_ref());
        assert!(resigned.verify(std::slice::from_ref(&pk)).is_err());
        // A head signature (another domain) over the same text is not a receipt signature.
        let mut bad = signed.clone();
        bad.signature = hex::encode(pair.sign(signed.receipt.as_bytes()).as_ref());
        assert!(bad.verify(std::slice::from_ref(&pk)).is_err());
        bad.signature = "zz".into();
        assert!(matches!(
            bad.verify(std::slice::from_ref(&pk)),
            Err(ReceiptError::Malformed(_))
        ));
    }

    #[test]
    fn the_inputs_root_depends_on_every_input_and_its_order() {
        let root = inputs_root([("a", "aa"), ("b", "bb"), ("c", "cc")]);
        assert_ne!(root, inputs_root([("b", "bb"), ("a", "aa"), ("c", "cc")]));
        assert_ne!(root, inputs_root([("a", "aa"), ("b", "bx"), ("c", "cc")]));
        assert_ne!(root, inputs_root([("a", "aa"), ("b", "bb")]));
        // Ids and digests cannot be re-split.
        assert_ne!(inputs_root([("ab", "c")]), inputs_root([("a", "bc")]));
        // The layout is pinned (docs/FORMATS.md).
        assert_eq!(inputs_root([]), sha256_hex(&[]));
        let one = inputs_root([("a", "aa")]);
        assert_eq!(one, hex::encode(leaf_hash("a", "aa")));
        for n in 1..=9 {
            let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
            let root = inputs_root(ids.iter().map(|i| (i.as_str(), "d")));
            assert_eq!(root.len(), 64);
        }
        // Over stored lists: the root of each list's digest.
        let lists: [(&str, &[u8]); 2] = [("a", b"list a"), ("b", b"list b")];
        assert_eq!(
            inputs_root_of_lists(lists),
            inputs_root([
                ("a", sha256_hex(b"list a").as_str()),
                ("b", sha256_hex(b"list b").as_str())
            ])
        );
    }
}
