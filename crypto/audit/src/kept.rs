//! The heads an auditor keeps between runs: `blindsight audit verify --save-heads FILE`
//! writes the signed head of every chain it verified, and `--since FILE` makes a later run
//! fail unless every chain still contains those heads unchanged. Without a kept head, a
//! chain cut short (or an older backup restored) is still a valid chain; with one it is
//! caught, and the cause named.
//!
//! The file is JSON: `{"format": "blindsight-audit-heads/v1", "source": "…", "verified_at":
//! <seconds since the epoch>, "heads": [<signed head>, …]}` (docs/FORMATS.md).

use blindsight_proto::SignedHead;
use serde::{Deserialize, Serialize};

use crate::Evidence;

const FORMAT: &str = "blindsight-audit-heads/v1";

/// Heads verified in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeptHeads {
    /// `blindsight-audit-heads/v1`.
    pub format: String,
    /// Where the evidence came from (the report's `source`).
    pub source: String,
    /// When they were verified (seconds since the epoch).
    pub verified_at: i64,
    /// The signed head of every chain verified.
    pub heads: Vec<SignedHead>,
}

impl KeptHeads {
    /// The signed heads of every chain in `evidence` (call it after a passing run).
    pub fn of(evidence: &Evidence, verified_at: i64) -> Self {
        Self {
            format: FORMAT.into(),
            source: evidence.source.clone(),
            verified_at,
            heads: evidence
                .chains
                .iter()
                .filter_map(|c| c.head.clone())
                .collect(),
        }
    }

    /// Reads a file's bytes; the error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let kept: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a kept-heads file of `audit verify --save-heads`: {e}"))?;
        if kept.format != FORMAT {
            return Err(format!("format {:?}, not {FORMAT:?}", kept.format));
        }
        Ok(kept)
    }

    /// The file's bytes.
    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
