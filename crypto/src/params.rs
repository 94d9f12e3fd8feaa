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
use tfhe::shortint::parameters::{
    ClassicPBSParameters, CompactPublicKeyEncryptionParameters, CompressionParameters,
    ShortintKeySwitchingParameters,
};
use tfhe::{Config, ConfigBuilder};

/// The identifier of the pinned parameter set. It travels in every envelope, key manifest and
/// keystore; anything carrying another id is refused.
///
/// Read it as: Blindsight parameter set 1, tfhe 1.8 constants, 2-bit message / 2-bit carry
/// KS-PBS with TUniform noise at 2^-128 failure probability, a dedicated compact-public-key
/// set (ZK proof scheme v2, keyswitched to the small key on expansion), compression enabled.
pub const PARAMETER_SET_ID: &str = "bs1/tfhe-v1_8/m2c2-ks-pbs-tuniform-2m128/pke-small-zkv2/comp";

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

/// The largest record the CRS is sized for, in plaintext bits (a boolean costs one 2-bit block).
///
/// 512 bits hold the built-in session schema (about 140 bits) and the 40-field u8 benchmark
/// record (320 bits) with room to spare; a schema wider than this is refused when it is
/// defined, because its proof could not be verified against the CRS.
pub const MAX_RECORD_BITS: u32 = 512;

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
