//! Compressed result lists: what a job returns to the key holder.
//!
//! tfhe 1.8.2 implements `ParameterSetConformant` for the shortint-level compressed list but
//! not for the high-level `CompressedCiphertextList`, and the high-level accessors trust the
//! list's metadata: a list claiming message modulus 0 panics in `get_kind_of` (found by the
//! `result_list` fuzz target), and one whose type info claims more blocks than it packs panics
//! in decompression. So the decoder, after tfhe's size-limited, header-checked decoding,
//! reaches the packed shortint list and runs tfhe's own conformance check on it, then checks
//! the block count against the expected types, before any tfhe accessor is called.

use bincode::Options;
use serde::Deserialize;
use tfhe::CompressedCiphertextList;
use tfhe::conformance::ParameterSetConformant;
use tfhe::core_crypto::prelude::GlweCiphertextConformanceParams;
use tfhe::integer::ciphertext::DataKind;
use tfhe::prelude::CiphertextList;
use tfhe::shortint::ciphertext::CompressedCiphertextList as ShortintCompressedList;
use tfhe::shortint::parameters::{
    AtomicPatternKind, CompressedCiphertextConformanceParams, Degree, NoiseLevel, PBSOrder,
};

use crate::codec::{self, limits};
use crate::params::{COMPRESSION_PARAMS, COMPUTE_PARAMS};
use crate::schema::FieldType;
use crate::{Error, Result};

/// The serde layout of tfhe's integer-level compressed list (`packed_list`, then `info`), to
/// reach the packed shortint list, whose fields tfhe keeps crate-private.
#[derive(Deserialize)]
struct IntegerListLayout {
    packed_list: ShortintCompressedList,
    #[allow(dead_code)]
    info: Vec<DataKind>,
}

fn conformance() -> CompressedCiphertextConformanceParams {
    CompressedCiphertextConformanceParams {
        ct_params: GlweCiphertextConformanceParams {
            glwe_dim: COMPRESSION_PARAMS.packing_ks_glwe_dimension(),
            polynomial_size: COMPRESSION_PARAMS.packing_ks_polynomial_size(),
            ct_modulus: COMPUTE_PARAMS.ciphertext_modulus,
        },
        lwe_per_glwe: COMPRESSION_PARAMS.lwe_per_glwe(),
        message_modulus: COMPUTE_PARAMS.message_modulus,
        carry_modulus: COMPUTE_PARAMS.carry_modulus,
        // Not part of the check; set to what fresh compressed blocks carry.
        degree: Degree::new(COMPUTE_PARAMS.message_modulus.0 - 1),
        noise_level: NoiseLevel::NOMINAL,
        atomic_pattern: AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
    }
}

/// Safe-serializes a compressed result list.
pub fn encode_result_list(list: &CompressedCiphertextList) -> Result<Vec<u8>> {
    codec::encode("result list", list, limits::RESULT_LIST)
}

/// Decodes a compressed result list and checks it conforms to the pinned parameters and holds
/// exactly `expected`, in order.
pub fn decode_result_list(
    bytes: &[u8],
    expected: &[FieldType],
) -> Result<CompressedCiphertextList> {
    let list: CompressedCiphertextList =
        codec::decode_unchecked("result list", bytes, limits::RESULT_LIST)?;
    let (integer, tag, rerand) = list.into_raw_parts();
    // Re-encoding an object that was just decoded within its limit: these bytes are ours, not
    // the caller's, and are read back under the same limit.
    let options = bincode::DefaultOptions::new().with_fixint_encoding();
    let reencoded = options
        .serialize(&integer)
        .map_err(|e| Error::Fhe(format!("couldn't re-encode the result list: {e}")))?;
    let layout: IntegerListLayout = options
        .with_limit(limits::RESULT_LIST)
        .deserialize(&reencoded)
        .map_err(|e| Error::Malformed {
            what: "result list",
            reason: e.to_string(),
        })?;
    if !layout.packed_list.is_conformant(&conformance()) {
        return Err(Error::NonConformant {
            what: "result list",
            reason: "its packing, moduli or atomic pattern differ from the pinned parameters"
                .into(),
        });
    }
    let blocks: usize = expected.iter().map(|t| t.blocks() as usize).sum();
    if layout.packed_list.len() != blocks {
        return Err(Error::ShapeMismatch(format!(
            "the result list packs {} blocks, the expected results need {blocks}",
            layout.packed_list.len()
        )));
    }
    let list = CompressedCiphertextList::from_raw_parts(integer, tag, rerand);
    if list.len() != expected.len() {
        return Err(Error::ShapeMismatch(format!(
            "the result list holds {} values, {} were expected",
            list.len(),
            expected.len()
        )));
    }
    for (i, ty) in expected.iter().enumerate() {
        let found = list.get_kind_of(i);
        if found != Some(ty.to_fhe_type()) {
            return Err(Error::ShapeMismatch(format!(
                "result {i} is {found:?}, expected {ty:?}"
            )));
        }
    }
    Ok(list)
}
