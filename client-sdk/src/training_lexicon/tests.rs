use super::pattern::Slot;
use super::*;
use Cue::*;

/// One case a line: the cue, its exact count, then the trainee's messages (split at ` | `).
/// Per cue: positives, negatives, and must-not-fire cases (quoting the client, the word in a
/// clinical term, person-first phrasing, negation, a reported view).
const CASES: &str = r#"
    OpenQuestion 1 What brings you here today?
    OpenQuestion 2 How do you feel about that? Why does it matter to you?
    OpenQuestion 2 Tell me more about your week. Why don't you tell me about her?
    OpenQuestion 2 Could you tell me what happened? So, when you drink, what happens next?
    OpenQuestion 0 How many drinks did you have? Did you sleep? Tell me if you need a break.
    OpenQuestion 0 You said "what is the point?" earlier. Why don't you try walking?
    ClosedQuestion 1 Did you drink yesterday?
    ClosedQuestion 3 Is that right? Are you sleeping? Can you come on Tuesday?
    ClosedQuestion 2 How many drinks a day? You've been drinking more?
    ClosedQuestion 0 What would you like to change? Could you tell me more about that?
    ClosedQuestion 0 She asked me "are you okay?" and I froze. Why not just quit?
    SimpleReflection 1 It sounds like work has been stressful.
    SimpleReflection 2 You feel tired. So you stopped going out.
    SimpleReflection 2 You're saying the meetings help. Okay, you're feeling stuck.
    SimpleReflection 0 It sounds like you're torn. You feel stuck?
    SimpleReflection 0 So you should stop drinking. You're in denial. If you feel unsafe, call me.
    ComplexReflection 1 On one hand you love her, and on the other you can't trust her.
    ComplexReflection 1 Part of you wants to quit and part of you is scared.
    ComplexReflection 2 You want to stop, and at the same time it helps. You're wondering whether it's worth it.
    ComplexReflection 1 It sounds like you stay because the kids matter to you.
    ComplexReflection 0 It sounds like a long week. We can meet at the same time next week.
    ComplexReflection 0 Part of your job is night shifts. Are you torn between them?
    Affirmation 1 That took a lot of courage.
    Affirmation 2 You've worked really hard this month. You did well.
    Affirmation 2 I appreciate your honesty. You should be proud of yourself.
    Affirmation 0 Did that take courage? I don't think that took courage.
    Affirmation 0 He wrote 'you did well' on it.
    Summary 1 Let me summarize what I've heard.
    Summary 2 So far we've talked about sleep. To sum up, things feel heavy.
    Summary 1 Let me see if I've got this: you want to cut down.
    Summary 0 Let me see what I can do. Your boss said "let me summarize" and cut you off.
    AdviceUnpermitted 1 You should go to a meeting.
    AdviceUnpermitted 3 You need to sleep. Try to eat. I suggest you call her.
    AdviceUnpermitted 1 Why don't you try journaling?
    AdviceUnpermitted 1 You have to stop drinking and you should exercise.
    AdviceUnpermitted 0 Can I offer an idea? You should try a drink diary.
    AdviceUnpermitted 0 Would it be okay if I shared an idea? | You should try a diary.
    AdviceUnpermitted 1 May I suggest something? | Okay. | You should try a diary.
    AdviceUnpermitted 0 If you need to talk, call me. What do you need to feel safe?
    AdviceUnpermitted 0 You don't have to decide today. You should be proud. You must be exhausted.
    AdviceUnpermitted 0 Your mum told you "you need to stop". You need to admit you have a problem.
    Confrontation 1 You're in denial.
    Confrontation 2 That's not true. You're just making excuses.
    Confrontation 2 You need to admit you have a problem. Face the facts, you're an alcoholic.
    Confrontation 0 You're not wrong. I don't think you're wrong.
    Confrontation 0 Your wife says "you're in denial".
    Empathy 1 That must be hard.
    Empathy 2 I can understand how lonely that was. I'm sorry you're going through this.
    Empathy 2 That sounds overwhelming. That's a lot to carry.
    Empathy 2 It's not your fault. You're not overreacting.
    Empathy 0 That doesn't sound hard. It is hard to say.
    Empathy 0 He said “that must be hard” and laughed.
    StigmaLabel 1 He is an addict.
    StigmaLabel 2 Addicts and alcoholics often relapse.
    StigmaLabel 2 She is a schizophrenic and a drug abuser.
    StigmaLabel 2 Was your urine test clean? You've been clean for a month.
    StigmaLabel 2 Her brother committed suicide. He suffers from depression.
    StigmaLabel 3 We see borderlines and the mentally ill. He's a bipolar.
    StigmaLabel 0 She has alcohol use disorder and sees an addiction medicine doctor.
    StigmaLabel 0 A person with schizophrenia can live well. Substance use disorder is common.
    StigmaLabel 0 Bipolar disorder and borderline personality disorder are treatable.
    StigmaLabel 0 He died by suicide. Have you tried Alcoholics Anonymous? Non-alcoholic beer?
    StigmaLabel 0 You said "I'm just an addict". Keep your kitchen clean. Did your abuser hit you?
    Dismissive 1 Just get over it.
    Dismissive 1 You just need to get over it.
    Dismissive 2 It's not a big deal, everyone feels that way.
    Dismissive 2 You're overreacting. Cheer up!
    Dismissive 2 At least you have a job. It could be worse.
    Dismissive 2 Stop being so dramatic. Don't you think you're overreacting?
    Dismissive 0 You're not overreacting. I don't think you're overreacting.
    Dismissive 0 We meet at least once a week. It's a big deal.
    Dismissive 0 Your dad told you to "just get over it". You feel it's no big deal.
    Blaming 1 It's your own fault.
    Blaming 2 You brought this on yourself. You did this to yourself.
    Blaming 2 If you had just listened, none of this would have happened. I think it's your fault.
    Blaming 0 It's not your fault. None of this is your fault. I don't think it's your fault.
    Blaming 0 You feel it was your fault. You chose to come today.
    Blaming 0 Your mother said "it's your own fault".
    Stereotype 1 Women are too emotional.
    Stereotype 1 Women always worry too much.
    Stereotype 0 Some men never call back. Your boss said women always complain.
    Stereotype 3 Men don't cry, so man up. Don't cry like a girl.
    Stereotype 2 People like you never change. Typical teenager.
    Stereotype 2 At your age you should be married. Muslim people are always so strict.
    Stereotype 0 Many people like you have recovered. Young people are more likely to drink.
    Stereotype 0 I'm not saying women are too emotional. Your father taught you men don't cry.
    Stereotype 0 He told you "man up".
    Pathologizing 1 Your grief is a disorder.
    Pathologizing 1 It's not normal to still be sad.
    Pathologizing 2 You're being paranoid. That's so OCD.
    Pathologizing 2 You should be over it by now. It's crazy to feel that way.
    Pathologizing 0 It's normal to still be sad. It's not crazy to feel that way. You're not crazy.
    Pathologizing 0 That's crazy, your boss fired you by text?
    Pathologizing 0 You worry that your grief is a disorder. She has bipolar disorder.
    Pathologizing 0 You said "I'm so OCD".
    Slur 1 Stop acting like a psycho.
    Slur 2 Junkies and crackheads hang out there.
    Slur 2 These people are animals. He's a nut case.
    Slur 1 Those junkies are animals.
    Slur 0 Try some psycho-education about anxiety. You might freak out, and that's okay.
    Slur 0 He called you "a psycho". They called him 'a junkie' at school.
    Slur 0 He said “you’re a lunatic” to you. People with schizophrenia face stigma.
"#;

fn cue(name: &str) -> Cue {
    let found = Cue::ALL.into_iter().find(|c| format!("{c:?}") == name);
    found.unwrap_or_else(|| panic!("{name:?} is not a cue"))
}

fn cases() -> Vec<(Cue, u32, &'static str)> {
    let lines = CASES.lines().map(str::trim).filter(|l| !l.is_empty());
    let parse = |l: &'static str| -> Vec<&str> { l.splitn(3, ' ').collect() };
    lines
        .map(parse)
        .map(|p| (cue(p[0]), p[1].parse().unwrap(), p[2]))
        .collect()
}

/// Every count of `messages`: those in `expected` ("Cue n, …"), the others zero.
fn assert_counts(messages: &[&str], expected: &str) {
    let f = extract_trainee(messages.iter().copied());
    let named: Vec<(Cue, u32)> = expected
        .split(", ")
        .map(|e| e.split_once(' ').unwrap())
        .map(|(c, n)| (cue(c), n.parse().unwrap()))
        .collect();
    let want = |c: Cue| named.iter().find(|e| e.0 == c).map_or(0, |e| e.1);
    let got: Vec<_> = Cue::ALL.iter().map(|&c| (c, f.count(c))).collect();
    let want: Vec<_> = Cue::ALL.iter().map(|&c| (c, want(c))).collect();
    assert_eq!(
        got,
        want,
        "{:#?}",
        explain_trainee(messages.iter().copied())
    );
}

#[test]
fn every_cue_fires_exactly_where_expected() {
    let cases = cases();
    let mut failures = Vec::new();
    for &(cue, n, text) in &cases {
        let got = extract_trainee(text.split(" | ")).count(cue);
        if got != n {
            failures.push(format!("{cue:?} {text:?}: {got}, expected {n}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    for cue in Cue::ALL {
        assert!(
            cases.iter().any(|c| c.0 == cue && c.1 > 0),
            "{cue:?}: no positive"
        );
        assert!(
            cases.iter().any(|c| c.0 == cue && c.1 == 0),
            "{cue:?}: no negative"
        );
    }
}

#[test]
fn a_skilled_mi_session_counts_techniques_and_no_bias() {
    let messages = [
        "Hi Sam, thanks for coming in today. What would you like to talk about?",
        "It sounds like drinking helps you cope, and at the same time you're worried \
         about what it's doing to your family.",
        "That took courage to say out loud.",
        "Would it be okay if I shared an idea?",
        "You should try keeping a drink diary for a week.",
        "It's not your fault that you're struggling, and you're not overreacting.",
        "Let me summarize: you want to cut down, and your daughter matters to you.",
        "Did you drink yesterday?",
        "When you said \"I'm just a junkie\", that sounded really painful.",
        "Many people with alcohol use disorder find addiction medicine helps; a person \
         with schizophrenia or bipolar disorder can recover too.",
    ];
    let expected = "OpenQuestion 1, ClosedQuestion 2, ComplexReflection 1, Affirmation 1, \
                    Summary 1, Empathy 2";
    assert_counts(&messages, expected);
}

#[test]
fn a_biased_session_counts_each_category() {
    let messages = [
        "Honestly, you're overreacting, everyone feels that way.",
        "Addicts like you always have an excuse.",
        "It's your own fault; you brought this on yourself.",
        "Women are too emotional and men don't cry.",
        "Your grief is a disorder at this point.",
        "Stop acting like a psycho.",
        "Was your last urine test clean? He committed suicide, you know.",
    ];
    let expected = "ClosedQuestion 1, StigmaLabel 3, Dismissive 2, Blaming 2, Stereotype 2, \
                    Pathologizing 1, Slur 1";
    assert_counts(&messages, expected);
}

#[test]
fn matches_explain_the_counts() {
    let got = explain_trainee(["Okay. What's been hard?", "You're such a psycho."]);
    let got: Vec<_> = got.iter().map(|m| (m.message, m.cue, &*m.text)).collect();
    let want = [(0, OpenQuestion, "what is been hard"), (1, Slur, "psycho")];
    assert_eq!(got, want);
}

#[test]
fn counts_are_clipped_to_their_fields() {
    let f = extract_trainee(vec!["Did you sleep? Are you a junkie?"; 40]);
    assert_eq!((f.count(ClosedQuestion), f.count(Slur)), (80, 40));
    let clipped = f.clipped();
    assert_eq!(
        (clipped["mi_closed_questions"], clipped["bias_slur"]),
        (63, 15)
    );
    assert_eq!(clipped.len(), 15);
    assert!(
        Cue::ALL
            .iter()
            .all(|c| c.is_bias() == c.field().starts_with("bias_"))
    );
}

#[test]
fn every_pattern_word_is_one_token() {
    assert!(LISTS.len() > 150);
    for (_, p) in LISTS.iter() {
        assert!(!p.slots.is_empty());
        for slot in &p.slots {
            let (Slot::Words(alts, _) | Slot::Not(alts, _)) = slot else {
                continue;
            };
            for word in alts.iter().flatten() {
                let tokens = tokenize(word);
                let ok = word == "_" || tokens.len() == 1 && tokens[0].word == *word;
                assert!(ok, "{word:?}");
            }
        }
    }
}
