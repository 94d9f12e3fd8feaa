//! The demo's synthetic therapist-training group: practice conversations of trainees with
//! simulated clients, drawn deterministically from a seed, for `training` v1 records (the
//! demo's step in [`super::supervisor`]).
//!
//! Three kinds of trainee, in turn: a skilled one (open questions, complex reflections,
//! affirmations, empathy, summaries, no bias), a developing one (closed questions and advice
//! without permission, more reflections and fewer closed questions in later sessions), and one
//! whose early sessions show bias and stigma (labels such as "addict", "just get over it",
//! blaming, a stereotype, and in the first session a dehumanizing label) and who improves
//! later. Every word is synthetic; no real person or conversation is described.
//!
//! Features are not invented here: the lexicon reads the trainee's messages
//! ([`TrainingSession::features`]), as for any recorded session; the tests below check that it
//! sees each kind of trainee as intended.
//!
//! Size: one concern, the synthetic group: about 200 lines of conversation text (the simulated
//! clients' scripts and the trainee's lines by kind and stage), the generator, and the tests
//! that pin each pool of lines to what the lexicon counts in it, which belong next to the text.

use blindsight_client::training::{Message, Role, TrainingSession};

use super::cohort::SplitMix64;

/// Trainees in the demo's training group.
pub const TRAINEES: usize = 3;

/// Practice sessions each trainee records in the demo.
pub const SESSIONS_PER_TRAINEE: usize = 4;

/// Sessions in each progress window of the supervisor report (first 2 vs last 2).
pub(super) const WINDOW: usize = 2;

/// When the practice sessions begin: 2026-04-06 09:00 UTC, the week after the patient
/// cohort's four weeks. One session per trainee per week.
const FIRST_PRACTICE: u64 = 1_775_466_000;

const DAY: u64 = 86_400;

/// The kinds of trainee the group is drawn from, in turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skill {
    /// Open questions, complex reflections, affirmations, empathy, summaries; no bias.
    Skilled,
    /// Closed questions and advice without permission early; more reflections later.
    Developing,
    /// Stigmatizing, dismissive, blaming and stereotyping remarks early (and a dehumanizing
    /// label in the first session); person-centred and bias-free later.
    Biased,
}

const SKILLS: [Skill; 3] = [Skill::Skilled, Skill::Developing, Skill::Biased];

/// A simulated client's lines for one scenario, in the order the conversation uses them; the
/// last is change talk, which only a good session draws out.
struct Script {
    scenario: &'static str,
    client: [&'static str; 5],
}

const SCRIPTS: [Script; 6] = [
    Script {
        scenario: "depression",
        client: [
            "I haven't been able to get out of bed most mornings.",
            "Everything feels grey, even the things I used to like.",
            "I stopped calling my friends back a few weeks ago.",
            "I keep telling myself I should be over this by now.",
            "Maybe I could try a short walk after lunch.",
        ],
    },
    Script {
        scenario: "anxiety",
        client: [
            "My heart races before every meeting at work.",
            "I lie awake going over everything that could go wrong.",
            "I've started avoiding the train because of the crowds.",
            "My partner says I worry about nothing.",
            "I'd like to get through my sister's wedding without panicking.",
        ],
    },
    Script {
        scenario: "substance_use",
        client: [
            "My wife says I drink too much. I don't think it's that bad.",
            "I have a few beers after work, and then a few more.",
            "I missed two mornings at work last month.",
            "I tried cutting down once and it lasted a week.",
            "I don't want my kids to see me like that.",
        ],
    },
    Script {
        scenario: "trauma",
        client: [
            "Since the accident I can't drive on the motorway.",
            "Loud noises make me jump and then I can't settle.",
            "I don't like talking about that night.",
            "I have nightmares about it most weeks.",
            "I want to feel safe in a car again.",
        ],
    },
    Script {
        scenario: "relationships",
        client: [
            "My partner and I argue about everything lately.",
            "I feel like I'm the only one trying.",
            "We haven't had a proper conversation in months.",
            "I'm scared that if I say how I feel she'll leave.",
            "I'd like us to be kind to each other again.",
        ],
    },
    Script {
        scenario: "grief",
        client: [
            "My mother died three months ago.",
            "I still pick up the phone to call her on Sundays.",
            "Some days I'm fine and then it hits me out of nowhere.",
            "People at work have stopped asking how I am.",
            "I want to remember her without it hurting this much.",
        ],
    },
];

// The trainee's lines, by kind and stage: an opener, middles, a closer. Each pool holds only
// lines of its kind, so any draw keeps a session in character (checked by the tests below).

const SKILLED_OPEN: &[&str] = &[
    "Thanks for coming in today. What would you like to talk about?",
    "What brings you here today?",
    "How would you like to use our time today?",
];

// A reflection in every line (about two per question, many of them complex, near MITI's
// "good" thresholds), with affirmations and empathy.
const SKILLED_MIDDLE: &[&str] = &[
    "It sounds like this has been weighing on you for a long time. At the same time, part of you is still looking for a way through.",
    "You're worried about what comes next. That makes complete sense.",
    "You feel let down by the people closest to you, because you've always been the one who shows up for them.",
    "On the one hand you want things to change, and on the other hand you're not sure you have the energy for it.",
    "It took courage to talk about this today. You're ready to look at it.",
    "You've worked really hard to keep going through all of this. You want your life back.",
    "That sounds really hard. You have been carrying it on your own.",
    "You're exhausted. I can understand why that would feel overwhelming.",
    "It sounds like being there for your family matters a lot to you.",
    "You miss how things used to be.",
];

const SKILLED_CLOSE: &[&str] = &[
    "Let me summarize what I've heard: this has been hard for a while, it's affecting your sleep and your work, and you want something to change. What feels like a first step?",
    "So, to sum up: you've been carrying a lot, you've already tried a few things, and you'd like support to keep going.",
];

const DEVELOPING_EARLY_OPEN: &[&str] =
    &["Are you feeling okay today?", "Did you have a good week?"];

const DEVELOPING_EARLY_MIDDLE: &[&str] = &[
    "Have you tried going to bed earlier?",
    "You should make a list of things to do every morning.",
    "Do you exercise at all?",
    "You need to talk to your doctor about this.",
    "Is it every day?",
    "Is your sleep okay?",
    "Have you told anyone about it?",
    "You ought to cut back and see what happens.",
];

const DEVELOPING_EARLY_CLOSE: &[&str] = &[
    "You should write down how you feel each evening and bring it next week. Can you do that?",
    "You need to get out of the house every day this week. Will you try?",
];

const IMPROVED_OPEN: &[&str] = &[
    "What would you like to talk about today?",
    "How has your week been?",
];

const IMPROVED_MIDDLE: &[&str] = &[
    "You're feeling stuck right now.",
    "It sounds like you want this to change, even though it's hard to know where to start.",
    "How did that feel?",
    "What would you like to try differently this week?",
    "What have you tried so far?",
    "That sounds difficult.",
    "Would it be okay if I shared an idea that has helped other people?",
    "You've been thinking about this a lot.",
];

const IMPROVED_CLOSE: &[&str] = &[
    "So you've noticed it's worse on some days than others, and you'd like to try a small change. What might a first step look like?",
    "Let me summarize: it's been hard, and you've kept trying. You want to feel more like yourself again. What would you like to try before next week?",
];

const BIASED_OPEN: &[&str] = &[
    "Are you ready to actually do something about it this time?",
    "Did you do what I told you last week?",
];

/// The biased trainee's early lines for a scenario: every one holds a bias or stigma cue.
fn biased_middle(scenario: &str) -> &'static [&'static str] {
    match scenario {
        "substance_use" => &[
            "Addicts always say it's not that bad.",
            "Honestly, you brought this on yourself.",
            "You need to get over it and stop drinking.",
            "An alcoholic like you has to hit rock bottom first.",
        ],
        "depression" => &[
            "Everyone gets sad sometimes. Just get over it.",
            "Men don't cry about this kind of thing.",
            "It's not normal to still feel this low after a month.",
            "If you had tried harder at work, this wouldn't have happened.",
        ],
        _ => &[
            "It's all in your head, so just calm down.",
            "Women are always too emotional about this kind of thing.",
            "It's not a big deal, lots of people take the train.",
            "You worked yourself up into this, so it's your own fault.",
        ],
    }
}

/// The dehumanizing label in the biased trainee's first session.
const SLUR: &str = "You don't want to end up like the junkies at the bus station, do you?";

const BIASED_CLOSE: &[&str] = &[
    "Come back when you're serious about stopping.",
    "You need to stop making excuses and get on with it.",
];

const BIASED_EARLY_SCENARIOS: [&str; 3] = ["substance_use", "depression", "anxiety"];

/// The simulated client's last line after a poor session (after a good one: the script's
/// change talk).
const CLIENT_FLAT: &[&str] = &["I guess so.", "Okay. Whatever you say.", "Fine."];

/// `count` distinct lines of `pool`, in drawn order.
fn draw(rng: &mut SplitMix64, pool: &[&'static str], count: usize) -> Vec<&'static str> {
    let mut chosen: Vec<&'static str> = Vec::with_capacity(count);
    while chosen.len() < count.min(pool.len()) {
        let line = rng.pick(pool);
        if !chosen.contains(&line) {
            chosen.push(line);
        }
    }
    chosen
}

/// One practice session of trainee `trainee` (`t`-th of the group, of kind `skill`): the
/// `k`-th of `sessions`.
fn practice(
    rng: &mut SplitMix64,
    trainee: &str,
    t: usize,
    skill: Skill,
    k: usize,
    sessions: usize,
) -> TrainingSession {
    let early = 2 * k < sessions;
    // Exchanges of one trainee and one client message: 6, 8 or 10 messages.
    // The biased trainee lectures: five exchanges in the early sessions. The skilled one
    // reflects at least twice a session.
    let exchanges = match (skill, early) {
        (Skill::Biased, true) => 5,
        (Skill::Skilled, _) => rng.range(4, 5) as usize,
        _ => rng.range(3, 5) as usize,
    };
    let middles = exchanges - 2;
    // The biased trainee's first two sessions: substance use, then depression, which between
    // them show every bias category.
    let scenario = match (skill, early, k) {
        (Skill::Biased, true, 0) => "substance_use",
        (Skill::Biased, true, 1) => "depression",
        (Skill::Biased, true, _) => rng.pick(&BIASED_EARLY_SCENARIOS),
        _ => SCRIPTS[rng.range(0, SCRIPTS.len() as u32 - 1) as usize].scenario,
    };
    let script = SCRIPTS
        .iter()
        .find(|s| s.scenario == scenario)
        .unwrap_or(&SCRIPTS[0]);
    let (open, middle, close, engaged): (&str, Vec<&str>, &str, bool) = match (skill, early) {
        (Skill::Skilled, _) => (
            rng.pick(SKILLED_OPEN),
            draw(rng, SKILLED_MIDDLE, middles),
            rng.pick(SKILLED_CLOSE),
            true,
        ),
        (Skill::Developing, true) => (
            rng.pick(DEVELOPING_EARLY_OPEN),
            draw(rng, DEVELOPING_EARLY_MIDDLE, middles),
            rng.pick(DEVELOPING_EARLY_CLOSE),
            false,
        ),
        (Skill::Biased, true) => {
            // Only biased remarks in the middle of an early session: in the first, the
            // dehumanizing label, a stigmatizing one and blaming; in the second, dismissive,
            // stereotyping and pathologizing remarks; later ones drawn at random.
            let pool = biased_middle(scenario);
            let lines = match k {
                0 => [SLUR]
                    .into_iter()
                    .chain(pool.iter().copied())
                    .take(middles)
                    .collect(),
                1 => pool[..middles].to_vec(),
                _ => draw(rng, pool, middles),
            };
            (rng.pick(BIASED_OPEN), lines, rng.pick(BIASED_CLOSE), false)
        }
        (Skill::Developing | Skill::Biased, false) => (
            rng.pick(IMPROVED_OPEN),
            draw(rng, IMPROVED_MIDDLE, middles),
            rng.pick(IMPROVED_CLOSE),
            true,
        ),
    };
    let trainee_lines = std::iter::once(open)
        .chain(middle)
        .chain(std::iter::once(close));
    let client_lines = script.client[..exchanges - 1]
        .iter()
        .copied()
        .chain(std::iter::once(if engaged {
            script.client[4]
        } else {
            rng.pick(CLIENT_FLAT)
        }));
    let messages = trainee_lines
        .zip(client_lines)
        .flat_map(|(t, c)| {
            [
                Message {
                    role: Role::Trainee,
                    text: t.to_owned(),
                },
                Message {
                    role: Role::Client,
                    text: c.to_owned(),
                },
            ]
        })
        .collect();
    let (confidence, rating) = match (skill, early) {
        (Skill::Skilled, _) => (rng.range(7, 9), rng.range(8, 10)),
        (Skill::Developing, true) => (rng.range(3, 5), rng.range(4, 6)),
        (Skill::Developing, false) => (rng.range(5, 7), rng.range(6, 8)),
        // Overconfident early, more realistic once the feedback landed.
        (Skill::Biased, true) => (rng.range(8, 10), rng.range(2, 3)),
        (Skill::Biased, false) => (rng.range(6, 8), rng.range(6, 7)),
    };
    // The platform times the (spoken) sessions: the trainee's share of the talk time. Skilled
    // listeners talk less than their clients.
    let talk = match (skill, early) {
        (Skill::Skilled, _) => rng.range(35, 45),
        (Skill::Developing, true) => rng.range(55, 70),
        (Skill::Biased, true) => rng.range(60, 75),
        (Skill::Developing | Skill::Biased, false) => rng.range(45, 55),
    };
    // Some sessions are rated by the supervisor; the last one always is.
    let rated = rng.chance(50) || k + 1 == sessions;
    let at = FIRST_PRACTICE
        + k as u64 * 7 * DAY
        + (t % 5) as u64 * DAY
        + u64::from(rng.range(0, 8)) * 3_600;
    TrainingSession {
        record_id: format!("train-{trainee}-s{:02}", k + 1),
        trainee: trainee.to_owned(),
        recorded_at: Some(at),
        scenario: scenario.to_owned(),
        duration_min: rng.range(20, 50),
        talk_share_pct: Some(talk),
        self_confidence: confidence,
        supervisor_rating: rated.then_some(rating),
        messages,
    }
}

/// The group with each session's trainee kind and position (0-based) in the trainee's
/// sessions.
pub(crate) fn group_with_skills(
    trainees: usize,
    sessions_per_trainee: usize,
    seed: u64,
) -> Vec<(Skill, usize, TrainingSession)> {
    let mut rng = SplitMix64(seed ^ 0x7472_6169_6e69_6e67);
    let mut names: Vec<String> = Vec::with_capacity(trainees);
    for i in 0..trainees {
        let letter = char::from(b'a' + (i % 26) as u8);
        let mut name = format!("trainee-{letter}{}", rng.range(10, 99));
        if names.contains(&name) {
            name = format!("{name}-{i}");
        }
        names.push(name);
    }
    let mut group = Vec::with_capacity(trainees * sessions_per_trainee);
    // Week by week, every trainee once a week: the order a platform uploads them in.
    for k in 0..sessions_per_trainee {
        for (t, name) in names.iter().enumerate() {
            let skill = SKILLS[t % SKILLS.len()];
            let session = practice(&mut rng, name, t, skill, k, sessions_per_trainee);
            group.push((skill, k, session));
        }
    }
    group
}

/// `trainees` × `sessions_per_trainee` synthetic practice sessions, the same for the same
/// `seed`, in the order they were recorded (week by week): pseudonyms `trainee-a17`…, record
/// ids `train-<trainee>-s01`…, the kinds of trainee in turn (skilled, developing, biased then
/// improving).
pub fn synthetic_training_group(
    trainees: usize,
    sessions_per_trainee: usize,
    seed: u64,
) -> Vec<TrainingSession> {
    group_with_skills(trainees, sessions_per_trainee, seed)
        .into_iter()
        .map(|(_, _, s)| s)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use blindsight_client::training_lexicon::Cue;
    use blindsight_crypto::compute::{Tier, bias_v1};
    use blindsight_crypto::schemas::{TRAINING_SCENARIOS, training_v1};

    use super::*;

    fn bias_total(s: &TrainingSession) -> u32 {
        let f = s.features();
        Cue::ALL
            .iter()
            .filter(|c| c.is_bias())
            .map(|c| f.count(*c))
            .sum()
    }

    #[test]
    fn groups_are_deterministic_and_well_formed() {
        let group = synthetic_training_group(3, 4, 7);
        assert_eq!(group, synthetic_training_group(3, 4, 7));
        assert_ne!(group, synthetic_training_group(3, 4, 8));
        assert_eq!(group.len(), 12);
        let ids: BTreeSet<&str> = group.iter().map(|s| s.record_id.as_str()).collect();
        assert_eq!(ids.len(), 12);
        let trainees: BTreeSet<&str> = group.iter().map(|s| s.trainee.as_str()).collect();
        assert_eq!(trainees.len(), 3);
        for s in &group {
            assert!(s.trainee.starts_with("trainee-"), "{}", s.trainee);
            assert!(
                s.record_id.starts_with(&format!("train-{}-s0", s.trainee)),
                "{}",
                s.record_id
            );
            assert!(TRAINING_SCENARIOS.contains(&s.scenario.as_str()));
            assert!((6..=10).contains(&s.messages.len()), "{s:?}");
            // Trainee and client alternate, the trainee first.
            for (i, m) in s.messages.iter().enumerate() {
                let role = if i % 2 == 0 {
                    Role::Trainee
                } else {
                    Role::Client
                };
                assert_eq!(m.role, role, "{s:?}");
            }
            assert!(s.recorded_at.unwrap() >= FIRST_PRACTICE);
            // Every value is in range for the schema.
            training_v1().order_values(&s.values().unwrap()).unwrap();
        }
        // Each trainee's sessions are weeks apart, in order; the last is rated.
        for t in &trainees {
            let mine: Vec<&TrainingSession> = group.iter().filter(|s| s.trainee == *t).collect();
            assert_eq!(mine.len(), 4);
            assert!(mine.windows(2).all(|w| w[0].recorded_at < w[1].recorded_at));
            assert!(mine[3].supervisor_rating.is_some());
        }
        assert!(group.iter().any(|s| s.supervisor_rating.is_none()));
        // Larger groups keep unique pseudonyms and ids.
        let big = synthetic_training_group(40, 2, 1);
        let ids: BTreeSet<&str> = big.iter().map(|s| s.record_id.as_str()).collect();
        assert_eq!(ids.len(), 80);
    }

    #[test]
    fn the_lexicon_sees_each_kind_of_trainee_as_intended() {
        let model = bias_v1().compile(&training_v1()).unwrap();
        for seed in 0..20 {
            let group = group_with_skills(3, 4, seed);
            let mut slurs = 0;
            for (skill, k, s) in &group {
                let f = s.features();
                let early = *k < 2;
                match (skill, early) {
                    (Skill::Skilled, _) | (Skill::Developing, _) | (Skill::Biased, false) => {
                        assert_eq!(bias_total(s), 0, "seed {seed} {skill:?}: {f:?}\n{s:#?}");
                    }
                    (Skill::Biased, true) => {
                        assert!(bias_total(s) > 0, "seed {seed}: {f:?}\n{s:#?}");
                        slurs += usize::from(f.count(Cue::Slur) >= 1);
                    }
                }
                if *skill == Skill::Skilled {
                    let good = f.count(Cue::OpenQuestion)
                        + f.count(Cue::ComplexReflection)
                        + f.count(Cue::Affirmation)
                        + f.count(Cue::Empathy)
                        + f.count(Cue::Summary);
                    assert!(good >= 2, "seed {seed}: {f:?}\n{s:#?}");
                    assert_eq!(f.count(Cue::AdviceUnpermitted), 0, "{f:?}\n{s:#?}");
                }
                let values = training_v1().order_values(&s.values().unwrap()).unwrap();
                let (_, tier) = model.evaluate_clear(&values);
                if f.count(Cue::Slur) >= 1 {
                    assert_eq!(tier, Tier::High, "{s:#?}");
                }
            }
            assert!(slurs >= 1, "seed {seed}: no early session with a slur");
            // Between them, the biased trainee's first two sessions show every bias category.
            let early_biased: Vec<_> = group
                .iter()
                .filter(|(skill, k, _)| *skill == Skill::Biased && *k < 2)
                .map(|(_, _, s)| s.features())
                .collect();
            for cue in Cue::ALL.into_iter().filter(|c| c.is_bias()) {
                let n: u32 = early_biased.iter().map(|f| f.count(cue)).sum();
                assert!(n >= 1, "seed {seed}: no {cue:?}");
            }
            // The skilled trainee reflects at least as often as they ask.
            let skilled: Vec<_> = group
                .iter()
                .filter(|(skill, _, _)| *skill == Skill::Skilled)
                .map(|(_, _, s)| s.features())
                .collect();
            let total = |cues: &[Cue]| -> u32 {
                skilled
                    .iter()
                    .map(|f| cues.iter().map(|c| f.count(*c)).sum::<u32>())
                    .sum()
            };
            let reflections = total(&[Cue::SimpleReflection, Cue::ComplexReflection]);
            let questions = total(&[Cue::OpenQuestion, Cue::ClosedQuestion]);
            assert!(
                reflections >= questions,
                "seed {seed}: {reflections} / {questions}"
            );
            // The developing trainee: more reflections and fewer closed questions later.
            let sum = |early: bool, cue: Cue| -> u32 {
                group
                    .iter()
                    .filter(|(skill, k, _)| *skill == Skill::Developing && (*k < 2) == early)
                    .map(|(_, _, s)| s.features().count(cue))
                    .sum()
            };
            let reflections =
                |early| sum(early, Cue::SimpleReflection) + sum(early, Cue::ComplexReflection);
            assert!(reflections(false) > reflections(true), "seed {seed}");
            assert!(
                sum(false, Cue::ClosedQuestion) < sum(true, Cue::ClosedQuestion),
                "seed {seed}"
            );
            assert!(
                sum(false, Cue::AdviceUnpermitted) < sum(true, Cue::AdviceUnpermitted),
                "seed {seed}"
            );
        }
    }

    /// Each pool holds only lines of its kind, so any draw keeps a session in character.
    #[test]
    fn every_line_is_in_character() {
        let features = |line: &str| blindsight_client::training_lexicon::extract_trainee([line]);
        let bias = |line: &str| {
            let f = features(line);
            Cue::ALL
                .iter()
                .filter(|c| c.is_bias())
                .map(|c| f.count(*c))
                .sum::<u32>()
        };
        let clean = [
            SKILLED_OPEN,
            SKILLED_MIDDLE,
            SKILLED_CLOSE,
            DEVELOPING_EARLY_OPEN,
            DEVELOPING_EARLY_MIDDLE,
            DEVELOPING_EARLY_CLOSE,
            IMPROVED_OPEN,
            IMPROVED_MIDDLE,
            IMPROVED_CLOSE,
            BIASED_OPEN,
            BIASED_CLOSE,
        ];
        for line in clean.concat() {
            assert_eq!(bias(line), 0, "{line}: {:?}", features(line));
        }
        for scenario in BIASED_EARLY_SCENARIOS {
            for line in biased_middle(scenario) {
                assert!(bias(line) > 0, "{line}: {:?}", features(line));
            }
        }
        assert!(features(SLUR).count(Cue::Slur) >= 1);
        // The skilled and improved trainees give no advice unasked; the developing one asks
        // closed questions and gives advice, but does not reflect yet.
        for line in [
            SKILLED_MIDDLE,
            SKILLED_CLOSE,
            IMPROVED_MIDDLE,
            IMPROVED_CLOSE,
        ]
        .concat()
        {
            assert_eq!(features(line).count(Cue::AdviceUnpermitted), 0, "{line}");
        }
        for line in [DEVELOPING_EARLY_MIDDLE, DEVELOPING_EARLY_CLOSE].concat() {
            let f = features(line);
            let reflections = f.count(Cue::SimpleReflection) + f.count(Cue::ComplexReflection);
            assert_eq!(reflections, 0, "{line}");
        }
        for line in SKILLED_MIDDLE {
            let f = features(line);
            let reflections = f.count(Cue::SimpleReflection) + f.count(Cue::ComplexReflection);
            assert!(reflections >= 1, "{line}");
        }
        for line in DEVELOPING_EARLY_CLOSE.iter().chain(DEVELOPING_EARLY_OPEN) {
            assert!(features(line).count(Cue::ClosedQuestion) >= 1, "{line}");
        }
    }
}
