//! The demo's synthetic cohort: realistic sessions (questionnaires, moods, short transcripts)
//! drawn deterministically from a seed, from four archetypes that land in the four tiers of
//! `crisis` v1 (`docs/MODELS.md`). Every value is synthetic; no real person is described.
//!
//! Lexicon features are not invented here: each session carries a transcript and
//! [`Session::values`] extracts them on the "device", as for any recorded session.

use blindsight_client::session::{CssrsScreener, Session};

/// The cohort labels sessions are split between (alternately).
pub const COHORTS: [&str; 2] = ["north", "south"];

/// When the synthetic sessions begin: 2026-03-02 09:00 UTC. Sessions spread over four weeks.
const FIRST_SESSION: u64 = 1_772_442_000;

/// A small deterministic generator (SplitMix64, Steele, Lea & Flood 2014): the same seed gives
/// the same cohort on every machine. Not for anything secret.
#[derive(Clone, Debug)]
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `lo..=hi` (the modulo bias is irrelevant at these sizes).
    pub(super) fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() % u64::from(hi - lo + 1)) as u32
    }

    /// True with probability `percent` / 100.
    pub(super) fn chance(&mut self, percent: u32) -> bool {
        self.range(0, 99) < percent
    }

    pub(super) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.range(0, items.len() as u32 - 1) as usize]
    }
}

/// The four kinds of week the cohort is drawn from, and the tier `crisis` v1 gives each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Archetype {
    /// Minimal symptoms (PHQ-9 0–2, GAD-7 0–2), a good week: tier none.
    Stable,
    /// Mild symptoms (PHQ-9 5–8, GAD-7 3–5): tier low.
    Mild,
    /// Moderate depression (PHQ-9 10–13, GAD-7 5–8), sometimes a wish to be dead: tier moderate.
    Moderate,
    /// Severe symptoms with PHQ-9 item 9 answered and C-SSRS "yes" answers: tier high.
    Acute,
}

/// The cohort's mix, repeated: per ten sessions four stable, three mild, two moderate and one
/// acute. The first four are one of each, so a cohort of four or more spans every tier.
const CYCLE: [Archetype; 10] = [
    Archetype::Stable,
    Archetype::Mild,
    Archetype::Moderate,
    Archetype::Acute,
    Archetype::Stable,
    Archetype::Mild,
    Archetype::Stable,
    Archetype::Moderate,
    Archetype::Mild,
    Archetype::Stable,
];

// Transcript sentences per archetype. The lexicon (`docs/LEXICON.md`) counts absolutist words
// ("all", "every", "nothing", …) and hopelessness, which crisis v1 weights; the pools keep
// each archetype's text within its tier (checked by the tests below).
const STABLE: &[&str] = &[
    "Work has been steady and I slept well most nights.",
    "I went running twice this week and felt calm afterwards.",
    "My sister visited at the weekend and we cooked together.",
    "The breathing exercise before meetings is helping.",
    "I'm proud that I kept to the routine we planned.",
    "Exams went better than I expected.",
    "I had a good chat with my manager about my workload.",
    "Sleep is better since I stopped looking at my phone in bed.",
    "I felt a bit stressed on Monday, but it passed quickly.",
];

const MILD: &[&str] = &[
    "I've been tired and a bit flat most days.",
    "Work is stressful and I keep putting things off.",
    "I worry about money every evening.",
    "I didn't enjoy the party much and left early.",
    "My sleep is patchy and I wake up around four.",
    "Some days are fine, others feel heavy.",
    "I snapped at my partner and felt guilty afterwards.",
    "I'm trying to get back to the gym.",
];

const MODERATE: &[&str] = &[
    "I feel empty and nothing seems worth the effort.",
    "I've stopped answering messages from friends.",
    "It all feels pointless at work lately.",
    "I cried in the car again before coming here.",
    "I can't concentrate and I'm behind on everything.",
    "I feel trapped in this job.",
    "I'm exhausted and lonely most evenings.",
];

const ACUTE: &[&str] = &[
    "I keep thinking everyone would be better off without me.",
    "Some nights I want to die and I don't see a way out.",
    "It feels hopeless and I can't go on like this.",
    "I have been thinking about suicide more often.",
    "I hurt myself last week after the argument.",
    "Nothing will change, there is no point.",
    "I've been drinking alone most nights.",
];

/// `total` spread over `items` answers of 0–3, at random (`total` ≤ 3 × `items`).
fn spread(rng: &mut SplitMix64, items: usize, total: u32) -> Vec<u32> {
    let mut answers = vec![0; items];
    for _ in 0..total {
        let open: Vec<usize> = (0..items).filter(|&i| answers[i] < 3).collect();
        answers[open[rng.range(0, open.len() as u32 - 1) as usize]] += 1;
    }
    answers
}

/// Two or three distinct sentences from `pool`, as one transcript.
fn transcript(rng: &mut SplitMix64, pool: &[&str], sentences: usize) -> String {
    let mut chosen: Vec<&str> = Vec::with_capacity(sentences);
    while chosen.len() < sentences {
        let s = rng.pick(pool);
        if !chosen.contains(&s) {
            chosen.push(s);
        }
    }
    chosen.join(" ")
}

fn mood_after(rng: &mut SplitMix64, before: u32, down: u32, up: u32) -> u32 {
    (before + rng.range(0, down + up))
        .saturating_sub(down)
        .min(10)
}

fn session(rng: &mut SplitMix64, archetype: Archetype, index: usize) -> Session {
    let no = CssrsScreener {
        wish_dead: false,
        thoughts: false,
        method: false,
        intent: false,
        plan: false,
        behavior: false,
    };
    let (mood_before, mood_after, duration_min, phq9, gad7, cssrs, text) = match archetype {
        Archetype::Stable => {
            let before = rng.range(5, 7);
            // Item 9 stays 0 below the acute archetype: any answer there lifts to high.
            let phq = rng.range(0, 2);
            let gad = rng.range(0, 2);
            let mut phq9 = spread(rng, 8, phq);
            phq9.push(0);
            (
                before,
                mood_after(rng, before, 0, 2),
                rng.range(40, 55),
                phq9,
                spread(rng, 7, gad),
                no,
                transcript(rng, STABLE, 2),
            )
        }
        Archetype::Mild => {
            let before = rng.range(4, 6);
            let phq = rng.range(5, 8);
            let gad = rng.range(3, 5);
            let mut phq9 = spread(rng, 8, phq);
            phq9.push(0);
            (
                before,
                mood_after(rng, before, 1, 2),
                rng.range(45, 55),
                phq9,
                spread(rng, 7, gad),
                no,
                transcript(rng, MILD, 2),
            )
        }
        Archetype::Moderate => {
            let before = rng.range(3, 5);
            let phq = rng.range(10, 13);
            let gad = rng.range(5, 8);
            let mut phq9 = spread(rng, 8, phq);
            phq9.push(0);
            let cssrs = CssrsScreener {
                wish_dead: rng.chance(30),
                ..no
            };
            (
                before,
                mood_after(rng, before, 1, 2),
                rng.range(45, 60),
                phq9,
                spread(rng, 7, gad),
                cssrs,
                transcript(rng, MODERATE, 2),
            )
        }
        Archetype::Acute => {
            let before = rng.range(1, 3);
            let item9 = rng.range(1, 3);
            let phq = rng.range(17, 24) - item9;
            let gad = rng.range(10, 17);
            let mut phq9 = spread(rng, 8, phq);
            phq9.push(item9);
            let cssrs = CssrsScreener {
                wish_dead: true,
                thoughts: rng.chance(80),
                method: rng.chance(40),
                intent: rng.chance(25),
                plan: rng.chance(20),
                behavior: rng.chance(10),
            };
            let sentences = rng.range(2, 3) as usize;
            (
                before,
                mood_after(rng, before, 1, 1),
                rng.range(50, 75),
                phq9,
                spread(rng, 7, gad),
                cssrs,
                transcript(rng, ACUTE, sentences),
            )
        }
    };
    let day = u64::from(rng.range(0, 27));
    let hour = u64::from(rng.range(0, 9));
    Session {
        record_id: format!("demo-{:04}", index + 1),
        cohort: Some(COHORTS[index % COHORTS.len()].to_owned()),
        recorded_at: Some(FIRST_SESSION + day * 86_400 + hour * 3_600),
        mood_before,
        mood_after,
        duration_min,
        phq9,
        gad7,
        cssrs,
        transcript: Some(text),
    }
}

/// The archetypes of a cohort of `records`: [`CYCLE`] repeated, in an order shuffled by the
/// seed.
fn archetypes(rng: &mut SplitMix64, records: usize) -> Vec<Archetype> {
    let mut kinds: Vec<Archetype> = CYCLE.iter().copied().cycle().take(records).collect();
    // Fisher–Yates.
    for i in (1..kinds.len()).rev() {
        let j = rng.range(0, i as u32) as usize;
        kinds.swap(i, j);
    }
    kinds
}

pub(crate) fn cohort_with_archetypes(records: usize, seed: u64) -> Vec<(Archetype, Session)> {
    let mut rng = SplitMix64(seed);
    archetypes(&mut rng, records)
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, session(&mut rng, a, i)))
        .collect()
}

/// `records` synthetic sessions, the same for the same `seed`: ids `demo-0001`…, cohorts
/// alternating [`COHORTS`], recorded over four weeks from March 2026. Four or more span all
/// four tiers of `crisis` v1.
pub fn synthetic_cohort(records: usize, seed: u64) -> Vec<Session> {
    cohort_with_archetypes(records, seed)
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

#[cfg(test)]
mod tests {
    use blindsight_crypto::compute::{Tier, crisis_v1};
    use blindsight_crypto::schemas::session_v1;

    use super::*;

    fn expected(a: Archetype) -> Tier {
        match a {
            Archetype::Stable => Tier::None,
            Archetype::Mild => Tier::Low,
            Archetype::Moderate => Tier::Moderate,
            Archetype::Acute => Tier::High,
        }
    }

    #[test]
    fn every_archetype_lands_in_its_tier_for_any_seed() {
        let schema = session_v1();
        let model = crisis_v1().compile(&schema).unwrap();
        for seed in 0..200 {
            for (a, s) in cohort_with_archetypes(30, seed) {
                let values = schema.order_values(&s.values().unwrap()).unwrap();
                let (score, tier) = model.evaluate_clear(&values);
                assert_eq!(
                    tier,
                    expected(a),
                    "seed {seed}: {a:?} scored {score}: {s:?}"
                );
            }
        }
    }

    #[test]
    fn cohorts_are_deterministic_and_span_every_tier() {
        assert_eq!(synthetic_cohort(24, 7), synthetic_cohort(24, 7));
        assert_ne!(synthetic_cohort(24, 7), synthetic_cohort(24, 8));
        for records in [4, 5, 24] {
            let kinds: Vec<Archetype> = cohort_with_archetypes(records, 7)
                .into_iter()
                .map(|(a, _)| a)
                .collect();
            for a in CYCLE {
                assert!(kinds.contains(&a), "{records}: {kinds:?}");
            }
        }
        let count = |a| {
            cohort_with_archetypes(24, 7)
                .iter()
                .filter(|(b, _)| *b == a)
                .count()
        };
        assert_eq!(
            [
                Archetype::Stable,
                Archetype::Mild,
                Archetype::Moderate,
                Archetype::Acute
            ]
            .map(count),
            [9, 7, 5, 3]
        );
        let sessions = synthetic_cohort(24, 7);
        assert_eq!(sessions[0].record_id, "demo-0001");
        assert_eq!(sessions[23].record_id, "demo-0024");
        let north = sessions
            .iter()
            .filter(|s| s.cohort.as_deref() == Some("north"))
            .count();
        assert_eq!(north, 12);
        assert!(sessions.iter().all(|s| s.transcript.is_some()));
    }
}
