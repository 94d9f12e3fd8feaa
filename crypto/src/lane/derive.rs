//! The FHE path from a lane list: radix blocks derived on the server from the record's one
//! proven list, so an app proves each record once for both lanes.
//!
//! A field of 2k bits occupies 2k bit slots, LSB first. Block i of its radix form is
//! `2^12 × (slot[2i] + 2 × slot[2i+1])`: a leveled linear combination of two expanded slot
//! ciphertexts, scaled from the lane's Δ = 2^47 to the compute encoding's Δ = 2^59 (2-bit
//! message, 2-bit carry, one padding bit). The key set's existing casting keyswitch (compact
//! key → compute key) and one bootstrap per block then give a fresh compute-domain block,
//! exactly as expanding an ordinary compact list costs. The proof makes every slot a bit, so
//! every derived block holds 0..=3 (a boolean's block 0..=1) and its carries are clear.
//!
//! Noise: the combination multiplies a slot's noise by at most 3 × 2^12. A worst-case list the
//! proof accepts has slot noise below 2^28.7 (2^29.1 with the key's bias), so a derived block
//! carries under 2^42.7 of noise against a decision margin of 2^58, far below the keyswitch
//! and modulus-switch noise the parameter set is built around.

use rayon::prelude::*;
use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertextCount, LweCiphertextListOwned, LweCiphertextOwned,
    expand_lwe_compact_ciphertext_list,
};
use tfhe::integer::RadixCiphertext;
use tfhe::shortint::ciphertext::{Degree, NoiseLevel};
use tfhe::shortint::key_switching_key::KeySwitchingKeyMaterial;
use tfhe::shortint::parameters::{CarryModulus, MessageModulus};
use tfhe::shortint::{AtomicPatternKind, Ciphertext, KeySwitchingKeyView, PBSOrder};
use tfhe::{CompressedServerKey, ServerKey};

use super::list::LaneList;
use super::sum::LANE_CIPHERTEXT_WORDS;
use crate::params::{self, BITS_PER_BLOCK, LANE_DELTA_LOG};
use crate::{Error, Result};

/// log2 of the compute encoding's Δ for a 2-bit message with 2 carry bits and a padding bit.
const COMPUTE_DELTA_LOG: u32 = 59;

/// A key set's evaluation key as the server computes with it: the high-level server key, and
/// the compact-key → compute-key casting keyswitch taken out of it to derive radix blocks from
/// lane lists (nothing else uses it, so it is held once, not copied).
pub struct ComputeKey {
    server_key: ServerKey,
    casting: KeySwitchingKeyMaterial,
}

impl std::fmt::Debug for ComputeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComputeKey").finish_non_exhaustive()
    }
}

impl ComputeKey {
    /// Decompresses a key set's server key and splits off its casting keyswitch.
    pub fn from_compressed(key: &CompressedServerKey) -> Result<Self> {
        let (
            integer,
            casting,
            compression,
            decompression,
            squash,
            squash_comp,
            rerand,
            oprf,
            trans,
            tag,
        ) = key.decompress().into_raw_parts();
        let casting = casting
            .ok_or_else(|| {
                Error::Fhe(
                    "the server key has no compact-key casting keyswitch; it was not made by this build"
                        .into(),
                )
            })?
            .into_raw_parts();
        let server_key = ServerKey::from_raw_parts(
            integer,
            None,
            compression,
            decompression,
            squash,
            squash_comp,
            rerand,
            oprf,
            trans,
            tag,
        );
        Ok(Self {
            server_key,
            casting,
        })
    }

    /// The high-level server key (install it with `tfhe::set_server_key` on compute threads).
    pub fn server_key(&self) -> &ServerKey {
        &self.server_key
    }

    /// Approximate memory held, in bytes (for key caches).
    pub fn memory_size(&self) -> u64 {
        crate::encoded_size(&self.server_key).saturating_add(crate::encoded_size(&self.casting))
    }

    /// Derives one radix block from `per_block` bit slots (1 for a boolean, otherwise 2)
    /// starting at slot `first` of an expanded list.
    fn block(&self, expanded: &[u64], first: usize, per_block: usize) -> Ciphertext {
        let integer: &tfhe::integer::ServerKey = self.server_key.as_ref();
        let shortint: &tfhe::shortint::ServerKey = integer.as_ref();
        let cast = KeySwitchingKeyView::from_raw_parts(self.casting.as_view(), shortint, None);
        let scale = 1u64 << (COMPUTE_DELTA_LOG - LANE_DELTA_LOG);
        let mut words = vec![0u64; LANE_CIPHERTEXT_WORDS];
        for k in 0..per_block {
            let slot = &expanded[(first + k) * LANE_CIPHERTEXT_WORDS..][..LANE_CIPHERTEXT_WORDS];
            let w = scale << k;
            for (acc, c) in words.iter_mut().zip(slot) {
                *acc = acc.wrapping_add(c.wrapping_mul(w));
            }
        }
        let ct = Ciphertext::new(
            LweCiphertextOwned::from_container(words, CiphertextModulus::new_native()),
            Degree::new((1 << per_block) - 1),
            NoiseLevel::UNKNOWN,
            MessageModulus(4),
            CarryModulus(4),
            AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
        );
        cast.cast(&ct)
    }

    /// Derives every field of a record from its lane list: `fields` gives each field's bit
    /// width in slot order (1 for a boolean). Needs no thread-local key.
    pub fn derive(&self, list: &LaneList, fields: &[usize]) -> Result<Vec<RadixCiphertext>> {
        let needed: usize = fields.iter().sum();
        if needed > list.slots() {
            return Err(Error::ShapeMismatch(format!(
                "the fields need {needed} slots, the lane list has {}",
                list.slots()
            )));
        }
        let size = params::PKE_PARAMS.encryption_lwe_dimension.to_lwe_size();
        let mut expanded = LweCiphertextListOwned::new(
            0u64,
            size,
            LweCiphertextCount(list.slots()),
            CiphertextModulus::new_native(),
        );
        expand_lwe_compact_ciphertext_list(&mut expanded, &list.ct);
        let expanded = expanded.into_container();
        // Every block of every field, (field, first slot, slots per block): bootstrapped in
        // parallel, then regrouped by field in order.
        let mut plan = Vec::new();
        let mut first = 0;
        for (f, &bits) in fields.iter().enumerate() {
            let per_block = if bits == 1 {
                1
            } else {
                BITS_PER_BLOCK as usize
            };
            for b in 0..bits.div_ceil(per_block) {
                plan.push((f, first + b * per_block, per_block));
            }
            first += bits;
        }
        let blocks: Vec<Ciphertext> = plan
            .par_iter()
            .map(|&(_, first, per_block)| self.block(&expanded, first, per_block))
            .collect();
        let mut out: Vec<Vec<Ciphertext>> = vec![Vec::new(); fields.len()];
        for ((f, _, _), block) in plan.into_iter().zip(blocks) {
            out[f].push(block);
        }
        Ok(out.into_iter().map(RadixCiphertext::from).collect())
    }
}
