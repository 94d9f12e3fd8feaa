//! Lane lists: one bit per slot, encrypted under the key holder's compact public key at
//! Δ = 2^47 and proven (ZK scheme v2) to hold a bit in every slot, bound to the record's
//! metadata.
//!
//! Wire format, version 1 (integers big-endian):
//!
//! | field     | size            | notes                                               |
//! |-----------|-----------------|-----------------------------------------------------|
//! | magic     | 4               | `BLSL`                                              |
//! | version   | 2               | `1`                                                 |
//! | slots     | 2               | `1..=`[`LANE_MAX_SLOTS`]                            |
//! | mask      | 8 × 2048        | the list's one mask polynomial                      |
//! | bodies    | 8 × slots       | one body per slot                                   |
//! | proof     | 4 + n           | tfhe safe serialization of the `CompactPkeProof`, n ≤ [`LANE_PROOF_LIMIT`] |
//!
//! Every length is known from the slot count before anything is allocated, and nothing may
//! follow the proof.

use rand_core::{CryptoRng, RngCore};
use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertextCount, LweCompactCiphertextListOwned, LweCompactPublicKey,
    LweCompactPublicKeyOwned,
};
use tfhe::shortint::CompactPublicKey as ShortintCompactPublicKey;
use tfhe::zk::{
    CompactPkeCrs, CompactPkeCrsConformanceParams, CompactPkeProof,
    CompactPkeProofConformanceParams, CompactPkeZkScheme, ZkComputeLoad, ZkMSBZeroPaddingBitCount,
};

use crate::codec;
use crate::envelope::Reader;
use crate::params::{
    self, LANE_LWE_DIMENSION, LANE_MAX_SLOTS, LANE_MSB_ZERO_PADDING, LANE_PLAINTEXT_MODULUS,
};
use crate::{Error, Result};

/// The four bytes a lane list starts with.
pub const LANE_MAGIC: [u8; 4] = *b"BLSL";
/// The only lane-list format version this build writes and reads.
pub const LANE_FORMAT_VERSION: u16 = 1;
/// The largest serialized proof accepted (one proof measures 2,670 bytes).
pub const LANE_PROOF_LIMIT: u64 = 64 << 10;
/// The largest lane list accepted: a full list and the largest proof.
pub const LANE_LIST_LIMIT: u64 =
    (8 + 8 * (LANE_LWE_DIMENSION + LANE_MAX_SLOTS) + 4) as u64 + LANE_PROOF_LIMIT;

/// ring's system CSPRNG as a `rand_core` generator, for generating the lane CRS.
struct SystemRng(ring::rand::SystemRandom);

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The OS generator failing is unrecoverable for key generation; `try_fill_bytes`
        // reports it to callers that can handle it.
        self.try_fill_bytes(dest)
            .expect("the operating system's random generator failed");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), rand_core::Error> {
        use ring::rand::SecureRandom;
        self.0.fill(dest).map_err(|_| {
            rand_core::Error::from(
                std::num::NonZeroU32::new(rand_core::Error::CUSTOM_START)
                    .expect("a non-zero constant"),
            )
        })
    }
}

impl CryptoRng for SystemRng {}

/// Generates the lane CRS: LWE dimension 2048, up to [`LANE_MAX_SLOTS`] slots, plaintext
/// modulus t = 2^17 with 16 zero MSBs, so each slot is proven to be 0 or 1.
///
/// Not `CompactPkeCrs::from_shortint_params`: that fixes one zero MSB, which would prove only
/// `slot < 2^16` and let one record fill the whole plaintext space of a sum.
pub fn generate_lane_crs() -> Result<CompactPkeCrs> {
    let pke = params::PKE_PARAMS;
    CompactPkeCrs::new(
        pke.encryption_lwe_dimension,
        LweCiphertextCount(LANE_MAX_SLOTS),
        pke.encryption_noise_distribution,
        pke.ciphertext_modulus,
        LANE_PLAINTEXT_MODULUS,
        ZkMSBZeroPaddingBitCount(LANE_MSB_ZERO_PADDING),
        &mut SystemRng(ring::rand::SystemRandom::new()),
    )
    .map_err(|e| Error::Fhe(format!("couldn't generate the lane CRS: {e}")))
}

/// The conformance parameters every lane CRS must meet (built by hand: tfhe's helper assumes
/// one zero MSB).
pub fn lane_crs_conformance() -> Result<CompactPkeCrsConformanceParams> {
    let pke = params::PKE_PARAMS;
    let (dim, count, noise_bound, q, t) = CompactPkeCrs::prepare_crs_parameters(
        pke.encryption_lwe_dimension,
        LweCiphertextCount(LANE_MAX_SLOTS),
        pke.encryption_noise_distribution,
        pke.ciphertext_modulus,
        LANE_PLAINTEXT_MODULUS,
        CompactPkeZkScheme::V2,
    )
    .map_err(|e| Error::Fhe(e.to_string()))?;
    Ok(CompactPkeCrsConformanceParams::new(
        dim.0,
        count.0,
        noise_bound,
        q,
        t,
        LANE_MSB_ZERO_PADDING,
    ))
}

/// The key holder's compact public key as the lane encrypts under it: the same key material
/// as the key set's compact public key, with the lane's message encoding (Δ = 2^47).
#[derive(Clone)]
pub struct LanePublicKey {
    key: LweCompactPublicKeyOwned<u64>,
}

impl std::fmt::Debug for LanePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanePublicKey").finish_non_exhaustive()
    }
}

impl LanePublicKey {
    /// The lane view of a key set's compact public key.
    pub fn from_compact_public_key(key: &tfhe::CompactPublicKey) -> Self {
        let (integer, _tag) = key.clone().into_raw_parts();
        let (key, _params) = integer.into_raw_parts().into_raw_parts();
        Self { key }
    }

    pub(crate) fn lwe(&self) -> &LweCompactPublicKey<Vec<u64>> {
        &self.key
    }

    /// A key from its LWE compact public key (tests build keys with a chosen error).
    #[cfg(test)]
    pub(super) fn from_lwe(key: LweCompactPublicKeyOwned<u64>) -> Self {
        Self { key }
    }

    /// Encrypts `slots` (each 0 or 1) and proves, bound to `metadata`, that every slot is a
    /// bit. tfhe's prover does not range-check (an out-of-range slot gives a proof that fails
    /// verification), so the slots are checked here first.
    pub fn encrypt_and_prove(
        &self,
        slots: &[u64],
        crs: &CompactPkeCrs,
        metadata: &[u8],
    ) -> Result<LaneList> {
        if slots.is_empty() || slots.len() > LANE_MAX_SLOTS {
            return Err(Error::ShapeMismatch(format!(
                "a lane list holds 1 to {LANE_MAX_SLOTS} slots, not {}",
                slots.len()
            )));
        }
        if let Some(i) = slots.iter().position(|&s| s > 1) {
            return Err(Error::ShapeMismatch(format!(
                "lane slot {i} holds {}; every slot is a single bit",
                slots[i]
            )));
        }
        let key = ShortintCompactPublicKey::from_raw_parts(self.key.clone(), params::lane_params());
        let proven = key
            .encrypt_and_prove_slice(slots, crs, metadata, ZkComputeLoad::Proof, 2)
            .map_err(|e| Error::Fhe(e.to_string()))?;
        let mut lists = proven.into_raw_parts();
        if lists.len() != 1 {
            return Err(Error::Fhe(format!(
                "the prover split {} slots into {} lists; the CRS holds {LANE_MAX_SLOTS}",
                slots.len(),
                lists.len()
            )));
        }
        let (list, proof) = lists.remove(0);
        Ok(LaneList {
            body: LaneBody { ct: list.ct_list },
            proof,
        })
    }
}

/// A lane list's ciphertext: the mask and one body per slot, without the proof. What sums
/// read: a stored list's proof was verified at ingest, and decoding one (curve points) costs
/// far more than adding the list, so [`LaneBody::decode`] checks the framing and the proof's
/// length but does not parse it. A distinct type from the records' FHE values, so it can never
/// reach the compute keys as a compact list (its encoding is not theirs).
#[derive(Clone)]
pub struct LaneBody {
    pub(crate) ct: LweCompactCiphertextListOwned<u64>,
}

impl std::fmt::Debug for LaneBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneBody")
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

impl LaneBody {
    /// How many slots the list holds.
    pub fn slots(&self) -> usize {
        self.ct.lwe_ciphertext_count().0
    }

    /// The list's coefficients: the mask (2048 words) then one body per slot.
    pub(crate) fn words(&self) -> &[u64] {
        self.ct.as_ref()
    }

    /// True when the mask is all zero: the list was made without randomness and every slot
    /// is readable in clear. Such lists are refused at ingest.
    pub fn has_zero_mask(&self) -> bool {
        self.words()[..LANE_LWE_DIMENSION].iter().all(|&w| w == 0)
    }

    /// Decodes a lane list's ciphertext: magic, version, slot count, exact lengths and the
    /// proof's length, but not the proof itself (see the type's documentation).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(frame(bytes)?.0)
    }
}

/// Parses the framing: the ciphertext, and the proof's bytes (length-checked, not decoded).
fn frame(bytes: &[u8]) -> Result<(LaneBody, &[u8])> {
    let what = "lane list";
    if bytes.len() as u64 > LANE_LIST_LIMIT {
        return Err(Error::TooLarge {
            what,
            size: bytes.len() as u64,
            limit: LANE_LIST_LIMIT,
        });
    }
    let mut r = Reader::new(what, bytes);
    if r.take(4)? != LANE_MAGIC {
        return Err(r.malformed("does not start with the lane-list magic"));
    }
    let version = u16::from_be_bytes(r.array()?);
    if version != LANE_FORMAT_VERSION {
        return Err(r.malformed(&format!(
            "format version {version} is not supported (this build reads {LANE_FORMAT_VERSION})"
        )));
    }
    let slots = usize::from(u16::from_be_bytes(r.array()?));
    if slots == 0 || slots > LANE_MAX_SLOTS {
        return Err(r.malformed(&format!(
            "{slots} slots; a lane list holds 1 to {LANE_MAX_SLOTS}"
        )));
    }
    let raw = r.take(8 * (LANE_LWE_DIMENSION + slots))?;
    let words: Vec<u64> = raw
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8-byte chunks")))
        .collect();
    let proof_len = u64::from(u32::from_be_bytes(r.array()?));
    if proof_len > LANE_PROOF_LIMIT {
        return Err(Error::TooLarge {
            what: "lane proof",
            size: proof_len,
            limit: LANE_PROOF_LIMIT,
        });
    }
    // Bounded just above.
    let proof = r.take(proof_len as usize)?;
    r.finish()?;
    let ct = LweCompactCiphertextListOwned::from_container(
        words,
        params::PKE_PARAMS.encryption_lwe_dimension.to_lwe_size(),
        LweCiphertextCount(slots),
        CiphertextModulus::new_native(),
    );
    Ok((LaneBody { ct }, proof))
}

/// A proven lane list: its ciphertext ([`LaneBody`]) and the proof that every slot is a bit.
#[derive(Clone)]
pub struct LaneList {
    body: LaneBody,
    proof: CompactPkeProof,
}

impl std::fmt::Debug for LaneList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneList")
            .field("slots", &self.slots())
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for LaneList {
    type Target = LaneBody;

    fn deref(&self) -> &LaneBody {
        &self.body
    }
}

impl LaneList {
    /// A list from its ciphertext and proof (tests build lists with chosen noise).
    #[cfg(test)]
    pub(crate) fn from_parts(
        ct: LweCompactCiphertextListOwned<u64>,
        proof: CompactPkeProof,
    ) -> Self {
        Self {
            body: LaneBody { ct },
            proof,
        }
    }

    /// The ciphertext, mutably (tests tamper with it after proving).
    #[cfg(test)]
    pub(crate) fn ct_mut(&mut self) -> &mut LweCompactCiphertextListOwned<u64> {
        &mut self.body.ct
    }

    /// The ciphertext without the proof.
    pub fn body(&self) -> &LaneBody {
        &self.body
    }

    /// The ciphertext, without the proof.
    pub fn into_body(self) -> LaneBody {
        self.body
    }

    /// Checks the proof against the CRS, the lane public key and `metadata`.
    pub fn verify(&self, crs: &CompactPkeCrs, key: &LanePublicKey, metadata: &[u8]) -> Result<()> {
        if crs
            .verify(&self.body.ct, key.lwe(), &self.proof, metadata)
            .is_valid()
        {
            Ok(())
        } else {
            Err(Error::ProofInvalid)
        }
    }

    /// Encodes the list in the lane wire format.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let proof = codec::encode("lane proof", &self.proof, LANE_PROOF_LIMIT)?;
        let words = self.words();
        let mut out = Vec::with_capacity(8 + 8 * words.len() + 4 + proof.len());
        out.extend_from_slice(&LANE_MAGIC);
        out.extend_from_slice(&LANE_FORMAT_VERSION.to_be_bytes());
        // At most LANE_MAX_SLOTS (checked when the list was made or decoded).
        out.extend_from_slice(&(self.slots() as u16).to_be_bytes());
        for w in words {
            out.extend_from_slice(&w.to_be_bytes());
        }
        // Bounded by LANE_PROOF_LIMIT above.
        out.extend_from_slice(&(proof.len() as u32).to_be_bytes());
        out.extend_from_slice(&proof);
        Ok(out)
    }

    /// Decodes a lane list: magic, version, slot count, exact lengths, and the proof's size
    /// limit and conformance (scheme v2). Does not verify the proof: see [`Self::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let (body, proof) = frame(bytes)?;
        let proof: CompactPkeProof = codec::decode_conformant(
            "lane proof",
            proof,
            LANE_PROOF_LIMIT,
            &CompactPkeProofConformanceParams::new(CompactPkeZkScheme::V2),
        )?;
        Ok(Self { body, proof })
    }
}
