//! The `tigress-relay` binary: serves the relay API on a TCP address until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tigress_core::duration::parse_duration;
use tigress_relay::{ConfigFile, Limits, RateLimit, Relay, RelayConfig};
use tracing_subscriber::EnvFilter;

/// Relay server for tigress credential shares: stores device prekeys and end-to-end encrypted
/// envelopes, and never reads them.
///
/// Limits come from these flags, else from the environment variables named, else from the
/// --config file, else from their defaults.
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

    /// TOML file with limits and rate limits (see the relay's config module for its keys).
    #[arg(long, env = "TIGRESS_RELAY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// PEM certificate chain for TLS; with --tls-key, the relay serves https only.
    #[arg(
        long,
        env = "TIGRESS_RELAY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// PEM private key for TLS.
    #[arg(
        long,
        env = "TIGRESS_RELAY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Address to serve Prometheus metrics on, at GET /metrics; off when not given.
    #[arg(long, env = "TIGRESS_RELAY_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Log output format. The level comes from RUST_LOG (default: info).
    #[arg(long, env = "TIGRESS_RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Largest envelope content, in bytes [default: 98304].
    #[arg(long, env = "TIGRESS_RELAY_MAX_ENVELOPE_BYTES")]
    max_envelope_bytes: Option<usize>,

    /// Most envelopes queued per mailbox [default: 5000].
    #[arg(long, env = "TIGRESS_RELAY_MAX_QUEUED_ENVELOPES")]
    max_queued_envelopes: Option<u64>,

    /// Most bytes queued per mailbox [default: 52428800].
    #[arg(long, env = "TIGRESS_RELAY_MAX_QUEUED_BYTES")]
    max_queued_bytes: Option<u64>,

    /// Most one-time prekeys of each kind per upload [default: 100].
    #[arg(long, env = "TIGRESS_RELAY_MAX_PREKEYS_PER_UPLOAD")]
    max_prekeys_per_upload: Option<usize>,

    /// How long a queued envelope is kept, such as 14d [default: 14d].
    #[arg(long, env = "TIGRESS_RELAY_ENVELOPE_TTL", value_parser = parse_duration)]
    envelope_ttl: Option<Duration>,

    /// How often expired envelopes are swept, such as 1h [default: 1h].
    #[arg(long, env = "TIGRESS_RELAY_SWEEP_INTERVAL", value_parser = parse_duration)]
    sweep_interval: Option<Duration>,

    /// Memory for the storage engine's cache, in bytes [default: 268435456].
    #[arg(long, env = "TIGRESS_RELAY_STORAGE_CACHE_BYTES")]
    storage_cache_bytes: Option<u64>,

    /// Device records kept in memory; 0 turns the cache off [default: 16384].
    #[arg(long, env = "TIGRESS_RELAY_DEVICE_CACHE_RECORDS")]
    device_cache_records: Option<usize>,

    /// Sends per device: BURST/PER_MINUTE, such as 60/600 [default: 60/600].
    #[arg(long, env = "TIGRESS_RELAY_SEND_RATE", value_parser = parse_rate)]
    send_rate: Option<RateLimit>,

    /// Bundle fetches per device: BURST/PER_MINUTE [default: 30/120].
    #[arg(long, env = "TIGRESS_RELAY_BUNDLE_FETCH_RATE", value_parser = parse_rate)]
    bundle_fetch_rate: Option<RateLimit>,

    /// Registrations per client IP address: BURST/PER_MINUTE [default: 10/10].
    #[arg(long, env = "TIGRESS_RELAY_REGISTRATION_RATE", value_parser = parse_rate)]
    registration_rate: Option<RateLimit>,
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
    let limits = limits(&args)?;
    let mut relay = Relay::open(RelayConfig {
        data_dir: args.data_dir.clone(),
        limits,
    })?;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let certificate = std::fs::read(cert)
            .with_context(|| format!("failed to read --tls-cert {}", cert.display()))?;
        let private_key = std::fs::read(key)
            .with_context(|| format!("failed to read --tls-key {}", key.display()))?;
        relay = relay.with_tls(&certificate, &private_key);
    }
    if let Some(address) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("failed to listen for metrics on {address}"))?;
        relay = relay.with_metrics(listener);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    relay.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Merges the defaults, the configuration file and the flags.
fn limits(args: &Args) -> anyhow::Result<Limits> {
    let mut limits = Limits::default();
    if let Some(path) = &args.config {
        ConfigFile::read(path)?.apply(&mut limits);
    }
    set(&mut limits.max_envelope_bytes, args.max_envelope_bytes);
    set(&mut limits.max_queued_envelopes, args.max_queued_envelopes);
    set(&mut limits.max_queued_bytes, args.max_queued_bytes);
    set(
        &mut limits.max_prekeys_per_upload,
        args.max_prekeys_per_upload,
    );
    set(&mut limits.envelope_ttl, args.envelope_ttl);
    set(&mut limits.sweep_interval, args.sweep_interval);
    set(&mut limits.storage_cache_bytes, args.storage_cache_bytes);
    set(&mut limits.device_cache_records, args.device_cache_records);
    set(&mut limits.send_rate, args.send_rate);
    set(&mut limits.bundle_fetch_rate, args.bundle_fetch_rate);
    set(&mut limits.registration_rate, args.registration_rate);
    Ok(limits)
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// Parses BURST/PER_MINUTE, both above zero.
fn parse_rate(text: &str) -> Result<RateLimit, String> {
    let invalid = || {
        format!(
            "invalid rate {text:?}: expected BURST/PER_MINUTE with both above 0, such as 60/600"
        )
    };
    let (burst, per_minute) = text.split_once('/').ok_or_else(invalid)?;
    let burst: u32 = burst.parse().map_err(|_| invalid())?;
    let per_minute: u32 = per_minute.parse().map_err(|_| invalid())?;
    if burst == 0 || per_minute == 0 {
        return Err(invalid());
    }
    Ok(RateLimit { burst, per_minute })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(
            parse_rate("60/600"),
            Ok(RateLimit {
                burst: 60,
                per_minute: 600
            })
        );
        for bad in ["60", "0/1", "1/0", "a/b", "-1/5", "1/2/3"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn arguments_are_consistent() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }
}
