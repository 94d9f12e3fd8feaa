//! The `blindsight-server` binary.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "blindsight-server", version, about = "Blindsight server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Administrative commands.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Subcommand)]
enum Admin {
    /// Check a public bundle file as the server would admit it, and print its manifest.
    CheckBundle {
        /// The `<key-id>.public` file written by `blindsight keygen`.
        path: PathBuf,
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Admin(Admin::CheckBundle { path }) => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("couldn't read public bundle {}", path.display()))?;
            let manifest = blindsight_server::admit_public_bundle(&bytes)
                .with_context(|| format!("{} was refused", path.display()))?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
    }
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
