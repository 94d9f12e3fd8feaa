//! The workspace's layout rules, checked on its source (docs/ARCHITECTURE.md, "Crates"):
//!
//! - no two modules of a crate import each other (a module is a file; `crate::`, `super::`
//!   and `self::` paths are resolved to the module that defines the item, through the crate
//!   root's re-exports);
//! - no server worker module imports an HTTP handler module, and no handler the router;
//! - no SQL outside the server's `store/`;
//! - no source file over 600 lines unless it says why in a `//! Size:` line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_owned()
}

/// Every crate's `src/` directory.
const CRATES: &[&str] = &[
    "crypto/src",
    "crypto/audit/src",
    "server/proto/src",
    "server/src",
    "client-sdk/src",
    "client-sdk/cli/src",
    "client-sdk/python/src",
    "client-sdk/node/src",
    "benches/src",
];

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// A file's module path within its crate (`a::b`; empty for the crate root and binaries).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    if parts.first().is_some_and(|p| p == "bin") {
        return vec![format!("bin:{last}")];
    }
    match last.as_str() {
        "lib.rs" | "main.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The code of a file without comments and string literals (so prose and SQL text do not
/// count as paths).
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut in_str = false;
        let mut prev = ' ';
        for c in line.chars() {
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths a file names: `crate::a::b::…`, `super::…`, `self::…`, as absolute segment lists
/// (groups `{a, b}` expanded one level).
fn paths_named(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for anchor in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(anchor) {
            if i > 0 {
                let before = code[..i].chars().next_back().unwrap();
                if before.is_ascii_alphanumeric() || before == '_' || before == ':' {
                    continue;
                }
            }
            let mut base: Vec<String> = match anchor {
                "crate::" => Vec::new(),
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.to_vec(),
            };
            let mut rest = &code[i + anchor.len()..];
            loop {
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                let word = ident(rest);
                if word.is_empty() {
                    break;
                }
                base.push(word.to_owned());
                rest = &rest[word.len()..];
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let mut p = base.clone();
                    p.extend(
                        item.trim()
                            .split("::")
                            .map(|s| ident(s.trim()).to_owned())
                            .filter(|s| !s.is_empty() && s != "self"),
                    );
                    out.push(p);
                }
            } else {
                out.push(base);
            }
        }
    }
    out
}

#[derive(Default)]
struct Crate {
    modules: BTreeSet<Vec<String>>,
    /// Items the crate root re-exports, by name: the module that defines them.
    root_exports: BTreeMap<String, Vec<String>>,
    imports: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_crate(dir: &str) -> Crate {
    let src = workspace().join(dir);
    let files = rust_files(&src);
    let mut krate = Crate::default();
    let texts: Vec<(Vec<String>, String)> = files
        .iter()
        .map(|f| {
            (
                module_of(&src, f),
                code(&std::fs::read_to_string(f).unwrap()),
            )
        })
        .collect();
    for (m, _) in &texts {
        krate.modules.insert(m.clone());
    }
    for (m, text) in &texts {
        if m.is_empty() {
            for stmt in text.split(';') {
                let stmt = stmt.trim();
                let Some(rest) = stmt.strip_prefix("pub use ") else {
                    continue;
                };
                let head: Vec<String> = vec![ident(rest).to_owned()];
                if !krate.modules.contains(&head) {
                    continue;
                }
                for p in paths_named(&[], &format!("crate::{rest}")) {
                    if let Some(last) = p.last() {
                        krate.root_exports.insert(last.clone(), head.clone());
                    }
                }
            }
        }
    }
    for (m, text) in &texts {
        let mut targets = BTreeSet::new();
        for path in paths_named(m, text) {
            // The longest prefix that is a module; an item at the root, the module it is
            // re-exported from.
            let mut target = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| krate.modules.contains(p))
                .unwrap_or_default();
            if target.is_empty()
                && let Some(first) = path.first()
                && let Some(module) = krate.root_exports.get(first)
            {
                target = module.clone();
            }
            if !target.is_empty() && &target != m && !m.starts_with(&target[..]) {
                targets.insert(target);
            }
        }
        krate.imports.insert(m.clone(), targets);
    }
    krate
}

#[test]
fn no_two_modules_import_each_other() {
    let mut cycles = Vec::new();
    for dir in CRATES {
        let krate = read_crate(dir);
        for (a, targets) in &krate.imports {
            for b in targets {
                if a < b && krate.imports.get(b).is_some_and(|t| t.contains(a)) {
                    cycles.push(format!("{dir}: {} <-> {}", a.join("::"), b.join("::")));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:#?}"
    );
}

#[test]
fn the_import_check_sees_imports() {
    let krate = read_crate("server/src");
    let http = &krate.imports[&vec!["http".to_owned()]];
    assert!(http.contains(&vec!["api".to_owned()]), "{http:?}");
    let worker = &krate.imports[&vec!["worker".to_owned()]];
    assert!(worker.contains(&vec!["registry".to_owned()]), "{worker:?}");
    assert!(
        worker.contains(&vec!["store".to_owned(), "jobs".to_owned()]),
        "{worker:?}"
    );
}

#[test]
fn workers_and_handlers_stay_in_their_layers() {
    let krate = read_crate("server/src");
    let is_api = |m: &Vec<String>| m.first().is_some_and(|f| f == "api");
    let worker = &krate.imports[&vec!["worker".to_owned()]];
    let handlers: Vec<_> = worker.iter().filter(|m| is_api(m)).collect();
    assert!(
        handlers.is_empty(),
        "the worker imports handlers: {handlers:?}"
    );
    for (m, targets) in krate.imports.iter().filter(|(m, _)| is_api(m)) {
        assert!(
            !targets.contains(&vec!["http".to_owned()]),
            "{m:?} imports the router"
        );
    }
}

#[test]
fn sql_lives_in_the_store() {
    let src = workspace().join("server/src");
    let mut outside = Vec::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.starts_with("store") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if ["sqlx::query", "query_scalar", "query_as", "raw_sql"]
            .iter()
            .any(|q| text.contains(q))
        {
            outside.push(rel.display().to_string());
        }
    }
    assert!(
        outside.is_empty(),
        "SQL outside server/src/store/: {outside:?}"
    );
}

#[test]
fn source_files_stay_small_or_say_why() {
    let mut large = Vec::new();
    let dirs = CRATES.iter().map(|d| workspace().join(d)).chain(
        [
            "crypto/tests",
            "server/tests",
            "client-sdk/tests",
            "client-sdk/cli/tests",
            "benches/tests",
            "benches/benches",
        ]
        .iter()
        .map(|d| workspace().join(d)),
    );
    for dir in dirs {
        for file in rust_files(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.lines().count() > 600 && !text.contains("//! Size:") {
                large.push(format!(
                    "{} ({} lines)",
                    file.strip_prefix(workspace()).unwrap().display(),
                    text.lines().count()
                ));
            }
        }
    }
    assert!(
        large.is_empty(),
        "files over 600 lines without a `//! Size:` line saying why: {large:#?}"
    );
}
