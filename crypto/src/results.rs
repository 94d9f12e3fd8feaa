//! Compressed result lists: what a job returns to the key holder.
//!
//! tfhe 1.8.2 implements `ParameterSetConformant` for the shortint-level compressed list but
//! does not expose it for the high-level `CompressedCiphertextList`, so this decoder checks
//! what the high-level API lets it see: the size limit, tfhe's type/version header, and that
//! the list holds exactly the expected number of values with the expected types.

use tfhe::CompressedCiphertextList;
use tfhe::prelude::CiphertextList;

use crate::codec::{self, limits};
use crate::schema::FieldType;
use crate::{Error, Result};

/// Safe-serializes a compressed result list.
pub fn encode_result_list(list: &CompressedCiphertextList) -> Result<Vec<u8>> {
    codec::encode("result list", list, limits::RESULT_LIST)
}

/// Decodes a compressed result list and checks it holds exactly `expected`, in order.
pub fn decode_result_list(
    bytes: &[u8],
    expected: &[FieldType],
) -> Result<CompressedCiphertextList> {
    let list: CompressedCiphertextList =
        codec::decode_unchecked("result list", bytes, limits::RESULT_LIST)?;
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
