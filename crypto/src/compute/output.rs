//! Job outputs: encrypted results with their layout, as the key holder receives them.
//!
//! An output envelope (kind `result list`) carries three parts: a JSON manifest (the function
//! that produced the results, a label and type per FHE result, the lane's layout when the lane
//! computed some results, clear values such as the record count), a tfhe compressed ciphertext
//! list holding the FHE results in manifest order (empty when there are none), and the lane
//! ciphertexts (16,392 bytes each, in the lane manifest's term order). The decoder checks the
//! list against the manifest's types (see [`crate::decode_result_list`]) and the lane part's
//! length against its terms.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tfhe::integer::{IntegerCiphertext, RadixCiphertext};
use tfhe::{
    CompressedCiphertextList, CompressedCiphertextListBuilder, FheUint2, FheUint2Id, FheUint4,
    FheUint4Id, FheUint6, FheUint6Id, FheUint8, FheUint8Id, FheUint10, FheUint10Id, FheUint12,
    FheUint12Id, FheUint14, FheUint14Id, FheUint16, FheUint16Id, FheUint32, FheUint32Id,
    ReRandomizationMetadata, Tag,
};

use super::lane::{LaneManifest, MAX_LANE_TERMS};
use crate::envelope::{Envelope, Kind, decode_parts, encode_parts};
use crate::lane::LaneCiphertext;
use crate::results::{decode_result_list, encode_result_list};
use crate::schema::FieldType;
use crate::{Error, Result};

/// The most results one output may hold.
pub const MAX_OUTPUTS: usize = 200_000;

/// One result: its label (e.g. `rec-0001/score`, `2:ge:10`) and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// What the result is.
    pub label: String,
    /// Its encrypted type.
    #[serde(rename = "type")]
    pub ty: FieldType,
}

impl OutputSpec {
    /// A labelled result of type `ty`.
    pub fn new(label: impl Into<String>, ty: FieldType) -> Self {
        Self {
            label: label.into(),
            ty,
        }
    }
}

/// The layout of a job's results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputManifest {
    /// The function that produced them, e.g. `risk_score/crisis-v1` or `aggregate/v2`.
    pub function: String,
    /// The encrypted results, in list order.
    pub outputs: Vec<OutputSpec>,
    /// Values that are not secret (e.g. `records`: the cohort size the server selected).
    #[serde(default)]
    pub clear: BTreeMap<String, u64>,
    /// The lane's layout, when the lane computed some results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<LaneManifest>,
    /// How many results each compressed list holds, in order, when a job cut into tasks
    /// carries one list per task; empty for one list (or none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<u64>,
}

/// The most lists one output may carry (one per task).
pub const MAX_OUTPUT_LISTS: usize = 10_000;

/// Compresses integer-level results into one list, in order, each as its output type.
pub fn compress_outputs(
    specs: &[OutputSpec],
    values: Vec<RadixCiphertext>,
) -> Result<CompressedCiphertextList> {
    if specs.len() != values.len() {
        return Err(Error::ShapeMismatch(format!(
            "{} results for {} outputs",
            values.len(),
            specs.len()
        )));
    }
    let mut builder = CompressedCiphertextListBuilder::new();
    for (spec, radix) in specs.iter().zip(values) {
        if radix.blocks().len() != spec.ty.blocks() as usize {
            return Err(Error::ShapeMismatch(format!(
                "result {:?} has {} blocks, its type {:?} has {}",
                spec.label,
                radix.blocks().len(),
                spec.ty,
                spec.ty.blocks()
            )));
        }
        macro_rules! push {
            ($t:ident, $id:ident) => {
                builder.push($t::from_raw_parts(
                    radix,
                    $id,
                    Tag::default(),
                    ReRandomizationMetadata::default(),
                ))
            };
        }
        match spec.ty {
            FieldType::Bool | FieldType::U2 => push!(FheUint2, FheUint2Id),
            FieldType::U4 => push!(FheUint4, FheUint4Id),
            FieldType::U6 => push!(FheUint6, FheUint6Id),
            FieldType::U8 => push!(FheUint8, FheUint8Id),
            FieldType::U10 => push!(FheUint10, FheUint10Id),
            FieldType::U12 => push!(FheUint12, FheUint12Id),
            FieldType::U14 => push!(FheUint14, FheUint14Id),
            FieldType::U16 => push!(FheUint16, FheUint16Id),
            FieldType::U32 => push!(FheUint32, FheUint32Id),
        };
    }
    builder.build().map_err(|e| Error::Fhe(e.to_string()))
}

/// A job's output: manifest, compressed list of FHE results, and lane ciphertexts.
#[derive(Clone)]
pub struct JobOutput {
    /// The layout.
    pub manifest: OutputManifest,
    /// The FHE results: one list, or one per task when `manifest.lists` says so (none when
    /// the lane computed every result).
    pub lists: Vec<CompressedCiphertextList>,
    /// The lane ciphertexts, in the lane manifest's term order.
    pub lane: Vec<LaneCiphertext>,
}

impl std::fmt::Debug for JobOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOutput")
            .field("function", &self.manifest.function)
            .field("outputs", &self.manifest.outputs.len())
            .finish_non_exhaustive()
    }
}

/// Decodes an output's lists (one per task, as [`encode_parts`] framed them), each checked
/// against its share of `types` (`sizes` from the manifest, which must add up to them).
fn decode_lists(
    bytes: &[u8],
    sizes: &[u64],
    types: &[FieldType],
) -> Result<Vec<CompressedCiphertextList>> {
    let malformed = |reason: String| Error::Malformed {
        what: "output manifest",
        reason,
    };
    if sizes.len() > MAX_OUTPUT_LISTS {
        return Err(malformed(format!("more than {MAX_OUTPUT_LISTS} lists")));
    }
    let total = sizes.iter().try_fold(0u64, |a, &s| a.checked_add(s));
    if total != Some(types.len() as u64) || sizes.contains(&0) {
        return Err(malformed(format!(
            "lists of {sizes:?} results where the manifest names {}",
            types.len()
        )));
    }
    let parts = decode_parts("result lists", bytes, sizes.len())?;
    let mut first = 0usize;
    parts
        .into_iter()
        .zip(sizes)
        .map(|(part, &size)| {
            let share = &types[first..first + size as usize];
            first += size as usize;
            decode_result_list(part, share)
        })
        .collect()
}

/// Result types a manifest may name: booleans travel as 2-bit values.
fn stored_type(ty: FieldType) -> FieldType {
    if ty == FieldType::Bool {
        FieldType::U2
    } else {
        ty
    }
}

impl JobOutput {
    /// Frames the output as a `result list` envelope for key set `key_id`.
    pub fn encode(&self, key_id: &str) -> Result<Vec<u8>> {
        let manifest = serde_json::to_vec(&self.manifest).map_err(|e| Error::Malformed {
            what: "output manifest",
            reason: e.to_string(),
        })?;
        let [list, lane] = self.payload_parts()?;
        Envelope::encode(
            Kind::ResultList,
            key_id,
            &[],
            &encode_parts(&[&manifest, &list, &lane]),
        )
    }

    /// The encoded FHE list (empty when there is none; the lists as parts when there are
    /// several) and the concatenated lane ciphertexts.
    fn payload_parts(&self) -> Result<[Vec<u8>; 2]> {
        let list = match self.lists.as_slice() {
            [] => Vec::new(),
            [list] if self.manifest.lists.is_empty() => encode_result_list(list)?,
            lists => {
                let encoded = lists
                    .iter()
                    .map(encode_result_list)
                    .collect::<Result<Vec<_>>>()?;
                encode_parts(&encoded.iter().map(Vec::as_slice).collect::<Vec<_>>())
            }
        };
        let lane = self.lane.iter().flat_map(LaneCiphertext::encode).collect();
        Ok([list, lane])
    }

    /// Decodes an output envelope for key set `key_id`: framing, manifest (unknown fields
    /// refused), and the list checked against the manifest's types.
    pub fn decode(bytes: &[u8], key_id: &str) -> Result<Self> {
        let envelope = Envelope::decode_expecting(bytes, Kind::ResultList, Some(key_id))?;
        let parts = decode_parts("result list", envelope.payload, 3)?;
        let manifest: OutputManifest =
            serde_json::from_slice(parts[0]).map_err(|e| Error::Malformed {
                what: "output manifest",
                reason: e.to_string(),
            })?;
        if manifest.outputs.len() > MAX_OUTPUTS {
            return Err(Error::Malformed {
                what: "output manifest",
                reason: format!("more than {MAX_OUTPUTS} outputs"),
            });
        }
        let types: Vec<FieldType> = manifest.outputs.iter().map(|o| stored_type(o.ty)).collect();
        let lists = if manifest.lists.is_empty() {
            if parts[1].is_empty() && types.is_empty() {
                Vec::new()
            } else {
                vec![decode_result_list(parts[1], &types)?]
            }
        } else {
            decode_lists(parts[1], &manifest.lists, &types)?
        };
        let terms = manifest.lane.as_ref().map_or(0, |l| l.terms.len());
        if terms > MAX_LANE_TERMS {
            return Err(Error::Malformed {
                what: "output manifest",
                reason: format!("more than {MAX_LANE_TERMS} lane ciphertexts"),
            });
        }
        if parts[2].len() != terms * LaneCiphertext::ENCODED_LEN {
            return Err(Error::Malformed {
                what: "result list",
                reason: format!(
                    "{} bytes of lane ciphertexts where the manifest names {terms} ({} bytes each)",
                    parts[2].len(),
                    LaneCiphertext::ENCODED_LEN
                ),
            });
        }
        let lane = parts[2]
            .chunks_exact(LaneCiphertext::ENCODED_LEN)
            .map(LaneCiphertext::decode)
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            manifest,
            lists,
            lane,
        })
    }

    /// SHA-256 over the FHE list and the lane ciphertexts as encoded (two length-prefixed
    /// parts): the output digest receipts name.
    pub fn digest(&self) -> Result<String> {
        let [list, lane] = self.payload_parts()?;
        Ok(crate::sha256_hex(&encode_parts(&[&list, &lane])))
    }

    /// Decrypts every result, in manifest order.
    ///
    /// Reading a compressed list needs a decompression key. The key holder does not keep
    /// the server key, so one is derived here from the client key (a one-off cost of about a
    /// second per call); the copy of the secret key used for it is wiped afterwards.
    pub fn decrypt(&self, client_key: &tfhe::ClientKey) -> Result<Vec<u64>> {
        if self.lists.is_empty() {
            return Ok(Vec::new());
        }
        crate::keys::with_client_key_parts!(client_key, |integer, _compact, compression| {
            (|| {
                let private = compression.as_ref().ok_or_else(|| {
                    Error::Fhe(
                        "the client key has no compression key; it was not made by this build"
                            .into(),
                    )
                })?;
                let (_, decompression) = integer.new_compression_decompression_keys(private);
                let sizes = if self.manifest.lists.is_empty() {
                    vec![self.manifest.outputs.len() as u64]
                } else {
                    self.manifest.lists.clone()
                };
                let mut values = Vec::with_capacity(self.manifest.outputs.len());
                for (list, size) in self.lists.iter().zip(sizes) {
                    let (list, _, _) = list.clone().into_raw_parts();
                    for i in 0..size as usize {
                        let radix: RadixCiphertext = list
                            .get(i, &decompression)
                            .map_err(|e| Error::Fhe(e.to_string()))?
                            .ok_or_else(|| {
                                Error::ShapeMismatch(format!("result {} is missing", values.len()))
                            })?;
                        values.push(integer.decrypt_radix::<u64>(&radix));
                    }
                }
                Ok(values)
            })()
        })
    }
}
