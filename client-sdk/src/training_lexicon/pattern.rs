//! The pattern language `train-lex-1`'s lists are written in, one pattern a line: words,
//! `(a|b c)` one of the alternatives, `?` optional, `_` any word, `!(…)` the next words are
//! none of these, `!<(…)` the word before is none of these, `^` at a clause start only. A
//! pattern matches a sentence's words at a position; the longest match wins.

/// One element of a pattern.
#[derive(Debug)]
pub(super) enum Slot {
    /// One of these word sequences (optional when `true`).
    Words(Vec<Vec<String>>, bool),
    /// Any one word (optional when `true`).
    Any(bool),
    /// None of these starts here (`false`) or is the word before (`true`).
    Not(Vec<Vec<String>>, bool),
}

#[derive(Debug)]
pub(super) struct Pattern {
    anchored: bool,
    pub(super) slots: Vec<Slot>,
}

impl Pattern {
    /// Parses one line of a list (the syntax is described at `RULES`).
    pub(super) fn parse(src: &str) -> Pattern {
        let mut depth = 0i32;
        let elements = src.split(|c: char| {
            depth += i32::from(c == '(') - i32::from(c == ')');
            c == ' ' && depth == 0
        });
        let alts = |e: &str| -> Vec<Vec<String>> {
            let e = e
                .trim_start_matches(['!', '<', '('])
                .trim_end_matches([')', '?']);
            let words = |a: &str| a.split_whitespace().map(str::to_owned).collect();
            e.split('|').map(words).collect()
        };
        let mut p = Pattern {
            anchored: false,
            slots: Vec::new(),
        };
        for e in elements.filter(|e| !e.is_empty()) {
            let optional = e.ends_with('?');
            p.slots.push(match e {
                "^" => {
                    p.anchored = true;
                    continue;
                }
                "_" | "_?" => Slot::Any(optional),
                _ if e.starts_with("!<") => Slot::Not(alts(e), true),
                _ if e.starts_with('!') => Slot::Not(alts(e), false),
                _ => Slot::Words(alts(e), optional),
            });
        }
        p
    }

    /// The end of the longest non-empty match starting at `at`.
    pub(super) fn longest(&self, words: &[&str], anchors: &[bool], at: usize) -> Option<usize> {
        if self.anchored && !anchors[at] {
            return None;
        }
        let mut best = None;
        ends(&self.slots, words, at, &mut best);
        best.filter(|&end| end > at)
    }
}

fn starts_with(words: &[&str], at: usize, seq: &[String]) -> bool {
    words.len() >= at + seq.len()
        && seq
            .iter()
            .zip(&words[at..])
            .all(|(s, w)| s == "_" || s == w)
}

/// Records in `best` the furthest position where `slots` can end, starting at `i`.
fn ends(slots: &[Slot], words: &[&str], i: usize, best: &mut Option<usize>) {
    let Some((slot, rest)) = slots.split_first() else {
        *best = Some(best.map_or(i, |b: usize| b.max(i)));
        return;
    };
    match slot {
        Slot::Words(alts, optional) => {
            for alt in alts.iter().filter(|alt| starts_with(words, i, alt)) {
                ends(rest, words, i + alt.len(), best);
            }
            if *optional {
                ends(rest, words, i, best);
            }
        }
        Slot::Any(optional) => {
            if i < words.len() {
                ends(rest, words, i + 1, best);
            }
            if *optional {
                ends(rest, words, i, best);
            }
        }
        Slot::Not(alts, before) => {
            let hit = match before {
                true => i > 0 && alts.iter().any(|a| starts_with(words, i - 1, a)),
                false => alts.iter().any(|a| starts_with(words, i, a)),
            };
            if !hit {
                ends(rest, words, i, best);
            }
        }
    }
}
