//! Built-in record schemas. Both sides need them: the app to encrypt, the server to check a
//! record's shape and to compute. Nothing in the encryption path is specific to them; custom
//! schemas are ordinary [`RecordSchema`] values.

use crate::lane::{LaneHistogram, LaneIndicator, LaneLayout};
use crate::schema::{FieldSpec, RecordSchema};

/// The id of the built-in session schema.
pub const SESSION_SCHEMA_ID: &str = "session";
/// The version of the built-in session schema described by [`session_v1`].
pub const SESSION_SCHEMA_VERSION: u32 = 1;

/// PHQ-9 item field names, in questionnaire order (`phq9_1` … `phq9_9`; item 9 asks about
/// thoughts of being better off dead or of self-harm).
pub const PHQ9_ITEMS: [&str; 9] = [
    "phq9_1", "phq9_2", "phq9_3", "phq9_4", "phq9_5", "phq9_6", "phq9_7", "phq9_8", "phq9_9",
];

/// GAD-7 item field names, in questionnaire order.
pub const GAD7_ITEMS: [&str; 7] = [
    "gad7_1", "gad7_2", "gad7_3", "gad7_4", "gad7_5", "gad7_6", "gad7_7",
];

/// C-SSRS screener answers, in screener order: wish to be dead, non-specific active suicidal
/// thoughts, thoughts with a method, intent, a plan, suicidal behaviour.
pub const CSSRS_ITEMS: [&str; 6] = [
    "cssrs_wish_dead",
    "cssrs_thoughts",
    "cssrs_method",
    "cssrs_intent",
    "cssrs_plan",
    "cssrs_behavior",
];

/// Text-feature fields: per-category lexicon counts extracted on the device, clipped to 255.
pub const TEXT_FEATURES: [&str; 9] = [
    "lex_suicidal_ideation",
    "lex_self_harm",
    "lex_hopelessness",
    "lex_absolutist",
    "lex_first_person",
    "lex_negative_emotion",
    "lex_positive_emotion",
    "lex_isolation",
    "lex_substance",
];

/// The largest value a text-feature count is clipped to (it is encrypted as a u8).
pub const TEXT_FEATURE_MAX: u32 = 255;

/// `session` version 1: moods before and after (0–10, u4), duration in minutes (0–240, u8),
/// PHQ-9 and GAD-7 items (0–3, u2 each), the six C-SSRS screener answers (booleans), and nine
/// lexicon counts (0–255, u8). 132 bits, 66 radix blocks.
pub fn session_v1() -> RecordSchema {
    let mut fields = vec![
        FieldSpec::uint("mood_before", 0, 10),
        FieldSpec::uint("mood_after", 0, 10),
        FieldSpec::uint("duration_min", 0, 240),
    ];
    fields.extend(PHQ9_ITEMS.iter().map(|n| FieldSpec::uint(n, 0, 3)));
    fields.extend(GAD7_ITEMS.iter().map(|n| FieldSpec::uint(n, 0, 3)));
    fields.extend(CSSRS_ITEMS.iter().map(|n| FieldSpec::boolean(n)));
    fields.extend(
        TEXT_FEATURES
            .iter()
            .map(|n| FieldSpec::uint(n, 0, TEXT_FEATURE_MAX)),
    );
    RecordSchema {
        id: SESSION_SCHEMA_ID.into(),
        version: SESSION_SCHEMA_VERSION,
        fields,
        lane: session_v1_lane(),
    }
}

/// The lane layout of `session` v1, beyond its fields' 126 bit slots (sums and means of every
/// field, `phq9_total`, `gad7_total` and `mood_change` read those):
/// - `phq9_total` one-hot over the PHQ-9 severity bands (0–4, 5–9, 10–14, 15–19, 20–27):
///   the severity histogram and every `count(phq9_total >= 5|10|15|20)`;
/// - `gad7_total` one-hot over the GAD-7 bands (0–4, 5–9, 10–14, 15–21): `count(gad7_total >=
///   5|10|15)`;
/// - `phq9_9` (thoughts of self-harm, 0–3) one-hot over its four values: a full-domain
///   histogram, so its `min` and `max` are read off the lane too;
/// - the indicator `phq9_total >= 10` (the usual screening cut-off for major depression) with
///   `mood_after` and `mood_before` gated by it: their sums and mean over that subgroup.
///
/// 148 slots in all. No full-domain histogram of the lexicon counts (256 slots each, and the
/// key holder would learn the whole distribution, not only its maximum): `min`/`max` of those
/// run on the FHE path.
pub fn session_v1_lane() -> LaneLayout {
    LaneLayout {
        histograms: vec![
            LaneHistogram {
                feature: "phq9_total".into(),
                edges: vec![5, 10, 15, 20],
            },
            LaneHistogram {
                feature: "gad7_total".into(),
                edges: vec![5, 10, 15],
            },
            LaneHistogram {
                feature: "phq9_9".into(),
                edges: vec![1, 2, 3],
            },
        ],
        indicators: vec![LaneIndicator {
            feature: "phq9_total".into(),
            at_least: 10,
            sums: vec!["mood_after".into(), "mood_before".into()],
        }],
    }
}

/// Looks up a built-in schema by id and version.
pub fn builtin(id: &str, version: u32) -> Option<RecordSchema> {
    match (id, version) {
        (SESSION_SCHEMA_ID, SESSION_SCHEMA_VERSION) => Some(session_v1()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldType;

    #[test]
    fn session_v1_is_valid_and_narrow() {
        let s = session_v1();
        s.validate().unwrap();
        assert_eq!(s.fields.len(), 3 + 9 + 7 + 6 + 9);
        assert_eq!(s.total_bits(), 132);
        assert_eq!(s.slot_map().unwrap().slots(), 148);
        assert_eq!(s.total_blocks(), 66);
        let ty = |name: &str| s.fields.iter().find(|f| f.name == name).unwrap().ty;
        assert_eq!(ty("mood_before"), FieldType::U4);
        assert_eq!(ty("duration_min"), FieldType::U8);
        assert_eq!(ty("phq9_9"), FieldType::U2);
        assert_eq!(ty("cssrs_intent"), FieldType::Bool);
        assert_eq!(ty("lex_absolutist"), FieldType::U8);
        assert_eq!(builtin("session", 1), Some(s));
        assert_eq!(builtin("session", 2), None);
    }
}
