//! What the CLI's tests share: a real server in-process (the demo's embedded server, as
//! `serve` assembles it), and running the built `blindsight` binary.

use std::process::{Command, Output};

use blindsight_cli::demo::EmbeddedServer;
use blindsight_client::Admin;
use blindsight_client::api::{NewTenant, TenantCreated};

pub(crate) const ADMIN: &str = "cli-test-admin-token-0123456789abcdef";

/// The passphrase every test keystore is written with.
pub(crate) const PASSPHRASE: &str = "correct horse battery staple";

/// Starts a server with one job worker on a free loopback port, its SQLite database under
/// `dir`; it stops when the returned value is dropped.
pub(crate) fn start_server(dir: &std::path::Path) -> EmbeddedServer {
    std::fs::create_dir_all(dir).unwrap();
    EmbeddedServer::start(dir, ADMIN).unwrap()
}

/// Runs `blindsight` with `args` and only the `BLINDSIGHT_*` variables in `envs` (besides the
/// test passphrase).
pub(crate) fn blindsight(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_blindsight"));
    cmd.args(args).env("BLINDSIGHT_PASSPHRASE", PASSPHRASE);
    for var in [
        "BLINDSIGHT_URL",
        "BLINDSIGHT_TOKEN",
        "BLINDSIGHT_TENANT",
        "BLINDSIGHT_CONFIG",
        "BLINDSIGHT_KEY_ID",
        "BLINDSIGHT_KEYSTORE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// A successful run's stdout.
pub(crate) fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// A run's stderr.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `northside` tenant (minimum cohort 2), created with the admin token.
pub(crate) fn northside(url: &str) -> TenantCreated {
    Admin::connect(url, ADMIN)
        .create_tenant(&NewTenant {
            name: "Northside".into(),
            tenant_id: Some("northside".into()),
            min_cohort_size: Some(2),
            privacy_budget: None,
        })
        .unwrap()
}
