//! The `blindsight` command-line tool.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use blindsight_client::{demo, keystore};
use blindsight_crypto::{DEFAULT_ITERATIONS, KeySet};
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "blindsight",
    version,
    about = "Blindsight: risk scoring and analytics on data the service can never read"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the end-to-end demo: keys, encrypted records with proofs, computation on ciphertext, decryption.
    Demo {
        /// Where to write the demo keystore (default: a fresh temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Generate a key set: a keystore (secrets, passphrase-encrypted) and the public bundles.
    Keygen {
        /// Directory to write `<key-id>.keystore`, `<key-id>.public` and `<key-id>.app` into.
        #[arg(long, env = "BLINDSIGHT_KEY_DIR", default_value = ".")]
        out_dir: PathBuf,
    },
}

fn passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BLINDSIGHT_PASSPHRASE") {
        return Ok(Zeroizing::new(p));
    }
    let first = Zeroizing::new(rpassword::prompt_password("keystore passphrase: ").context(
        "couldn't read a passphrase (set BLINDSIGHT_PASSPHRASE when there is no terminal)",
    )?);
    let second = Zeroizing::new(rpassword::prompt_password("repeat passphrase: ")?);
    anyhow::ensure!(*first == *second, "the passphrases differ");
    Ok(first)
}

fn keygen(out_dir: PathBuf) -> anyhow::Result<()> {
    let pass = passphrase()?;
    anyhow::ensure!(
        pass.chars().count() >= 12,
        "choose a passphrase of at least 12 characters"
    );
    let keys = KeySet::generate_with_progress(|s| eprintln!("keygen: {}…", s.describe()))?;
    let (secret, public) = keys.into_parts();
    let id = secret.key_id().to_owned();
    let ks = out_dir.join(format!("{id}.keystore"));
    keystore::save(&ks, &secret, &pass, DEFAULT_ITERATIONS)
        .with_context(|| format!("couldn't write keystore {}", ks.display()))?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.public")),
        &public.encode()?,
        false,
    )?;
    keystore::write_private_atomic(
        &out_dir.join(format!("{id}.app")),
        &public.app_bundle().encode()?,
        false,
    )?;
    println!("key set {id}");
    println!("manifest fingerprint {}", public.manifest().fingerprint()?);
    println!("keystore {}", ks.display());
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { dir } => {
            match dir {
                Some(dir) => demo::run(&mut std::io::stdout(), &dir)?,
                None => {
                    // The demo's keystore holds throwaway keys: remove it with its directory.
                    let dir = tempdir()?;
                    let result = demo::run(&mut std::io::stdout(), &dir);
                    let _ = std::fs::remove_dir_all(&dir);
                    result?
                }
            };
            Ok(())
        }
        Command::Keygen { out_dir } => keygen(out_dir),
    }
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("blindsight-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("couldn't create {}", dir.display()))?;
    Ok(dir)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
