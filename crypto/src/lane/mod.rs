//! The additive lane: records as one proven compact list under the key holder's compact public
//! key with one bit per slot, summed on the server without a key, a keyswitch or a bootstrap.
//!
//! - [`list`]: the lane list, its wire format, proving and verifying, and the lane CRS.
//! - [`layout`]: what a schema puts in the lane, slot by slot, and which aggregates it answers.
//! - [`sum`]: streaming slot-wise sums and the ciphertexts lane outputs travel as.
//! - [`secret`]: the key holder's exact decoding (bias removal, rounding, range checks).
//! - [`derive`]: the FHE path's radix blocks derived from the same list on the server, so
//!   each record carries one proof for both lanes.
//!
//! The constants and the reasoning behind each are in [`crate::params`] (`LANE_*`).

pub mod derive;
pub mod layout;
pub mod list;
pub mod secret;
pub mod sum;
#[cfg(test)]
mod tests;

pub use derive::ComputeKey;
pub use layout::{LaneHistogram, LaneIndicator, LaneLayout, SlotForm, SlotMap, lane_bits};
pub use list::{
    LANE_FORMAT_VERSION, LANE_LIST_LIMIT, LANE_MAGIC, LANE_PROOF_LIMIT, LaneBody, LaneList,
    LanePublicKey, generate_lane_crs, lane_crs_conformance,
};
pub use secret::{LaneSecret, LaneTerm};
pub use sum::{LANE_CIPHERTEXT_WORDS, LaneCiphertext, LaneSlots, LaneSum};
