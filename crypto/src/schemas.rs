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

/// The id of the built-in therapist-training schema.
pub const TRAINING_SCHEMA_ID: &str = "training";
/// The version of the built-in training schema described by [`training_v1`].
pub const TRAINING_SCHEMA_VERSION: u32 = 1;

/// Practice-scenario categories, by the code a `training` record's `scenario` field holds.
pub const TRAINING_SCENARIOS: [&str; 8] = [
    "depression",
    "anxiety",
    "substance_use",
    "suicidal_crisis",
    "trauma",
    "relationships",
    "grief",
    "other",
];

/// Technique fields of `training` v1: counts of MITI-style behaviour codes and empathy
/// statements in the trainee's own messages, extracted on the device, clipped to
/// [`TECHNIQUE_MAX`].
pub const TRAINING_TECHNIQUES: [&str; 9] = [
    "mi_open_questions",
    "mi_closed_questions",
    "mi_simple_reflections",
    "mi_complex_reflections",
    "mi_affirmations",
    "mi_summaries",
    "mi_advice_unpermitted",
    "mi_confrontations",
    "empathy_statements",
];

/// The largest value a technique count is clipped to (u6).
pub const TECHNIQUE_MAX: u32 = 63;

/// Bias and stigma fields of `training` v1: counts in the trainee's own messages, extracted on
/// the device, clipped to [`BIAS_MAX`]. `bias_slur` counts explicit slurs and dehumanizing
/// labels, which lift the `bias` v1 tier to high on their own.
pub const TRAINING_BIAS: [&str; 6] = [
    "bias_stigma_label",
    "bias_dismissive",
    "bias_blaming",
    "bias_stereotype",
    "bias_pathologizing",
    "bias_slur",
];

/// The largest value a bias count is clipped to (u4).
pub const BIAS_MAX: u32 = 15;

/// `training` version 1, one practice session of a trainee with a simulated client: the
/// scenario category (0–7, u4; [`TRAINING_SCENARIOS`]), duration in minutes (0–240, u8), the
/// trainee's share of the words spoken in percent (0–100, u8), nine technique counts (0–63,
/// u6), six bias counts (0–15, u4), the trainee's self-rated confidence (0–10, u4) and a
/// supervisor rating (0–10, u4; 0 = not rated, 1–10 a rating). 106 bits, 53 radix blocks.
/// The subject of these records is the trainee, never a patient: every count comes from the
/// trainee's own messages.
pub fn training_v1() -> RecordSchema {
    let mut fields = vec![
        FieldSpec::uint("scenario", 0, TRAINING_SCENARIOS.len() as u32 - 1),
        FieldSpec::uint("duration_min", 0, 240),
        FieldSpec::uint("talk_share_pct", 0, 100),
    ];
    fields.extend(
        TRAINING_TECHNIQUES
            .iter()
            .map(|n| FieldSpec::uint(n, 0, TECHNIQUE_MAX)),
    );
    fields.extend(
        TRAINING_BIAS
            .iter()
            .map(|n| FieldSpec::uint(n, 0, BIAS_MAX)),
    );
    fields.push(FieldSpec::uint("self_confidence", 0, 10));
    fields.push(FieldSpec::uint("supervisor_rating", 0, 10));
    RecordSchema {
        id: TRAINING_SCHEMA_ID.into(),
        version: TRAINING_SCHEMA_VERSION,
        fields,
        lane: training_v1_lane(),
    }
}

/// The lane layout of `training` v1, beyond its fields' 106 bit slots (sums and means of every
/// field and of `questions`, `reflections` and `bias_total` read those):
/// - `bias_total` one-hot over 0, 1, 2–3 and 4 or more incidents per session: the histogram
///   of sessions by incidents and every `count(bias_total >= 1|2|4)`;
/// - `bias_slur` one-hot over 0 and 1 or more: sessions with an explicit slur or dehumanizing
///   label;
/// - the indicator `supervisor_rating >= 1` (the session was rated) with `supervisor_rating`
///   gated by it: the mean rating over rated sessions.
///
/// 117 slots in all.
pub fn training_v1_lane() -> LaneLayout {
    LaneLayout {
        histograms: vec![
            LaneHistogram {
                feature: "bias_total".into(),
                edges: vec![1, 2, 4],
            },
            LaneHistogram {
                feature: "bias_slur".into(),
                edges: vec![1],
            },
        ],
        indicators: vec![LaneIndicator {
            feature: "supervisor_rating".into(),
            at_least: 1,
            sums: vec!["supervisor_rating".into()],
        }],
    }
}

/// Whom a schema's records are about, which decides the fewest records an aggregate over them
/// may read (docs/CLAIMS.md, "Minimum cohorts").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A patient (the built-in `session` schema, and every schema a tenant registers): the
    /// tenant's minimum cohort applies, so that no individual can be singled out.
    Patient,
    /// A trainee enrolled in assessment (the built-in `training` schema only): per-trainee
    /// views are the purpose, so one session suffices ([`TRAINEE_MIN_SESSIONS`]).
    Trainee,
}

/// The fewest sessions an aggregate over trainee records may read: one. The supervising
/// clinic may already score and decrypt each session with `bias` v1; a per-trainee mean
/// tells it no more, and no patient's words are in these records.
pub const TRAINEE_MIN_SESSIONS: u64 = 1;

/// Whom records of schema `id`@`version` are about. Only the built-in `training` schema is
/// about trainees; a tenant cannot declare its own schemas so.
pub fn subject(id: &str, version: u32) -> Subject {
    match (id, version) {
        (TRAINING_SCHEMA_ID, TRAINING_SCHEMA_VERSION) => Subject::Trainee,
        _ => Subject::Patient,
    }
}

/// The fewest records an aggregate over schema `id`@`version` may read, given the tenant's
/// minimum cohort (at least 2 for patients, whatever the tenant's setting).
pub fn minimum_cohort(id: &str, version: u32, tenant_minimum: u64) -> u64 {
    match subject(id, version) {
        Subject::Patient => tenant_minimum.max(2),
        Subject::Trainee => TRAINEE_MIN_SESSIONS,
    }
}

/// Looks up a built-in schema by id and version.
pub fn builtin(id: &str, version: u32) -> Option<RecordSchema> {
    match (id, version) {
        (SESSION_SCHEMA_ID, SESSION_SCHEMA_VERSION) => Some(session_v1()),
        (TRAINING_SCHEMA_ID, TRAINING_SCHEMA_VERSION) => Some(training_v1()),
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

    #[test]
    fn training_v1_is_valid_and_narrow() {
        let s = training_v1();
        s.validate().unwrap();
        assert_eq!(s.fields.len(), 3 + 9 + 6 + 2);
        assert_eq!(s.total_bits(), 106);
        assert_eq!(s.total_blocks(), 53);
        assert_eq!(s.slot_map().unwrap().slots(), 117);
        let ty = |name: &str| s.fields.iter().find(|f| f.name == name).unwrap().ty;
        assert_eq!(ty("scenario"), FieldType::U4);
        assert_eq!(ty("talk_share_pct"), FieldType::U8);
        assert_eq!(ty("mi_complex_reflections"), FieldType::U6);
        assert_eq!(ty("bias_slur"), FieldType::U4);
        assert_eq!(ty("supervisor_rating"), FieldType::U4);
        assert_eq!(builtin("training", 1), Some(s));
        assert_eq!(builtin("training", 2), None);
        assert_eq!(subject("training", 1), Subject::Trainee);
        assert_eq!(subject("training", 2), Subject::Patient);
        assert_eq!(subject("session", 1), Subject::Patient);
        assert_eq!(minimum_cohort("training", 1, 10), 1);
        assert_eq!(minimum_cohort("session", 1, 10), 10);
        assert_eq!(minimum_cohort("my-schema", 1, 0), 2);
    }
}
