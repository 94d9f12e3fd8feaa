//! Runs the Python test suite (`client-sdk/python/tests`, pytest) against the extension module
//! this `cargo test` built and the `blindsight-server` binary built beside it.
//!
//! The shared library (`libblindsight_python.so`, built because this package's library is
//! linkable) is staged with the package's Python sources as `blindsight/_native.abi3.so` in a
//! temporary directory on `PYTHONPATH`, so nothing is written into the source tree. The
//! Python is `$BLINDSIGHT_PYTHON` (default `python3`); one without pytest skips the suite
//! with a message, as the PostgreSQL tests skip without their URL.

use std::path::Path;
use std::process::Command;

#[path = "../../tests/bindings/harness.rs"]
mod harness;

use harness::{clean_env, copy, run};

/// The package's Python sources plus the extension module, in `dir/blindsight`.
fn stage(dir: &Path, library: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/blindsight");
    let package = dir.join("blindsight");
    std::fs::create_dir_all(&package).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            copy(&entry.path(), &package.join(entry.file_name()));
        }
    }
    copy(library, &package.join("_native.abi3.so"));
}

fn python() -> String {
    std::env::var("BLINDSIGHT_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn python_binding_passes_its_pytest_suite() {
    let python = python();
    let (has_pytest, _) = run(Command::new(&python).args(["-c", "import pytest"]));
    if !has_pytest {
        println!(
            "skipped: pytest is not installed for {python}; .ci/run installs it (python3 -m venv \
             <dir> && <dir>/bin/pip install pytest pandas, then BLINDSIGHT_PYTHON=<dir>/bin/python)"
        );
        return;
    }
    let built = harness::built("blindsight_python", "pytest");
    let library = &built.library;
    let staged = tempfile::tempdir().unwrap();
    stage(staged.path(), library);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = |cmd: &mut Command| {
        clean_env(cmd, &["BLINDSIGHT_PYTHON"]);
        cmd.current_dir(&root)
            .env("PYTHONPATH", staged.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("BLINDSIGHT_SERVER_BIN", &built.server);
    };

    // The module cargo built (linked to the libpython pyo3 found) loads in this Python.
    let mut import = Command::new(&python);
    import.args([
        "-c",
        "import blindsight, sys; print(blindsight.__version__, sys.version.split()[0])",
    ]);
    env(&mut import);
    let (ok, text) = run(&mut import);
    assert!(
        ok,
        "{python} could not import the extension module built at {}: {text}\n(cargo's build \
         links the libpython of the Python pyo3 found when it built; run the tests with that \
         Python, e.g. BLINDSIGHT_PYTHON pointing at a venv made from it)",
        library.display()
    );
    assert!(
        text.starts_with(env!("CARGO_PKG_VERSION")),
        "blindsight.__version__ is not the crate's: {text}"
    );

    let mut pytest = Command::new(&python);
    pytest.args([
        "-m",
        "pytest",
        "client-sdk/python/tests",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rs",
    ]);
    env(&mut pytest);
    let (ok, text) = run(&mut pytest);
    println!("{text}");
    assert!(ok, "pytest failed:\n{text}");
}
