//! Summing lane lists on the server, and the ciphertexts a lane output travels as.
//!
//! Lists under one compact public key add coefficient-wise: the wrapping sum of their words is
//! again a compact list, which decrypts to the slot-wise sum of the messages plus the summed
//! noise. No keyswitch, no bootstrap, no key: the server needs nothing but the lists. Adds are
//! wrapping and in a fixed order, so the same records give the same bytes (receipts).

use tfhe::core_crypto::prelude::{
    CiphertextModulus, LweCiphertextCount, LweCiphertextListOwned, LweCompactCiphertextList,
    expand_lwe_compact_ciphertext_list,
};

use super::list::LaneBody;
use crate::params::{self, LANE_LWE_DIMENSION, LANE_MAX_SLOTS};
use crate::{Error, Result};

/// Words of one LWE ciphertext under the compact key: the mask and the body.
pub const LANE_CIPHERTEXT_WORDS: usize = LANE_LWE_DIMENSION + 1;

/// A running slot-wise sum of lane lists of one width, in bounded memory (one list's worth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneSum {
    words: Vec<u64>,
    slots: usize,
    records: u64,
}

impl LaneSum {
    /// An empty sum of lists with `slots` slots.
    pub fn new(slots: usize) -> Result<Self> {
        if slots == 0 || slots > LANE_MAX_SLOTS {
            return Err(Error::ShapeMismatch(format!(
                "a lane list holds 1 to {LANE_MAX_SLOTS} slots, not {slots}"
            )));
        }
        Ok(Self {
            words: vec![0; LANE_LWE_DIMENSION + slots],
            slots,
            records: 0,
        })
    }

    /// Adds one list (wrapping, coefficient-wise).
    pub fn add(&mut self, list: &LaneBody) -> Result<()> {
        if list.slots() != self.slots {
            return Err(Error::ShapeMismatch(format!(
                "a lane list of {} slots added to a sum of {}-slot lists",
                list.slots(),
                self.slots
            )));
        }
        for (acc, w) in self.words.iter_mut().zip(list.words()) {
            *acc = acc.wrapping_add(*w);
        }
        self.records += 1;
        Ok(())
    }

    /// Removes one list that was added (wrapping, coefficient-wise): a rollup part read after
    /// more records joined it gives back the sum as it stood when a job was created.
    pub fn subtract(&mut self, list: &LaneBody) -> Result<()> {
        if list.slots() != self.slots || self.records == 0 {
            return Err(Error::ShapeMismatch(format!(
                "a lane list of {} slots taken from a sum of {} {}-slot lists",
                list.slots(),
                self.records,
                self.slots
            )));
        }
        for (acc, w) in self.words.iter_mut().zip(list.words()) {
            *acc = acc.wrapping_sub(*w);
        }
        self.records -= 1;
        Ok(())
    }

    /// Adds another sum of lists of the same width.
    pub fn merge(&mut self, other: &LaneSum) -> Result<()> {
        if other.slots != self.slots {
            return Err(Error::ShapeMismatch(format!(
                "a sum of {}-slot lists added to a sum of {}-slot lists",
                other.slots, self.slots
            )));
        }
        for (acc, w) in self.words.iter_mut().zip(&other.words) {
            *acc = acc.wrapping_add(*w);
        }
        self.records += other.records;
        Ok(())
    }

    /// The summed words, little-endian: how a rollup part is stored (its record count and
    /// width are stored beside it).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// A stored sum of `records` lists of `slots` slots; the length must be exact.
    pub fn from_bytes(bytes: &[u8], slots: usize, records: u64) -> Result<Self> {
        let mut sum = Self::new(slots)?;
        if bytes.len() != 8 * sum.words.len() {
            return Err(Error::Malformed {
                what: "lane sum",
                reason: format!(
                    "{} bytes, expected {} for {slots} slots",
                    bytes.len(),
                    8 * sum.words.len()
                ),
            });
        }
        for (w, c) in sum.words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(c.try_into().expect("8-byte chunks"));
        }
        sum.records = records;
        Ok(sum)
    }

    /// Lists added so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Slots per list.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Expands the summed list into one LWE ciphertext per slot.
    pub fn expand(&self) -> LaneSlots {
        let size = params::PKE_PARAMS.encryption_lwe_dimension.to_lwe_size();
        let compact = LweCompactCiphertextList::from_container(
            self.words.as_slice(),
            size,
            LweCiphertextCount(self.slots),
            CiphertextModulus::new_native(),
        );
        let mut out = LweCiphertextListOwned::new(
            0u64,
            size,
            LweCiphertextCount(self.slots),
            CiphertextModulus::new_native(),
        );
        expand_lwe_compact_ciphertext_list(&mut out, &compact);
        LaneSlots {
            words: out.into_container(),
            slots: self.slots,
        }
    }
}

/// A summed lane list expanded into one LWE ciphertext per slot.
#[derive(Clone, Debug)]
pub struct LaneSlots {
    words: Vec<u64>,
    slots: usize,
}

impl LaneSlots {
    /// The ciphertext of `Σ weight × slot` over the given `(slot, weight)` pairs (wrapping;
    /// negative weights subtract).
    pub fn combine(&self, weights: &[(usize, i64)]) -> Result<LaneCiphertext> {
        let mut words = vec![0u64; LANE_CIPHERTEXT_WORDS];
        for &(slot, weight) in weights {
            if slot >= self.slots {
                return Err(Error::ShapeMismatch(format!(
                    "slot {slot} of a {}-slot list",
                    self.slots
                )));
            }
            let ct = &self.words[slot * LANE_CIPHERTEXT_WORDS..][..LANE_CIPHERTEXT_WORDS];
            // Two's complement: multiplying by the weight's bit pattern is multiplying by the
            // weight modulo 2^64.
            let w = weight as u64;
            for (acc, c) in words.iter_mut().zip(ct) {
                *acc = acc.wrapping_add(c.wrapping_mul(w));
            }
        }
        Ok(LaneCiphertext { words })
    }
}

/// One LWE ciphertext under the key holder's compact key at the lane's encoding: how a lane
/// output travels to the key holder (2,049 words, 16,392 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct LaneCiphertext {
    pub(crate) words: Vec<u64>,
}

impl std::fmt::Debug for LaneCiphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneCiphertext").finish_non_exhaustive()
    }
}

impl LaneCiphertext {
    /// Adds `value` to the encrypted value (a trivial encryption of `value × Δ` added to the
    /// body: no key, and no noise beyond the ciphertext's own).
    pub fn add_plaintext(&mut self, value: i64) {
        let body = &mut self.words[LANE_CIPHERTEXT_WORDS - 1];
        *body = body.wrapping_add((value as u64).wrapping_mul(1 << params::LANE_DELTA_LOG));
    }

    /// Encoded size in bytes.
    pub const ENCODED_LEN: usize = 8 * LANE_CIPHERTEXT_WORDS;

    /// The words, big-endian.
    pub fn encode(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    /// Decodes exactly [`Self::ENCODED_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != Self::ENCODED_LEN {
            return Err(Error::Malformed {
                what: "lane ciphertext",
                reason: format!("{} bytes, expected {}", bytes.len(), Self::ENCODED_LEN),
            });
        }
        Ok(Self {
            words: bytes
                .chunks_exact(8)
                .map(|c| u64::from_be_bytes(c.try_into().expect("8-byte chunks")))
                .collect(),
        })
    }
}
