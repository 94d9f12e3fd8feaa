//! On-device text features: per-category word counts from a versioned lexicon.
//!
//! Text is never FHE-processed as a string. The app turns a transcript into nine counts here,
//! encrypts the counts, and seals the transcript itself to the key holder. Sources and rules
//! are documented in `docs/LEXICON.md`; the lists are our own, informed by the cited work, and
//! are not a validated clinical instrument.
//!
//! Tokenisation: Unicode lower-casing, curly apostrophes folded, words are runs of letters and
//! digits with inner apostrophes, contractions expanded (`can't` → `can not`, `I'm` → `i am`),
//! and clause punctuation (`. , ; : ! ?` and dashes) bounds negation. Multi-word phrases are
//! matched before single words and consume their tokens. A negator (`not`, `no`, `never`,
//! `without`, `hardly`, `barely`, `nor`) up to three words before a term, in the same clause,
//! cancels it for the negatable categories (hopelessness, emotions, isolation). Suicidal
//! ideation and self-harm are never negated: a false alarm costs less than a missed one.

use std::collections::BTreeMap;

use blindsight_crypto::schemas::{TEXT_FEATURE_MAX, TEXT_FEATURES};

/// The lexicon version; it travels in every record's metadata (`lexicon_version`).
pub const LEXICON_VERSION: &str = "lex-1";

/// The categories, in the order of [`TEXT_FEATURES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// Thoughts of suicide or of being better off dead.
    SuicidalIdeation,
    /// Self-harm.
    SelfHarm,
    /// Hopelessness.
    Hopelessness,
    /// Absolutist words (Al-Mosaiwi & Johnstone 2018).
    Absolutist,
    /// First-person singular pronouns.
    FirstPerson,
    /// Negative emotion.
    NegativeEmotion,
    /// Positive emotion.
    PositiveEmotion,
    /// Loneliness and isolation.
    Isolation,
    /// Substance use.
    Substance,
}

const ALL: [Category; 9] = [
    Category::SuicidalIdeation,
    Category::SelfHarm,
    Category::Hopelessness,
    Category::Absolutist,
    Category::FirstPerson,
    Category::NegativeEmotion,
    Category::PositiveEmotion,
    Category::Isolation,
    Category::Substance,
];

impl Category {
    /// The schema field this category's count is stored in.
    pub fn field(self) -> &'static str {
        TEXT_FEATURES[self as usize]
    }

    fn negatable(self) -> bool {
        matches!(
            self,
            Category::Hopelessness
                | Category::NegativeEmotion
                | Category::PositiveEmotion
                | Category::Isolation
        )
    }

    /// Function-word categories count every occurrence, independently of phrase matching.
    fn per_token(self) -> bool {
        matches!(self, Category::Absolutist | Category::FirstPerson)
    }

    fn words(self) -> &'static [&'static str] {
        match self {
            Category::SuicidalIdeation => &["suicide", "suicidal"],
            Category::SelfHarm => &["selfharm", "overdose", "overdosed", "overdosing"],
            Category::Hopelessness => &[
                "hopeless",
                "hopelessness",
                "pointless",
                "meaningless",
                "useless",
                "trapped",
                "helpless",
                "futile",
            ],
            Category::Absolutist => &[
                "absolutely",
                "all",
                "always",
                "complete",
                "completely",
                "constant",
                "constantly",
                "definitely",
                "entire",
                "ever",
                "every",
                "everyone",
                "everything",
                "full",
                "must",
                "never",
                "nothing",
                "totally",
                "whole",
            ],
            Category::FirstPerson => &["i", "me", "my", "mine", "myself"],
            Category::NegativeEmotion => &[
                "sad",
                "sadness",
                "depressed",
                "depression",
                "miserable",
                "awful",
                "terrible",
                "hate",
                "hated",
                "angry",
                "anger",
                "anxious",
                "anxiety",
                "afraid",
                "scared",
                "fear",
                "worthless",
                "guilty",
                "guilt",
                "ashamed",
                "shame",
                "cry",
                "crying",
                "cried",
                "hurt",
                "pain",
                "upset",
                "numb",
                "exhausted",
                "stressed",
                "panic",
                "worried",
                "worry",
                "heavy",
                "empty",
            ],
            Category::PositiveEmotion => &[
                "happy", "glad", "good", "great", "better", "calm", "relaxed", "hopeful", "hope",
                "proud", "grateful", "thankful", "love", "loved", "enjoy", "enjoyed", "fun", "joy",
                "excited", "peaceful", "helped",
            ],
            Category::Isolation => &[
                "alone",
                "lonely",
                "loneliness",
                "isolated",
                "isolation",
                "nobody",
                "abandoned",
                "unwanted",
                "friendless",
                "withdrawn",
            ],
            Category::Substance => &[
                "alcohol",
                "drunk",
                "drinking",
                "drank",
                "beer",
                "wine",
                "vodka",
                "whiskey",
                "weed",
                "cannabis",
                "marijuana",
                "cocaine",
                "heroin",
                "meth",
                "opioids",
                "pills",
                "hungover",
                "hangover",
            ],
        }
    }

    fn phrases(self) -> &'static [&'static [&'static str]] {
        match self {
            Category::SuicidalIdeation => &[
                &["kill", "myself"],
                &["killing", "myself"],
                &["end", "my", "life"],
                &["ending", "my", "life"],
                &["take", "my", "life"],
                &["want", "to", "die"],
                &["wanna", "die"],
                &["better", "off", "dead"],
                &["better", "off", "without", "me"],
                &["no", "reason", "to", "live"],
                &["not", "worth", "living"],
                &["end", "it", "all"],
                &["wish", "i", "was", "dead"],
                &["wish", "i", "were", "dead"],
            ],
            Category::SelfHarm => &[
                &["cut", "myself"],
                &["cutting", "myself"],
                &["hurt", "myself"],
                &["hurting", "myself"],
                &["harm", "myself"],
                &["harming", "myself"],
                &["self", "harm"],
                &["burn", "myself"],
            ],
            Category::Hopelessness => &[
                &["no", "future"],
                &["give", "up"],
                &["giving", "up"],
                &["gave", "up"],
                &["no", "point"],
                &["no", "way", "out"],
                &["never", "get", "better"],
                &["nothing", "will", "change"],
                &["nothing", "ever", "changes"],
                &["can", "not", "go", "on"],
            ],
            Category::Isolation => &[&["no", "one"], &["no", "friends"], &["by", "myself"]],
            _ => &[],
        }
    }
}

pub(crate) const NEGATORS: &[&str] = &["not", "no", "never", "without", "hardly", "barely", "nor"];
const NEGATION_WINDOW: usize = 3;

/// A word and the clause it belongs to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) word: String,
    pub(crate) clause: usize,
}

fn expand(word: &str, clause: usize, out: &mut Vec<Token>) {
    let mut push = |w: &str| {
        out.push(Token {
            word: w.to_owned(),
            clause,
        })
    };
    match word {
        "can't" | "cant" | "cannot" => {
            push("can");
            push("not");
        }
        "won't" | "wont" => {
            push("will");
            push("not");
        }
        "dont" | "didnt" | "doesnt" | "isnt" | "wasnt" | "arent" | "werent" | "havent"
        | "hasnt" | "couldnt" | "wouldnt" | "shouldnt" => {
            push(&word[..word.len() - 2]);
            push("not");
        }
        _ => {
            if let Some(stem) = word.strip_suffix("n't") {
                push(stem);
                push("not");
            } else if let Some((stem, suffix)) = word.split_once('\'') {
                if !stem.is_empty() {
                    push(stem);
                }
                match suffix {
                    "m" => push("am"),
                    "re" => push("are"),
                    "ve" => push("have"),
                    "ll" => push("will"),
                    "d" => push("would"),
                    // Possessive or "is": nothing to count.
                    _ => {}
                }
            } else {
                push(word);
            }
        }
    }
}

pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let lower = text.to_lowercase();
    let mut tokens = Vec::new();
    let mut clause = 0;
    let mut word = String::new();
    fn flush(word: &mut String, clause: usize, tokens: &mut Vec<Token>) {
        let trimmed = word.trim_matches('\'');
        if !trimmed.is_empty() {
            expand(trimmed, clause, tokens);
        }
        word.clear();
    }
    for c in lower.chars() {
        let c = match c {
            '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' => '\'',
            other => other,
        };
        if c.is_alphanumeric() || (c == '\'' && !word.is_empty()) {
            word.push(c);
            continue;
        }
        flush(&mut word, clause, &mut tokens);
        if matches!(
            c,
            '.' | ',' | ';' | ':' | '!' | '?' | '\u{2014}' | '\u{2013}' | '\n'
        ) {
            clause += 1;
        }
    }
    flush(&mut word, clause, &mut tokens);
    tokens
}

fn negated(tokens: &[Token], at: usize) -> bool {
    let clause = tokens[at].clause;
    tokens[at.saturating_sub(NEGATION_WINDOW)..at]
        .iter()
        .any(|t| t.clause == clause && NEGATORS.contains(&t.word.as_str()))
}

/// Per-category counts of one text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    counts: [u32; 9],
}

impl Features {
    /// The (unclipped) count of `category`.
    pub fn count(&self, category: Category) -> u32 {
        self.counts[category as usize]
    }

    /// The counts by schema field name, clipped to [`TEXT_FEATURE_MAX`].
    pub fn clipped(&self) -> BTreeMap<&'static str, u32> {
        ALL.iter()
            .map(|&c| (c.field(), self.count(c).min(TEXT_FEATURE_MAX)))
            .collect()
    }
}

/// Extracts the lexicon features of `text`.
pub fn extract(text: &str) -> Features {
    let tokens = tokenize(text);
    let mut features = Features::default();
    for t in &tokens {
        for c in ALL.into_iter().filter(|c| c.per_token()) {
            if c.words().contains(&t.word.as_str()) {
                features.counts[c as usize] += 1;
            }
        }
    }
    let content: Vec<Category> = ALL.into_iter().filter(|c| !c.per_token()).collect();
    let mut i = 0;
    'tokens: while i < tokens.len() {
        // Longest phrase first, over every content category.
        let mut best: Option<(Category, usize)> = None;
        for &c in &content {
            for phrase in c.phrases() {
                let n = phrase.len();
                let fits = i + n <= tokens.len()
                    && phrase
                        .iter()
                        .zip(&tokens[i..i + n])
                        .all(|(p, t)| *p == t.word);
                if fits && best.is_none_or(|(_, m)| n > m) {
                    best = Some((c, n));
                }
            }
        }
        if let Some((c, n)) = best {
            if !(c.negatable() && negated(&tokens, i)) {
                features.counts[c as usize] += 1;
            }
            i += n;
            continue 'tokens;
        }
        for &c in &content {
            if c.words().contains(&tokens[i].word.as_str())
                && !(c.negatable() && negated(&tokens, i))
            {
                features.counts[c as usize] += 1;
            }
        }
        i += 1;
    }
    features
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.word).collect()
    }

    #[test]
    fn tokenizer_handles_case_punctuation_contractions_and_unicode() {
        assert_eq!(words("I CAN'T sleep."), ["i", "can", "not", "sleep"]);
        assert_eq!(
            words("I’m fine, I’ve been OK"),
            ["i", "am", "fine", "i", "have", "been", "ok"]
        );
        assert_eq!(
            words("don't won't isn't"),
            ["do", "not", "will", "not", "is", "not"]
        );
        assert_eq!(words("Zoë's café—naïve"), ["zoë", "café", "naïve"]);
        assert_eq!(words("'quoted' words"), ["quoted", "words"]);
        assert_eq!(words(""), Vec::<String>::new());
    }

    #[test]
    fn categories_are_counted() {
        let f = extract("I always feel hopeless and alone. I drank too much wine.");
        assert_eq!(f.count(Category::FirstPerson), 2);
        assert_eq!(f.count(Category::Absolutist), 1);
        assert_eq!(f.count(Category::Hopelessness), 1);
        assert_eq!(f.count(Category::Isolation), 1);
        assert_eq!(f.count(Category::Substance), 2);
        assert_eq!(f.count(Category::SuicidalIdeation), 0);
    }

    #[test]
    fn phrases_match_before_words() {
        let f = extract("Everyone would be better off without me. I want to end my life.");
        assert_eq!(f.count(Category::SuicidalIdeation), 2);
        // "better" inside the phrase is not positive emotion.
        assert_eq!(f.count(Category::PositiveEmotion), 0);
        let f = extract("Sometimes I hurt myself; my arm hurts.");
        assert_eq!(f.count(Category::SelfHarm), 1);
        assert_eq!(f.count(Category::FirstPerson), 3);
    }

    #[test]
    fn negation_cancels_negatable_categories_within_the_clause() {
        assert_eq!(extract("I'm not hopeless").count(Category::Hopelessness), 0);
        assert_eq!(
            extract("I don't feel happy").count(Category::PositiveEmotion),
            0
        );
        assert_eq!(
            extract("I am not really that alone").count(Category::Isolation),
            0
        );
        // The clause boundary ends the negation's scope.
        assert_eq!(
            extract("Not today. I am hopeless").count(Category::Hopelessness),
            1
        );
        // Too far back.
        assert_eq!(
            extract("not at all in any way hopeless").count(Category::Hopelessness),
            1
        );
        // Ideation is never negated.
        assert_eq!(
            extract("I don't want to die").count(Category::SuicidalIdeation),
            1
        );
    }

    #[test]
    fn counts_are_clipped_for_encryption() {
        let text = "always ".repeat(300);
        let f = extract(&text);
        assert_eq!(f.count(Category::Absolutist), 300);
        assert_eq!(f.clipped()["lex_absolutist"], 255);
        assert_eq!(f.clipped().len(), 9);
    }
}
