//! The documented commands: every `sh` block of the README and `docs/`, split into commands.

use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// The documented commands.

/// One command of a `sh` block: where it is, and its text (continuation lines joined,
/// comments removed; a quoted string may span lines).
#[derive(Clone, Debug)]
pub(crate) struct DocCommand {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) text: String,
}

pub(crate) fn workspace() -> PathBuf {
    // client-sdk/cli → the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// The files whose commands must run: the README, every page under `docs/`, the fuzz README.
pub(crate) fn doc_files() -> Vec<String> {
    let root = workspace();
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    let mut files = vec!["README.md".to_owned()];
    files.extend(docs);
    files.push("fuzz/README.md".into());
    files
}

pub(crate) fn doc_commands() -> Vec<DocCommand> {
    enum Fence {
        Outside,
        Shell(Vec<(usize, String)>),
        Other,
    }
    let mut out = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(workspace().join(&file)).unwrap();
        let mut fence = Fence::Outside;
        for (i, line) in text.lines().enumerate() {
            if let Some(lang) = line.strip_prefix("```") {
                fence = match fence {
                    Fence::Outside if matches!(lang.trim(), "sh" | "bash" | "shell") => {
                        Fence::Shell(Vec::new())
                    }
                    Fence::Outside => Fence::Other,
                    Fence::Shell(lines) => {
                        out.extend(split_commands(&file, &lines));
                        Fence::Outside
                    }
                    Fence::Other => Fence::Outside,
                };
                continue;
            }
            if let Fence::Shell(lines) = &mut fence {
                lines.push((i + 1, line.to_owned()));
            }
        }
        assert!(
            matches!(fence, Fence::Outside),
            "{file}: a fenced block is not closed"
        );
    }
    out
}

/// Splits a block into commands, following quotes across lines and `\` continuations, and
/// dropping comments (a `#` outside quotes at the start of a word).
pub(crate) fn split_commands(file: &str, lines: &[(usize, String)]) -> Vec<DocCommand> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    let (mut single, mut double) = (false, false);
    for (no, line) in lines {
        if cur.is_empty() {
            start = *no;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut kept = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !single && !double && c == '#' && (i == 0 || chars[i - 1].is_whitespace()) {
                break;
            }
            if c == '\\' && !single && i + 1 < chars.len() {
                kept.push(c);
                kept.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == '\'' && !double {
                single = !single;
            } else if c == '"' && !single {
                double = !double;
            }
            kept.push(c);
            i += 1;
        }
        if single || double {
            cur.push_str(&kept);
            cur.push('\n');
            continue;
        }
        let trimmed = kept.trim_end();
        if let Some(body) = trimmed.strip_suffix('\\') {
            cur.push_str(body);
            continue;
        }
        cur.push_str(trimmed);
        if !cur.trim().is_empty() {
            out.push(DocCommand {
                file: file.to_owned(),
                line: start,
                text: cur.trim().to_owned(),
            });
        }
        cur.clear();
    }
    assert!(
        cur.trim().is_empty(),
        "{file}:{start}: a command is not finished"
    );
    out
}

/// Whitespace runs as one space: how commands are compared.
pub(crate) fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The binary a `cargo run` form stands for (the first substitution every command gets).
pub(crate) fn as_binaries(s: &str) -> String {
    s.replace(
        "cargo run --release -p blindsight-server --",
        "blindsight-server",
    )
    .replace("cargo run --release --", "blindsight")
}

/// A selector: a command's exact text, or its beginning followed by `…`.
pub(crate) fn selects(selector: &str, command: &str) -> bool {
    let command = normalize(command);
    match selector.strip_suffix('…') {
        Some(prefix) => command.starts_with(&normalize(prefix)),
        None => command == normalize(selector),
    }
}

/// The one command of `file` that `selector` names (identical repeats count as one).
pub(crate) fn find(commands: &[DocCommand], file: &str, selector: &str) -> DocCommand {
    let found: Vec<&DocCommand> = commands
        .iter()
        .filter(|c| c.file == file && selects(selector, &c.text))
        .collect();
    assert!(
        !found.is_empty(),
        "{file}: no command matches {selector:?}; did the docs change?"
    );
    let first = found[0];
    for other in &found[1..] {
        assert_eq!(
            normalize(&other.text),
            normalize(&first.text),
            "{file}: {selector:?} matches different commands (lines {} and {})",
            first.line,
            other.line
        );
    }
    first.clone()
}
