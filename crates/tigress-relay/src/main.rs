//! The `tigress-relay` binary: serves the relay API on a TCP address until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tigress_relay::{Relay, RelayConfig};
use tracing_subscriber::EnvFilter;

/// Relay server for tigress credential shares: stores device prekeys and end-to-end encrypted
/// envelopes, and never reads them.
#[derive(Debug, Parser)]
#[command(name = "tigress-relay", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port, which is logged.
    #[arg(long, env = "TIGRESS_RELAY_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,

    /// Folder of the relay's database; created if missing.
    #[arg(
        long,
        env = "TIGRESS_RELAY_DATA_DIR",
        default_value = "./tigress-relay-data"
    )]
    data_dir: PathBuf,

    /// Log output format. The level comes from RUST_LOG (default: info).
    #[arg(long, env = "TIGRESS_RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_format);

    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %tigress_core::error_chain(error.as_ref()), "relay failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let relay = Relay::open(RelayConfig::new(&args.data_dir))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    relay.serve(listener, shutdown_signal()).await?;
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on SIGINT or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "failed to listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
