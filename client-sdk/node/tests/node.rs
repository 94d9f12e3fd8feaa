//! Runs the JavaScript test suite (`client-sdk/node/test/*.test.mjs`, `node --test`) against
//! the addon this `cargo test` built and the `blindsight-server` binary built beside it.
//!
//! The cdylib (`libblindsight_node.so`, built because this package's library is linkable) is
//! staged with `index.js`, `index.d.ts` and `package.json` as `blindsight.node` in a temporary
//! directory (`BLINDSIGHT_NODE_PACKAGE`), so nothing is written into the source tree. Without
//! `node` on the `PATH` the suite is skipped with a message, as the PostgreSQL tests skip
//! without their URL.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../tests/bindings/harness.rs"]
mod harness;

use harness::{clean_env, copy, run};

fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The package's JavaScript files plus the addon as `blindsight.node`, in `dir`.
fn stage(dir: &Path, addon: &Path) {
    for file in ["index.js", "index.d.ts", "package.json"] {
        copy(&source_dir().join(file), &dir.join(file));
    }
    copy(addon, &dir.join("blindsight.node"));
}

#[test]
fn node_binding_passes_its_test_suite() {
    let (has_node, version) = match Command::new("node").arg("--version").output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        ),
        Err(_) => (false, String::new()),
    };
    if !has_node {
        println!("skipped: node is not installed; .ci/run installs it (Node.js 18 or newer)");
        return;
    }
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 18,
        "node {version} is too old for the binding's tests (`node --test`, global fetch): \
         install Node.js 18 or newer"
    );
    let built = harness::built("blindsight_node", "node");
    let staged = tempfile::tempdir().unwrap();
    stage(staged.path(), &built.library);

    let mut tests: Vec<PathBuf> = std::fs::read_dir(source_dir().join("test"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    tests.sort();
    assert!(!tests.is_empty(), "no test/*.test.mjs files");

    let mut cmd = Command::new("node");
    cmd.arg("--test").args(&tests);
    clean_env(&mut cmd, &[]);
    cmd.current_dir(source_dir())
        .env("BLINDSIGHT_NODE_PACKAGE", staged.path())
        .env("BLINDSIGHT_SERVER_BIN", &built.server);
    let (ok, text) = run(&mut cmd);
    println!("node {version}\n{text}");
    assert!(ok, "node --test failed:\n{text}");
}
