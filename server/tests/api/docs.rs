//! The operator's and integrator's reference pages against the code they describe:
//! `docs/API.md`'s route table against the OpenAPI document generated from the handlers, its
//! problem-type table against every problem type the server's code can answer with, and
//! `docs/OPERATIONS.md`'s configuration table against `blindsight-server serve --help`.
//! (The commands in the docs run in `client-sdk/cli/tests/docs.rs`.)

use blindsight_proto::Problem;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap()
}

/// The rows of the markdown table that follows `heading`, as cells.
fn table(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let after = &doc[doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"))..];
    after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// Every `…` code span of a cell.
fn spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn api_md_lists_exactly_the_routes_of_the_openapi_document() {
    let doc = serde_json::to_value(blindsight_server::http::openapi()).unwrap();
    let mut served = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            served.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let mut documented = BTreeSet::new();
    for row in table(&read("docs/API.md"), "## Routes") {
        for route in spans(&row[0]) {
            assert!(
                documented.insert(route.clone()),
                "docs/API.md lists {route} twice"
            );
        }
    }
    assert_eq!(
        documented, served,
        "docs/API.md's route table and the OpenAPI document differ"
    );
}

/// Every problem type the server's source answers with: each `Problem::Variant` named in
/// `server/src` (the handlers, the crypto-error mapping, and `ApiError`'s fixed variants).
fn problem_types_in_source() -> BTreeSet<(u16, String)> {
    let mut named = BTreeSet::new();
    let mut files = vec![workspace().join("server/src")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("Problem::") {
            let name: String = text[i + "Problem::".len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            named.insert(name);
        }
    }
    Problem::ALL
        .iter()
        .filter(|p| named.contains(&format!("{p:?}")))
        .map(|p| (p.status(), p.slug().to_owned()))
        .collect()
}

#[test]
fn api_md_lists_exactly_the_problem_types_the_server_answers_with() {
    let in_source = problem_types_in_source();
    let defined: BTreeSet<(u16, String)> = Problem::ALL
        .iter()
        .map(|p| (p.status(), p.slug().to_owned()))
        .collect();
    let unused: Vec<_> = defined.difference(&in_source).collect();
    assert!(
        unused.is_empty(),
        "problem types the protocol defines but the server never answers with: {unused:?}"
    );
    let mut documented = BTreeSet::new();
    for row in table(&read("docs/API.md"), "## Problem types") {
        let status: u16 = row[0].parse().unwrap();
        for slug in spans(&row[1]) {
            documented.insert((status, slug));
        }
    }
    let undocumented: Vec<_> = in_source.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&in_source).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/API.md's problem types differ from the code: not documented {undocumented:?}; \
         documented but never answered {unknown:?}"
    );
}

#[test]
fn operations_md_configuration_matches_serve_help() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_blindsight-server"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    // One line per option in clap's long help: `--flag <VALUE>` then its text with
    // `[env: NAME=]` and `[default: D]`.
    let mut options: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        if let Some(flag) = trimmed.strip_prefix("--") {
            let flag = format!("--{}", flag.split_whitespace().next().unwrap());
            options.push((flag, String::new()));
        } else if let Some((_, text)) = options.last_mut() {
            text.push_str(trimmed);
            text.push(' ');
        }
    }
    let rows = table(&read("docs/OPERATIONS.md"), "## Configuration");
    let mut documented_flags = BTreeSet::new();
    for row in &rows {
        let (flag, env, default) = (&row[0], &row[1], &row[2]);
        let env = spans(env)
            .pop()
            .unwrap_or_else(|| panic!("no variable in {row:?}"));
        let Some(flag) = spans(flag).pop() else {
            // Environment only (the admin token, the log filter): named in the binary's help
            // or read by it; nothing to compare with a flag.
            continue;
        };
        documented_flags.insert(flag.clone());
        let (_, text) = options
            .iter()
            .find(|(f, _)| *f == flag)
            .unwrap_or_else(|| panic!("docs/OPERATIONS.md documents {flag}, which serve lacks"));
        assert!(
            text.contains(&format!("[env: {env}")),
            "{flag}: documented with {env}, help says {text}"
        );
        // A literal default in the table is clap's default.
        if let Some(d) = spans(default)
            .pop()
            .or_else(|| default.parse::<u64>().is_ok().then(|| default.clone()))
            && !d.contains('<')
        {
            assert!(
                text.contains(&format!("[default: {d}]")),
                "{flag}: documented default {d}, help says {text}"
            );
        }
    }
    let served: BTreeSet<String> = options
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f != "--help")
        .collect();
    assert_eq!(
        documented_flags, served,
        "docs/OPERATIONS.md's configuration table and `serve --help` differ"
    );
}
