//! What the two language bindings' test harnesses share (`client-sdk/python/tests/pytest.rs`
//! and `client-sdk/node/tests/node.rs` include this file): finding the library and the
//! `blindsight-server` binary this `cargo test` built, and running a command for its output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a binding's suite runs against.
pub(crate) struct Built {
    /// The binding's shared library (the extension module, the addon).
    pub(crate) library: PathBuf,
    /// The `blindsight-server` binary built beside the test.
    pub(crate) server: PathBuf,
}

/// The shared library `lib<crate_name>.so` and the server binary of this test's profile
/// (`target/<profile>`). `test` names this test target in the messages that say how to build
/// what is missing.
pub(crate) fn built(crate_name: &str, test: &str) -> Built {
    let exe = std::env::current_exe().expect("the test's own path");
    let deps = exe.parent().expect("the test's directory");
    let profile = deps.parent().expect("the profile directory");
    let name = format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let library = [profile.join(&name), deps.join(&name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is missing from {} and {}: run `cargo test --workspace --test {test}` \
                 (cargo builds the binding's library for this test)",
                profile.display(),
                deps.display()
            )
        });
    let server = profile.join(format!("blindsight-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        server.is_file(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --workspace --bins`) so the \
         server binary is built beside this test's",
        server.display()
    );
    Built { library, server }
}

/// Runs `cmd` to its end: whether it succeeded, and its standard output and error.
pub(crate) fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("couldn't run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Removes every `BLINDSIGHT_*` variable but those in `keep` from `cmd`'s environment, so the
/// suite's own server and clients see only what the suite sets.
pub(crate) fn clean_env(cmd: &mut Command, keep: &[&str]) {
    for (k, _) in std::env::vars() {
        if k.starts_with("BLINDSIGHT_") && !keep.contains(&k.as_str()) {
            cmd.env_remove(k);
        }
    }
}

/// Copies `from` to `to`, naming the file when it cannot.
pub(crate) fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("couldn't stage {} as {}: {e}", from.display(), to.display()));
}
