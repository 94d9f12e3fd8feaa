//! The one pinned TFHE parameter set, and the conformance parameters derived from it.
//!
//! Every constant here is a *versioned* tfhe constant (`V1_8_…`), never an alias such as
//! `PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128` that moves between tfhe releases: keys,
//! ciphertexts and proofs made under one set must never silently meet another.
//! See <https://docs.zama.org/tfhe-rs> ("Parameters" and "Zero-knowledge proofs").

use tfhe::shortint::parameters::v1_8::{
    V1_8_COMP_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    V1_8_PARAM_KEYSWITCH_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2,
    V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128,
    V1_8_PARAM_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2,
};
use tfhe::shortint::parameters::{CarryModulus, MessageModulus};
use tfhe::shortint::parameters::{
    ClassicPBSParameters, CompactPublicKeyEncryptionParameters, CompressionParameters,
    ShortintKeySwitchingParameters,
};
use tfhe::{Config, ConfigBuilder};

/// The identifier of the pinned parameter set. It travels in every envelope, key manifest and
/// keystore; anything carrying another id is refused.
///
/// Read it as: Blindsight parameter set 2, tfhe 1.8 constants, 2-bit message / 2-bit carry
/// KS-PBS with TUniform noise at 2^-128 failure probability, a dedicated compact-public-key
/// set (ZK proof scheme v2, keyswitched to the small key on expansion), records as lane lists
/// (one bit per slot at Δ = 2^47, proven with t = 2^17 and 16 zero MSBs), compression enabled.
/// Set 2 replaced set 1 when records became lane lists; nothing of set 1 is read.
pub const PARAMETER_SET_ID: &str =
    "bs2/tfhe-v1_8/m2c2-ks-pbs-tuniform-2m128/pke-small-zkv2/lane-bit-d47-t17/comp";

/// The exact tfhe release the parameter set, formats and measured costs belong to (the
/// workspace pins `tfhe = "=1.8.2"`; a test checks the two agree).
pub const TFHE_VERSION: &str = "1.8.2";

/// Compute parameters: `V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`.
pub const COMPUTE_PARAMS: ClassicPBSParameters = V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;

/// Dedicated compact-public-key encryption parameters, required for ZK proofs of encryption:
/// `V1_8_PARAM_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2`.
pub const PKE_PARAMS: CompactPublicKeyEncryptionParameters =
    V1_8_PARAM_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2;

/// Keyswitch from the compact-public-key domain to the compute domain on expansion:
/// `V1_8_PARAM_KEYSWITCH_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2`.
pub const CASTING_PARAMS: ShortintKeySwitchingParameters =
    V1_8_PARAM_KEYSWITCH_PKE_TO_SMALL_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_ZKV2;

/// Ciphertext-list compression (results travel as compressed lists):
/// `V1_8_COMP_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`.
pub const COMPRESSION_PARAMS: CompressionParameters =
    V1_8_COMP_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;

/// Bits of message carried by one radix block under [`COMPUTE_PARAMS`].
pub const BITS_PER_BLOCK: u32 = 2;

/// The tfhe configuration every key in Blindsight is generated under.
pub fn config() -> Config {
    ConfigBuilder::with_custom_parameters(COMPUTE_PARAMS)
        .use_dedicated_compact_public_key_parameters((PKE_PARAMS, CASTING_PARAMS))
        .enable_compression(COMPRESSION_PARAMS)
        .build()
}

/// Refuses any parameter-set id other than [`PARAMETER_SET_ID`].
pub fn check_parameter_set(found: &str) -> Result<(), crate::Error> {
    if found == PARAMETER_SET_ID {
        Ok(())
    } else {
        Err(crate::Error::WrongParameterSet {
            expected: PARAMETER_SET_ID,
            found: found.chars().take(128).collect(),
        })
    }
}

// The additive lane (see `crate::lane` and docs/FORMATS.md, "Lane lists"). Records are one
// proven compact list under the key set's compact public key, one bit per slot. Lists under
// one public key add coefficient-wise with no keyswitch and no bootstrap, and the sum decrypts
// to the slot-wise sum; only the message encoding differs from `PKE_PARAMS`, so the key, its
// noise and its security level are those of the pinned set.

/// The LWE dimension of the compact public key, and so the length of a lane list's mask.
pub const LANE_LWE_DIMENSION: usize = 2048;

/// log2 of the lane's scaling factor Δ: a slot's bit sits at 2^47 of the 2^64 torus.
///
/// Δ = 2^63 / (message modulus 2 × carry modulus 2^15), as tfhe encodes with one padding bit.
/// The 17 bits above the noise hold a sum of up to 2^17 - 1 bits, and the 47 below hold the
/// summed noise: a worst-case list the proof still accepts has noise below 2^28.7 after the
/// key's bias is removed, so sums of at most [`LANE_EXACT_WEIGHT`] such lists decode exactly.
pub const LANE_DELTA_LOG: u32 = 47;

/// The proof's plaintext modulus t = 2^17 (2 × 2^15 × 2, padding bit included).
pub const LANE_PLAINTEXT_MODULUS: u64 = 1 << 17;

/// Zero most-significant bits the proof enforces: slot < t >> 16 = 2, i.e. each slot is a bit.
/// tfhe's shortint helpers fix this at 1 (slot < 2^16), which would let one record fill the
/// plaintext space of a whole cohort's sum.
pub const LANE_MSB_ZERO_PADDING: u64 = 16;

/// Slots the lane CRS can prove in one list. 512 keeps the CRS the size of the record CRS
/// it replaced and holds the built-in session schema's 162 slots with room for custom schemas.
pub const LANE_MAX_SLOTS: usize = 512;

/// The largest `records × weight` a lane sum may cover and still decode exactly if every app
/// sent the worst noise its proof allows (measured worst case 2^28.7 per list after the bias
/// is removed: 2^46 / 2^28.7 ≈ 123,751). A sum of one slot over N records has weight N; a
/// combination of slots with weights w has weight N × Σ|w|. Larger cohorts are summed in
/// shards of at most this weight, which the key holder adds in clear.
pub const LANE_EXACT_WEIGHT: u64 = 123_751;

/// The most records one lane rollup part holds: the server keeps, per cohort and day, the
/// running sum of the lane lists ingested, in parts of at most this many records. A quarter
/// of [`LANE_EXACT_WEIGHT`] or less, so that parts pack into shards of between a quarter and
/// all of the exact bound (see `compute::pack_rollup_shards`); a power of two well below it so
/// that a busy day's parts are few (61 for a million records) and a part's sum is always exact.
pub const LANE_ROLLUP_PART_RECORDS: u64 = 16_384;

/// The smallest shard a job of more than one shard may have: a quarter of the exact bound.
/// Equal-size shards are at least half of it; shards packed from rollup parts at least this.
/// Either way a shard's slot sums cover tens of thousands of records, far above any minimum
/// cohort.
pub const LANE_MIN_SHARD: u64 = LANE_EXACT_WEIGHT / 4;

/// The compact-public-key parameters of the lane: [`PKE_PARAMS`] with a 1-bit message and
/// 15 carry bits, which gives Δ = 2^47. Only the encoding changes.
pub fn lane_params() -> CompactPublicKeyEncryptionParameters {
    CompactPublicKeyEncryptionParameters {
        message_modulus: MessageModulus(2),
        carry_modulus: CarryModulus(1 << 15),
        ..PKE_PARAMS
    }
}
