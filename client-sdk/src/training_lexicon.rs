//! On-device features of a trainee's speech in a practice session: technique markers in the
//! style of MITI behaviour codes, empathy statements, and bias and stigma categories, from a
//! versioned lexicon and rules (`docs/LEXICON.md`, "Training lexicon `train-lex-1`").
//!
//! Only the trainee's own messages come here, never the simulated client's. Each message is
//! cut into sentences (the utterances); quoted spans (`"…"`, `“…”`, `'…'`) are masked first,
//! so a trainee quoting the client neither counts a technique nor fires a bias category. Words
//! come from the `lex-1` tokenizer ([`crate::lexicon`]), with `it's`, `that's`, … read as
//! `it is`, `that is`; the lists (`RULES`) are patterns over those words. Technique cues count
//! at most once per sentence; bias cues count every match, the longest match at a position
//! winning and consuming its words, as in `lex-1`.
//!
//! Size: one concern, `train-lex-1`: the lexicon itself (about 190 lines of patterns) and the
//! matcher that reads it (sentences, quotation, permission, negation, reported views). The
//! pattern language the lists are written in is `training_lexicon/pattern.rs`; the case table
//! pinning every cue's examples is `training_lexicon/tests.rs`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use blindsight_crypto::schemas::{BIAS_MAX, TECHNIQUE_MAX, TRAINING_BIAS, TRAINING_TECHNIQUES};

use crate::lexicon::{NEGATORS, Token, tokenize};

mod pattern;

use pattern::Pattern;

/// The training lexicon's version; it travels in every `training` record's metadata.
pub const TRAINING_LEXICON_VERSION: &str = "train-lex-1";

/// What the training lexicon counts, in the order of the `training` v1 fields
/// ([`TRAINING_TECHNIQUES`] then [`TRAINING_BIAS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cue {
    /// An open question (invites an elaborated answer).
    OpenQuestion,
    /// A closed question (yes/no or a short fact).
    ClosedQuestion,
    /// A simple reflection (repeats or rephrases what the client said).
    SimpleReflection,
    /// A complex reflection (adds meaning or emphasis; double-sided, feeling, metaphor).
    ComplexReflection,
    /// An affirmation of the client's strengths or efforts.
    Affirmation,
    /// A summary of what the client has said.
    Summary,
    /// Advice, a suggestion or a direction given without asking permission.
    AdviceUnpermitted,
    /// Confrontation: disagreeing, arguing, correcting, shaming, labelling the client.
    Confrontation,
    /// An empathy statement (acknowledges the client's feeling or difficulty).
    Empathy,
    /// A stigmatizing label for people with mental illness or substance use (not person-first).
    StigmaLabel,
    /// A dismissive or minimizing response.
    Dismissive,
    /// Blaming the client for their condition or situation.
    Blaming,
    /// Stereotyping by gender, race, age, religion or sexuality.
    Stereotype,
    /// Pathologizing a normal reaction.
    Pathologizing,
    /// An explicit slur or dehumanizing label.
    Slur,
}

impl Cue {
    /// Every cue, in field order.
    pub const ALL: [Cue; 15] = [
        Cue::OpenQuestion,
        Cue::ClosedQuestion,
        Cue::SimpleReflection,
        Cue::ComplexReflection,
        Cue::Affirmation,
        Cue::Summary,
        Cue::AdviceUnpermitted,
        Cue::Confrontation,
        Cue::Empathy,
        Cue::StigmaLabel,
        Cue::Dismissive,
        Cue::Blaming,
        Cue::Stereotype,
        Cue::Pathologizing,
        Cue::Slur,
    ];

    /// The `training` v1 field its count is stored in.
    pub fn field(self) -> &'static str {
        let i = self as usize;
        if i < TRAINING_TECHNIQUES.len() {
            TRAINING_TECHNIQUES[i]
        } else {
            TRAINING_BIAS[i - TRAINING_TECHNIQUES.len()]
        }
    }

    /// True for the bias and stigma categories.
    pub fn is_bias(self) -> bool {
        self as usize >= TRAINING_TECHNIQUES.len()
    }

    /// The largest count its field holds.
    pub fn max(self) -> u32 {
        if self.is_bias() {
            BIAS_MAX
        } else {
            TECHNIQUE_MAX
        }
    }

    /// How a match of this cue can be cancelled by its context.
    fn guard(self) -> Guard {
        match self {
            Cue::Affirmation | Cue::Empathy | Cue::Confrontation | Cue::AdviceUnpermitted => {
                Guard::Negation
            }
            Cue::Dismissive | Cue::Blaming | Cue::Stereotype | Cue::Pathologizing => Guard::Report,
            _ => Guard::None,
        }
    }
}

/// Per-cue counts of a trainee's messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrainingFeatures {
    counts: [u32; 15],
}

impl TrainingFeatures {
    /// The (unclipped) count of `cue`.
    pub fn count(&self, cue: Cue) -> u32 {
        self.counts[cue as usize]
    }

    /// The counts by `training` v1 field name, each clipped to its field's largest value.
    pub fn clipped(&self) -> BTreeMap<&'static str, u32> {
        Cue::ALL
            .iter()
            .map(|&c| (c.field(), self.count(c).min(c.max())))
            .collect()
    }
}

/// One counted cue: the message it is in (0-based, in the order given), the cue, and the words
/// that fired it (lower-cased, contractions expanded; the whole sentence for a question).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CueMatch {
    /// The index of the message.
    pub message: usize,
    /// The cue counted.
    pub cue: Cue,
    /// The matched words.
    pub text: String,
}

/// Extracts the training features of a trainee's own messages (one string per message, in
/// order). The simulated client's messages are never passed here.
pub fn extract_trainee<'a>(messages: impl IntoIterator<Item = &'a str>) -> TrainingFeatures {
    let mut features = TrainingFeatures::default();
    for m in explain_trainee(messages) {
        features.counts[m.cue as usize] += 1;
    }
    features
}

/// Every match [`extract_trainee`] counts, in message and sentence order, with the words that
/// fired it: what a trainee or supervisor is shown to explain a count.
pub fn explain_trainee<'a>(messages: impl IntoIterator<Item = &'a str>) -> Vec<CueMatch> {
    let mut out = Vec::new();
    let mut asked_before = false;
    for (message, text) in messages.into_iter().enumerate() {
        let sentences = sentences(text);
        let cxs: Vec<Cx<'_>> = sentences.iter().map(Cx::new).collect();
        let asked = cxs
            .iter()
            .any(|cx| cx.first(List::Permission, Guard::None).is_some());
        for cx in &cxs {
            cx.techniques(message, asked || asked_before, &mut out);
            cx.bias(message, &mut out);
        }
        asked_before = asked;
    }
    out
}

/// Function-word lists, space-separated. FILLERS are skipped at a clause start before an
/// anchored (`^`) pattern. A negator (`lex-1`'s and MORE_NEGATORS) up to NEGATION_WINDOW words
/// before a match, in its clause, cancels it; `not` between an AUX and a SUBJECT ("don't you
/// think…") is a rhetorical question, not a negation. A REPORT_VERB up to REPORT_WINDOW words
/// before a bias match makes it the client's view being reflected or someone's words being
/// reported, unless "i" or "we" holds the belief. `'s` after an IS_WORD reads as `is`.
const FILLERS: &str = "so and but okay ok well now alright right um uh hmm mm mhm yeah yes oh \
    then also hey please";
const MORE_NEGATORS: &str = "none nothing nobody";
const NEGATION_WINDOW: usize = 5;
const AUX: &str = "do does did is are was were would could can will should have has had";
const SUBJECTS: &str = "you it that this he she they we i";
const REPORT_VERBS: &str = "think thinks thought feel feels felt feeling believe believes \
    believed worry worries worried wonder wondering wondered blame blames blaming blamed tell \
    tells telling told say says saying said taught heard learned learnt raised afraid scared fear";
const REPORT_WINDOW: usize = 6;
const IS_WORDS: &str = "it that what there here he she who where how this everyone everybody \
    nobody someone somebody something nothing everything life which why when let";

fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

/// The lists, by section: a cue's `training` v1 field name, or a helper list. One pattern a
/// line: `(a|b c)` one of the alternatives, `?` optional, `_` any word, `!(…)` the next words
/// are none of these, `!<(…)` the word before is none of these, `^` at a clause start only.
/// Ethnic, racial and sexual-orientation slurs are deliberately not shipped (docs/LEXICON.md).
const RULES: &str = "
    [open]
    ^ what !(time|day|days|year|date|month)
    ^ how !(many|much|often|long|old|far|soon)
    ^ why !(do not you|not _)
    ^ in what (way|ways|sense)
    [open-imperative]
    ^ tell me !(if|when|whenever)
    ^ why do not you (tell|describe|say more|talk|share|walk me through)
    ^ (describe|explain|help me understand|walk me through|say more|talk about|talk to me about)
    ^ (could|can|would|will) you (please)? (tell|describe|explain|say more|walk me through|help me understand|share|talk)
    ^ i (wonder|am wondering|am curious) (what|how|why|about|if|whether)
    ^ i would (like|love) to (hear|know|understand)
    [simple]
    ^ (it|that)? (sounds|sounded|seems|seemed|looks) (like|as if|as though|that)
    ^ (it seems|so you|you said|you have been)
    ^ you (feel|felt|are feeling|were feeling|are saying|were saying|are telling me)
    ^ (what i am hearing|i am hearing|i hear) (is|that|you saying|you say)
    ^ you (want|would like|do not want|wish|hope|miss|love|care|value|think|believe|wonder|worry|are hoping)
    ^ you (are|were) (really|so|pretty|quite|a bit|a little)? (worried|scared|afraid|frustrated|angry|sad|tired|exhausted|overwhelmed|unsure|not sure|stuck|lonely|hurt|disappointed|confused|anxious|ready|concerned|struggling|proud|fed up)
    [complex]
    (part of you|torn between|on one hand|on the one hand)
    (and|but|yet) at the same time
    you are (also)? (wondering|not sure|unsure) (whether|if)
    (you are|you feel|you seem|you are feeling|feeling|you have been) (really|so|a bit)? torn
    [complex-extension]
    (because|but|even though|although|deep down|underneath|important to you)
    (matters|means) (so much|a lot)? to you
    [mi_affirmations]
    (that|this|it) (took|takes|must have taken|has taken) (a lot of|real|so much|great|some)? (courage|guts|strength|bravery|effort)
    (you have|you) (worked|been working) (so|really|very)? hard
    you (did|have done) (really|so|very)? (well|great|a great job|a good job|an amazing job|the right thing|something hard|something difficult)
    i (really)? appreciate (your|you|how|that you)
    (thank you|thanks) for (sharing|being|telling|trusting|opening|your honesty)
    you are (really|so|very|clearly|incredibly|obviously)? (strong|resilient|brave|courageous|committed|determined|resourceful|persistent|dedicated|caring|thoughtful|insightful|honest)
    (you should be proud|you can be proud|well done|good for you|great job|good job|nice work|great work|you managed to|you clearly care)
    i am (really|so|very)? proud of you
    (that|this) is (a|an)? (big|great|huge|real|important|significant) (step|achievement|accomplishment|change)
    you have (made|shown) (real|great|a lot of|so much|good|some)? (progress|courage|strength|commitment|resilience|effort)
    (it is clear you|it is clear that you|you really care|you care) (care)? (a lot|deeply|so much)? about
    you handled (that|it|this) (so|really)? well
    [mi_summaries]
    let me (summarize|summarise|recap|sum up|sum that up|sum it up|pull this together|pull that together|pull it together|pull everything together)
    (to|just to) (summarize|summarise|recap|sum up|sum it up|sum things up)
    (in summary|putting it all together|if i put it all together|to put it all together)
    so far (we have|you have) (talked|discussed|covered|said|told me|mentioned|shared)
    let me (see|check|make sure) (if|that)? (i have|i) (got|gotten|understood|understand|have got|have) (this|that|it|everything|you|what)
    let me make sure i (understand|have|got|heard)
    (here is|this is) what i (have heard|heard|am hearing) so far
    [mi_advice_unpermitted]
    !<(if|when|whenever|what|whatever|unless|do|did|does) you (really|just|seriously|definitely|absolutely|honestly|probably)? (should|need to|have to|ought to|had better|would better|have got to|got to|gotta) !(have|be proud|be over)
    !<(if|when|whenever|what|whatever|unless|do|did|does) you must !(be|have|feel|really be|know)
    i (would)? (suggest|recommend|advise) (you|that you|that|trying)
    (my advice is|my advice would be|my suggestion is|my recommendation is|if i were you)
    ^ (just)? try (to|and|not to)
    ^ (just)? (stop|quit) (drinking|using|smoking|worrying|overthinking|taking)
    [advice-question]
    why do not you !(tell|describe|say more|talk|share|walk me through)
    why not (just|try|give|go|call|take|talk|ask|start|stop|quit|get|see|tell)
    [permission]
    (would|will|is|could) it be (okay|ok|alright|all right|fine|helpful) (if|with you if) (i|we)
    is it (okay|ok|alright|all right|fine) (if|with you if) (i|we)
    (may|can|could|might) i (share|offer|suggest|give|tell|add|mention|make)
    (do|would) you mind if i
    would you (like|want|be interested in|be open to) (to hear|hearing|some|a|my|an|me to)
    (are you open to|would you be open to|with your permission)
    if (it is|that is) (okay|ok|alright|all right|fine) with you
    if you are (open|interested|okay|ok) (to|in|with)
    if you would like (some|me|to hear|an|a)
    [mi_confrontations]
    you are (just|only|simply|clearly|obviously|still|completely|dead)? (in denial|lying|wrong|kidding yourself|fooling yourself|lying to yourself|making excuses|the problem|your own worst enemy|an alcoholic|an addict|a drunk|a junkie|a liar|a druggie|a crackhead)
    (stop making excuses|those are excuses|those are just excuses|that is a lie|it is a lie|you are not being honest|face the facts|face reality)
    (you need to|you have to|you must|you should|just|you will have to) admit
    (that|it|this) is (just|simply)? not true
    ^ (just)? face (facts|it|the truth)
    you (need to|have to|must|should) face (the facts|facts|reality|the truth)
    (be|start being|try being) honest with yourself
    you know (better|that is not true|that is a lie)
    you do not (really)? want to (change|get better|stop|quit)
    you are not (even|really)? trying
    (that|this) is (ridiculous|nonsense|absurd)
    [empathy_statements]
    (that|this|it) must (be|have been|feel|have felt) (so|really|very|incredibly|such a)? (hard|difficult|painful|tough|scary|frightening|exhausting|overwhelming|lonely|confusing|frustrating|upsetting|heartbreaking|awful|terrible|devastating|a lot|stressful|draining)
    i (can|could)? (really|only|totally)? (understand|imagine|see) (how|why|that|what)
    (i can imagine|i can only imagine|no wonder you|no wonder that|i am here for you|i am with you)
    i am (so|really|very|truly)? sorry (you|that|to hear|for your loss|about|for what)
    (that|this|it) (sounds|sounded|is|was|has been|is been|seems|feels) (so|really|very|incredibly|pretty|such a|like a|a|a really|a very)? (painful|overwhelming|hard|difficult|exhausting|frightening|scary|lonely|heartbreaking|devastating|upsetting|tough|awful|distressing|stressful|draining|a lot) !(to say|to tell|to know|to answer|to explain|for me|of)
    you must (have felt|feel|be feeling|have been) (so|really|very)? (alone|lonely|exhausted|scared|frightened|overwhelmed|hurt|devastated|heartbroken|frustrated|worn out)
    (it is okay to|it is ok to|it is alright to|you have every right to) (feel|be|cry|grieve)
    (that|this|it|your feelings|your reaction|your anxiety|your anger|your fear) (makes|make) (complete|total|perfect)? sense
    (anyone would|of course you) (feel|be|have|are|would|were)
    it is (completely|totally|perfectly|so)? (understandable|natural|normal) (that|to feel|you)
    (that|this) is (so|completely|totally)? understandable
    your (feelings|reaction|reactions) (are|is) (completely|totally)? (valid|understandable|natural|normal)
    i hear you !(saying|say|said)
    (it|this|that) (is|was)? not your fault
    none of (this|that|it) (is|was) your fault
    you are not (overreacting|crazy|alone|weak|a failure|a burden|to blame|being dramatic|broken)
    (you did nothing wrong|you did not do anything wrong)
    you do not deserve (this|that|to)
    [bias_stigma_label]
    (drug|heroin|crack|meth|opioid|opiate|cocaine|iv|injection|former|ex|recovering|reformed)? (addict|addicts)
    (substance|drug|alcohol|opioid|opiate|heroin|cocaine|meth|polysubstance) (abuser|abusers)
    (drug|heroin|crack|meth|opioid|opiate|cocaine|iv|injection|intravenous|injecting) (user|users)
    !<(non) alcoholic !(drink|drinks|beverage|beverages|liver|hepatitis|cirrhosis|content|punch|cocktail|cocktails|beer|wine|spirits|cider|anonymous|fatty)
    alcoholics !(anonymous)
    (schizophrenic|schizophrenics|bipolars|borderlines|anorexics|bulimics|depressives|psychotics|drunks)
    (a|the) bipolar !(disorder|disorders|i|ii|1|2|spectrum|type|depression|illness|diagnosis|episode|episodes|symptoms|medication|medications|meds|treatment|condition|affective|mood|clinic)
    (a|the) borderline !(personality|pd|bpd|disorder|traits|trait|features|symptoms|diagnosis|case|score|result|level|range|value)
    (the mentally ill|mental patient|mental patients|psych patient|psych patients)
    mentally ill (people|person|patients|patient|man|woman|men|women|individuals|folks)
    (suffer|suffers|suffered|suffering|victim|victims|afflicted|stricken) (from|of|with|by) _? _? (depression|anxiety|schizophrenia|bipolar|addiction|alcoholism|ptsd|ocd|autism|adhd|anorexia|bulimia|psychosis|dementia|mental|illness|disorder|disability|substance|drugs|alcohol)
    (clean|dirty) (urine|urines|test|tests|drug|tox|screen|screens|sample|samples|ua|uas|urinalysis)
    (test|tests|tested|testing|urine|urines|screen|screens|sample|samples|ua|uas|tox|urinalysis|results) _? _? _? (clean|dirty)
    (been|stay|stayed|staying|stays|get|got|getting|gotten|keep|kept|remain|remained|remaining) clean !(clothes|house|room|kitchen|up|and tidy|hands|sheets|laundry)
    (clean and sober|commit suicide|commits suicide|committed suicide|committing suicide)
    [bias_dismissive]
    (you|you just|you need to|you have to|you should|just|you will|you just need to|you just have to|you really need to) (get|got) over (it|this|that)
    ^ (just)? get over (it|this|that)
    (it|this|that) (is|was)? (really)? not (such)? a big deal
    (no big deal|cheer up|look on the bright side|snap out of it|do not worry about it)
    (it|this|that) (is|was)? not that (bad|serious|big|hard)
    (everyone|everybody|we all|all of us) (feels|feel|felt) (that way|like that|this way|the same|sad|down|anxious|stressed|that|this)
    (everyone|everybody|we all|all of us) (goes|go|has gone|have gone|went) through (this|that|it)
    (everyone|everybody) gets (sad|down|anxious|stressed|nervous|depressed|lonely)
    you are (just|being|so|totally|a bit|a little)? (overreacting|exaggerating|overdramatic|oversensitive|hysterical|dramatic|too sensitive|overly sensitive|overly dramatic|silly|making a big deal|making a mountain)
    (stop being|quit being|do not be) (so)? (dramatic|sensitive|silly|negative|emotional|a baby)
    (it|things|this|that)? could (always)? (be|have been) worse
    ^ (just)? (think|stay|be) positive
    you (need to|should|have to|just need to) (think|stay|be) positive
    ^ (just)? (calm down|relax)
    (it is|that is|this is|it is all|that is all|it is just|that is just|all|just) in your head
    (stop|quit) (worrying|crying|complaining|whining)
    ^ at least (you|your|it|he|she|they|there|that|this|nobody|no one|things|someone)
    (it is|that is)? (just|only) a phase
    (others|other people|people|some people|lots of people|many people) have it (so|much|way|a lot)? worse
    you have (nothing|no reason) to be (sad|upset|depressed|anxious|worried|stressed|unhappy|angry|scared|afraid)
    [bias_blaming]
    your (own)? (fault|doing)
    you (brought|bring) (this|it|that|all this|all of this|all that) on yourself
    you did (this|it|that|all this|all of this) to yourself
    you (only)? have (only)? yourself to blame
    (you have|there is) (no one|nobody) (to blame)? but yourself
    (you asked for it|you asked for this|you made your bed|you made your own bed|you got what you deserved|that is what happens when you|what did you expect|if only you had)
    you chose (this|that|to drink|to use|to keep drinking|to keep using|to do drugs|to do this|to do that|to relapse|to stay)
    it was your (own)? choice to (drink|use|relapse|stay)
    if (only)? you (had|would have) (just|only)
    if you had (listened|stopped|left|tried|not)
    you should have (known|seen it coming|listened|stopped|been more careful|left|thought|realized|realised)
    (that|it|this) is on you
    [bias_stereotype]
    (women|girls|females|ladies) (are|get)? (always|just|naturally|all|too|so|way|very|really|more)? (too|so)? (emotional|hysterical|irrational|dramatic|sensitive|moody|hormonal|illogical|weak|fragile|manipulative|crazy)
    (men|boys|guys|males) (do not|never|can not|should not|are not supposed to) (cry|talk|share|show|ask|feel|get)
    (men|boys|guys|males) are (all|always|just|naturally|so)? (aggressive|violent|pigs|dogs|insensitive|emotionless|stupid|useless|lazy|simple|clueless|like that|the same)
    ^ (women|men|girls|boys|guys|females|males|ladies) (always|never)
    (man up|boys will be boys|real men|you people|your kind|kids these days|be a man about it|act like a man|acting like a man)
    a real man (would|does|do|does not|do not|can|should)
    (do not)? (throw|throws|run|runs|cry|cries|crying|fight|fights|act|acting|scream|screaming) like a girl
    (good|smart|strong|tough|brave|articulate|well|clever|confident|assertive|aggressive|ambitious|pretty|bright|emotional|sensitive) for a (girl|woman|lady|boy|man|guy)
    (good|smart|strong|tough|brave|articulate|clever|confident|fit|healthy|sharp) for (someone|a person|somebody) (your|of your) age
    people like you (are|always|never|do not|can not|tend to|just|should|will never|get)
    your people (are|always|never|do not|can not|tend to|just)
    typical (man|men|woman|women|male|female|teenager|teen|teenage|millennial|boomer|girl|guy|boy|zoomer)
    you are too (old|young) to
    at your age (you|people) (should|should not|ought|need|must|can not|are supposed|have to|are too)
    (your|this) generation (is|are|always|never|can not|does not|just|has no)
    (gay|black|white|asian|muslim|christian|jewish|hindu|catholic|immigrant|hispanic|latino|latina|mexican|chinese|indian|african|arab|trans|transgender|lesbian|bisexual|old|young|older|younger|elderly|religious|poor|rich|disabled) (people|men|women|guys|girls|boys|folks|kids) (are|always|never|tend to|can not|do not|all|just|usually|should) !(more|less|at|disproportionately|often|overrepresented|underrepresented|likely|also|still|welcome|not|twice|entitled|protected)
    (muslims|christians|jews|immigrants|asians|blacks|whites|gays|hispanics|latinos|mexicans|arabs|catholics|hindus|millennials|boomers|teenagers|teens) (are|always|never|tend to|can not|do not|all|just|usually) !(more|less|at|disproportionately|often|overrepresented|underrepresented|likely|also|still|welcome|not|twice|entitled|protected)
    [bias_pathologizing]
    (grief|grieving|sadness|mourning|crying|sorrow|tears|nervousness|shyness|worry|worrying|feelings|reaction|reactions|fear|fears|loneliness|disappointment) (is|are|sounds|seems|seem|sound|has become|have become) (like)? (a|an)? (real|serious|clinical)? (disorder|illness|disease|sickness|symptom|pathological|abnormal|mental illness|pathology)
    (not normal|abnormal|crazy|insane|irrational|weird|ridiculous|silly|unhealthy|pathological|nuts) to (still)? (be|feel|cry|grieve|worry|miss|want|get|have)
    (should|ought to) (be|have gotten|have got|have been) over (it|this|that|him|her|them|the loss) (by now|already)?
    should have moved on
    you are (being|so|a bit|a little|kind of|sort of|just|really|totally|acting)? (paranoid|obsessive|ocd|neurotic|delusional|psychotic|manic|crazy|insane|nuts|mental)
    you are (being|so|a bit|a little|kind of|acting) bipolar
    you (sound|seem|look) (so|a bit|a little|kind of|really)? (crazy|paranoid|insane|nuts|psychotic|delusional|manic|obsessive|ocd|bipolar)
    (that|this|it) is (so|a bit|a little|kind of|really|pretty|totally) (ocd|bipolar|psychotic|delusional|neurotic|paranoid)
    [bias_slur]
    psycho !(education|educational|social|therapy|therapies|therapeutic|therapist|analysis|analytic|dynamic|dynamics|somatic|pharmacology|motor|metric|metrics|oncology|spiritual|sexual|physiological|biology|linguistic|stimulant|stimulants|active|logical|neuro)
    (psychos|lunatic|lunatics|nutjob|nutjobs|nutcase|nutcases|nutter|nutters|loony|loonie|loonies|looney|nuthouse|junkie|junkies|junky|crackhead|crackheads|methhead|methheads|cokehead|cokeheads|druggie|druggies|tweaker|tweakers|retard|retards|retarded|spaz|schizos|crazies|maniac|maniacs|wacko|wackos|whacko|funny farm|insane asylum)
    schizo !(affective|typal|typy|phrenia|phrenic|id|ids)
    (nut|crack|meth|coke) (job|jobs|case|cases|head|heads)
    (mental|basket|head) (case|cases)
    (freak|freaks) !(out|outs|show)
    (a|the|those|these) (cripple|cripples)
    (these|those|such|they|addicts|junkies|users|patients|people) (people)? are (just|all|like|nothing but)? (animals|vermin|scum|subhuman|parasites|savages|garbage|trash|less than human)
";

/// A section of [`RULES`]: interrogatives of open questions; open questions with or without a
/// question mark ("tell me…"); reflection openers; complex-reflection markers; what makes a
/// reflection complex after an opener; asking permission; advice as a question; a cue's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Open,
    OpenImperative,
    Simple,
    Complex,
    ComplexExtension,
    Permission,
    AdviceQuestion,
    Cue(Cue),
}

static LISTS: LazyLock<Vec<(List, Pattern)>> = LazyLock::new(|| {
    let cue = |field: &str| Cue::ALL.into_iter().find(|c| c.field() == field);
    let (mut list, mut out) = (List::Open, Vec::new());
    for line in RULES.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
            out.push((list, Pattern::parse(line)));
            continue;
        };
        list = match name {
            "open" => List::Open,
            "open-imperative" => List::OpenImperative,
            "simple" => List::Simple,
            "complex" => List::Complex,
            "complex-extension" => List::ComplexExtension,
            "permission" => List::Permission,
            "advice-question" => List::AdviceQuestion,
            field => List::Cue(cue(field).expect("a section is a list or a field")),
        };
    }
    out
});

/// How a match can be cancelled by its context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    None,
    /// By a negator shortly before it in its clause.
    Negation,
    /// By negation, or by following a verb that reports someone else's belief or words.
    Report,
}

/// Masks quoted spans (`"…"`, `“…”`, and `'…'` / `‘…’` where the marks stand outside words):
/// each becomes the word `quoted`, followed by a full stop if the quote ended a sentence.
fn mask_quotes(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut masked = vec![false; chars.len()];
    for double in [true, false] {
        let mut open: Option<usize> = None;
        for (i, &c) in chars.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let (opens, closes) = if double {
                (c == '"' || c == '\u{201c}', c == '"' || c == '\u{201d}')
            } else if masked[i] || !matches!(c, '\'' | '\u{2018}' | '\u{2019}') {
                (false, false)
            } else {
                let before = |p: char| p.is_whitespace() || "([-:\u{2013}\u{2014}".contains(p);
                (
                    c != '\u{2019}'
                        && prev.is_none_or(before)
                        && next.is_some_and(|n| !n.is_whitespace()),
                    prev.is_some_and(|p| !p.is_whitespace())
                        && next.is_none_or(|n| !n.is_alphanumeric()),
                )
            };
            match open {
                Some(start) if closes => {
                    masked[start..=i].fill(true);
                    open = None;
                }
                None if opens => open = Some(i),
                _ => {}
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        if !masked[i] {
            out.push(c);
        } else if masked.get(i + 1) != Some(&true) {
            let ended = i > 0 && matches!(chars[i - 1], '.' | '!' | '?');
            out.push_str(if ended { " quoted. " } else { " quoted " });
        }
    }
    out
}

/// One sentence of a message: its words, and whether it ends with a question mark.
struct Sentence {
    tokens: Vec<Token>,
    question: bool,
}

/// Cuts a message into sentences at `.`, `!`, `?` and line breaks (not at a decimal point).
fn sentences(message: &str) -> Vec<Sentence> {
    // `'s` split off so that it survives `lex-1`'s tokenizer as `s`, read as `is` after an
    // IS_WORD (`let's` as `let us`) and dropped otherwise.
    let text = mask_quotes(message).to_lowercase();
    let chars: Vec<char> = text
        .replace(['\u{2019}', '\u{2bc}'], "'")
        .replace("'s", " 's")
        .chars()
        .collect();
    let mut out = Vec::new();
    let mut flush = |text: &mut String, question: &mut bool| {
        let mut tokens = tokenize(text);
        for i in 1..tokens.len() {
            if tokens[i].word == "s" && listed(IS_WORDS, &tokens[i - 1].word) {
                tokens[i].word = if tokens[i - 1].word == "let" {
                    "us"
                } else {
                    "is"
                }
                .into();
            }
        }
        tokens.retain(|t| t.word != "s");
        if !tokens.is_empty() {
            out.push(Sentence {
                tokens,
                question: *question,
            });
        }
        text.clear();
        *question = false;
    };
    let (mut text, mut question, mut ended) = (String::new(), false, false);
    for (i, &c) in chars.iter().enumerate() {
        let decimal = c == '.'
            && i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if matches!(c, '.' | '!' | '?' | '\n') && !decimal {
            question |= c == '?';
            ended = true;
            continue;
        }
        if std::mem::take(&mut ended) {
            flush(&mut text, &mut question);
        }
        text.push(c);
    }
    flush(&mut text, &mut question);
    out
}

/// A sentence being matched.
struct Cx<'a> {
    tokens: &'a [Token],
    words: Vec<&'a str>,
    /// Where a clause starts, fillers skipped.
    anchors: Vec<bool>,
    question: bool,
}

impl<'a> Cx<'a> {
    fn new(s: &'a Sentence) -> Cx<'a> {
        let mut anchors = Vec::with_capacity(s.tokens.len());
        let mut open = true;
        for (i, t) in s.tokens.iter().enumerate() {
            open |= i == 0 || s.tokens[i - 1].clause != t.clause;
            anchors.push(open);
            open &= listed(FILLERS, &t.word);
        }
        Cx {
            tokens: &s.tokens,
            words: s.tokens.iter().map(|t| t.word.as_str()).collect(),
            anchors,
            question: s.question,
        }
    }

    fn negated(&self, at: usize) -> bool {
        let w = &self.words;
        (at.saturating_sub(NEGATION_WINDOW)..at).any(|j| {
            let negator = NEGATORS.contains(&w[j]) || listed(MORE_NEGATORS, w[j]);
            let rhetorical = w[j] == "not"
                && j > 0
                && listed(AUX, w[j - 1])
                && w.get(j + 1).is_some_and(|n| listed(SUBJECTS, n));
            self.tokens[j].clause == self.tokens[at].clause && negator && !rhetorical
        })
    }

    fn reported(&self, at: usize) -> bool {
        let w = &self.words;
        (at.saturating_sub(REPORT_WINDOW)..at).any(|j| {
            let before = &w[j.saturating_sub(2)..j];
            listed(REPORT_VERBS, w[j])
                && !before.iter().any(|b| *b == "i" || *b == "we")
                && before != ["not", "you"]
        })
    }

    fn passes(&self, guard: Guard, at: usize) -> bool {
        match guard {
            Guard::None => true,
            Guard::Negation => !self.negated(at),
            Guard::Report => !self.negated(at) && !self.reported(at),
        }
    }

    /// The longest match of `list` at each position where one starts and passes `guard`.
    fn all(&self, list: List, guard: Guard) -> Vec<(usize, usize)> {
        (0..self.words.len())
            .filter_map(|at| {
                let end = LISTS
                    .iter()
                    .filter(|(l, _)| *l == list)
                    .filter_map(|(_, p)| p.longest(&self.words, &self.anchors, at))
                    .max()?;
                self.passes(guard, at).then_some((at, end))
            })
            .collect()
    }

    fn first(&self, list: List, guard: Guard) -> Option<(usize, usize)> {
        self.all(list, guard).into_iter().next()
    }

    /// The technique cues of this sentence, each at most once.
    fn techniques(&self, message: usize, permitted: bool, out: &mut Vec<CueMatch>) {
        let mut emit = |cue: Cue, (a, b): (usize, usize)| {
            let text = self.words[a..b].join(" ");
            out.push(CueMatch { message, cue, text });
        };
        let cue = |c: Cue| self.first(List::Cue(c), c.guard());
        let confront = self.all(List::Cue(Cue::Confrontation), Guard::Negation);
        let advice_q = self.first(List::AdviceQuestion, Guard::Negation);
        let mut advice: Vec<_> = advice_q.into_iter().collect();
        if !self.question {
            advice.extend(self.all(List::Cue(Cue::AdviceUnpermitted), Guard::Negation));
        }
        let imperative = self.first(List::OpenImperative, Guard::None);
        if let Some(m) = cue(Cue::Summary) {
            emit(Cue::Summary, m);
        } else if self.question {
            if advice_q.is_none() {
                let open = imperative.is_some() || self.first(List::Open, Guard::None).is_some();
                let c = [Cue::ClosedQuestion, Cue::OpenQuestion][usize::from(open)];
                emit(c, (0, self.words.len()));
            }
        } else if let Some(m) = imperative {
            emit(Cue::OpenQuestion, m);
        } else if advice.is_empty() && confront.is_empty() {
            if let Some(m) = self.first(List::Complex, Guard::None) {
                emit(Cue::ComplexReflection, m);
            } else if let Some(m) = self.first(List::Simple, Guard::None) {
                let complex = self.first(List::ComplexExtension, Guard::None).is_some();
                let c = [Cue::SimpleReflection, Cue::ComplexReflection][usize::from(complex)];
                emit(c, m);
            }
        }
        for c in [Cue::Affirmation, Cue::Empathy] {
            if !self.question
                && let Some(m) = cue(c)
            {
                emit(c, m);
            }
        }
        if let Some(&m) = confront.first() {
            emit(Cue::Confrontation, m);
        }
        let unconfronting = advice
            .into_iter()
            .find(|&(a, b)| !confront.iter().any(|&(c, d)| a < d && c < b));
        if !permitted && let Some(m) = unconfronting {
            emit(Cue::AdviceUnpermitted, m);
        }
    }

    /// The bias cues of this sentence: every match, the longest at a position consuming its
    /// words.
    fn bias(&self, message: usize, out: &mut Vec<CueMatch>) {
        let mut i = 0;
        while i < self.words.len() {
            let mut best: Option<(Cue, usize)> = None;
            for (list, p) in LISTS.iter() {
                if let List::Cue(cue) = *list
                    && cue.is_bias()
                    && let Some(end) = p.longest(&self.words, &self.anchors, i)
                    && best.is_none_or(|(_, e)| end > e)
                {
                    best = Some((cue, end));
                }
            }
            let Some((cue, end)) = best else {
                i += 1;
                continue;
            };
            if self.passes(cue.guard(), i) {
                let text = self.words[i..end].join(" ");
                out.push(CueMatch { message, cue, text });
            }
            i = end;
        }
    }
}

#[cfg(test)]
mod tests;
