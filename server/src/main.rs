//! The `blindsight-server` binary.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use blindsight_server::http::{AppState, app};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "blindsight-server", version, about = "Blindsight server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API until SIGTERM or Ctrl-C (in-flight requests finish first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "BLINDSIGHT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
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

async fn shutdown_signal(state: AppState) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
    state.set_ready(false);
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let state = AppState::default();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("couldn't listen on {listen}"))?;
    tracing::info!(%listen, "serving");
    state.set_ready(true);
    axum::serve(listener, app(state.clone()))
        .with_graceful_shutdown(shutdown_signal(state))
        .await
        .context("the HTTP server failed")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("couldn't start the async runtime")?
            .block_on(serve(listen)),
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BLINDSIGHT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
