//! Every decoder of untrusted bytes, by name: the fuzz targets in `fuzz/` and the robustness
//! tests drive the same list, so a decoder added here is fuzzed and tested at once.
//!
//! The invariant every decoder keeps: whatever the input, it returns `Ok` or a typed
//! [`crate::Error`]; it never panics and never allocates more than its size limit.

use crate::{
    AppBundle, Envelope, FieldType, KeyManifest, KeystoreFile, PublicBundle, RecordEnvelope,
    SealedTranscript, decode_result_list,
};

/// The names of all decoders (also the fuzz target and corpus directory names).
pub const TARGETS: &[&str] = &[
    "envelope",
    "manifest",
    "app_bundle",
    "public_bundle",
    "record",
    "lane_list",
    "result_list",
    "sealed_transcript",
    "keystore",
];

/// Runs the decoder named `target` on `bytes`; `Some(true)` when it accepted the input,
/// `Some(false)` when it refused it with an error, `None` for an unknown target.
pub fn decode(target: &str, bytes: &[u8]) -> Option<bool> {
    Some(match target {
        "envelope" => Envelope::decode(bytes).is_ok(),
        "manifest" => KeyManifest::decode(bytes).is_ok(),
        "app_bundle" => AppBundle::decode(bytes).is_ok(),
        "public_bundle" => PublicBundle::decode(bytes).is_ok(),
        "record" => RecordEnvelope::decode(bytes).is_ok(),
        "lane_list" => crate::LaneList::decode(bytes).is_ok(),
        "result_list" => decode_result_list(bytes, &[FieldType::Bool, FieldType::U8]).is_ok(),
        "sealed_transcript" => SealedTranscript::decode(bytes).is_ok(),
        // Parsing only: opening runs 600,000 PBKDF2 rounds per input.
        "keystore" => KeystoreFile::decode(bytes).is_ok(),
        _ => return None,
    })
}
