//! `tigress-load`: a load generator for the relay, run by `cargo xtask load`.
//!
//! It starts a `tigress-relay` process on a loopback port and measures, in one run:
//!
//! 1. the no-op baseline: health checks from every client at once, the same tonic stack
//!    serving a call that does no work;
//! 2. durable sends alone: every client sends envelopes to the next and none reads them, for
//!    sends per second and send latency, compared with the no-op rate;
//! 3. durable sends with delivery: the same while every client drains its own mailbox through
//!    a subscription and acknowledges, for the rate of the whole loop and send-to-delivery
//!    latency;
//! 4. whole stateless transfers through the SDK (bundle fetch, PQXDH, send, delivery,
//!    decryption, acknowledgement, then acceptance and completion);
//! 5. a deep queue: envelopes that no client fetches, for the relay's memory as queues grow.
//!
//! The last line of output is a summary for scripts:
//! `load: clients=64 size=1024 sends_per_s=N noop_per_s=N ratio=R p99_ms=N`.

#![deny(unsafe_code)]

mod clients;
mod phases;
mod progress;
mod relay;
mod transfer;

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Parser;
use tigress_benches::stats::{Summary, millis};

use crate::clients::Client;
use crate::phases::{MIN_ENVELOPE_SIZE, Throughput};
use crate::relay::{Flushes, Memory, RelayProcess};

/// Measures the relay's throughput, latency and memory against a no-op baseline.
#[derive(Debug, Parser)]
#[command(name = "tigress-load", version)]
struct Args {
    /// Concurrent clients, each a registered device with its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,

    /// Envelopes each client sends, and no-op calls each client makes.
    #[arg(long, default_value_t = 500)]
    messages: u64,

    /// Envelope content size in bytes (at least 16).
    #[arg(long, default_value_t = 1024)]
    size: usize,

    /// Whole stateless transfers through the SDK, one after another; 0 skips them.
    #[arg(long, default_value_t = 1000)]
    transfers: u64,

    /// Envelopes queued without being fetched before the relay's memory is read; 0 skips it.
    #[arg(long, default_value_t = 100_000)]
    queued: u64,

    /// The credential the transfers carry [default: 1 KiB of random bytes].
    #[arg(long, value_name = "FILE")]
    credential: Option<PathBuf>,

    /// The relay binary [default: `tigress-relay` beside this binary].
    #[arg(long, value_name = "FILE")]
    relay: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tigress-load: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.clients < 2 {
        bail!("--clients must be at least 2, so that every client has another to send to");
    }
    if args.size < MIN_ENVELOPE_SIZE {
        bail!(
            "--size must be at least {MIN_ENVELOPE_SIZE} bytes: each envelope carries its send time and sequence number"
        );
    }
    let credential = match &args.credential {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?
        }
        None => rand::random_iter().take(1024).collect(),
    };
    let binary = match &args.relay {
        Some(binary) => binary.clone(),
        None => relay::sibling_binary()?,
    };

    let relay = RelayProcess::start(&binary)?;
    eprintln!("load: relay {} at {}", binary.display(), relay.url);
    let clients = register(&relay.url, args.clients).await?;
    let idle = relay.memory()?;

    let noop = phases::noop(&clients, args.messages).await?;
    report_calls("no-op", &noop);
    let flushes_before = relay.flushes()?;
    let sent = phases::send(&clients, args.messages, args.size).await?;
    let flushes_after = relay.flushes()?;
    report_calls("send", &sent);
    report_flushes(&sent, flushes_before, flushes_after);
    let delivered = phases::deliver(&clients, args.messages, args.size).await?;
    report_calls("deliver", &delivered.sends);
    report_latency("delivery", &delivered.delivery);
    let after_sends = relay.memory()?;

    if args.transfers > 0 {
        let transfers = transfer::run(&relay.url, args.transfers, &credential).await?;
        report_latency("transfer delivered", &transfers.delivered);
        report_latency("transfer completed", &transfers.completed);
    }

    if args.queued > 0 {
        let queued = phases::queue(&clients, args.queued, args.size).await?;
        report_calls("queue", &queued);
        report_memory(
            &format!("relay with {} queued", queued.calls),
            relay.memory()?,
        );
    }
    report_memory("relay idle", idle);
    report_memory("relay after sends", after_sends);

    let ratio = sent.per_second() / noop.per_second();
    let deliver_ratio = delivered.sends.per_second() / noop.per_second();
    println!(
        "load: clients={} size={} sends_per_s={:.0} noop_per_s={:.0} ratio={ratio:.2} p99_ms={:.2} deliver_per_s={:.0} deliver_ratio={deliver_ratio:.2}",
        args.clients,
        args.size,
        sent.per_second(),
        noop.per_second(),
        millis(sent.latency.p99),
        delivered.sends.per_second(),
    );
    Ok(())
}

/// Registers `count` clients, a few at a time.
async fn register(url: &str, count: usize) -> anyhow::Result<Vec<Client>> {
    let progress = progress::Progress::start("register", count as u64);
    let done = progress.counter();
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(Client::register(url).await?);
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    progress.finish();
    Ok(clients)
}

fn report_calls(label: &str, throughput: &Throughput) {
    println!(
        "load: {label:<9} calls={} per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        throughput.calls,
        throughput.per_second(),
        millis(throughput.latency.p50),
        millis(throughput.latency.p99),
        millis(throughput.latency.max),
    );
}

fn report_flushes(sends: &Throughput, before: Flushes, after: Flushes) {
    let count = after.count - before.count;
    let seconds = after.seconds - before.seconds;
    if count > 0.0 {
        println!(
            "load: flushes   count={count:.0} sends_per_flush={:.1} mean_ms={:.2} busy={:.0}%",
            sends.calls as f64 / count,
            seconds * 1000.0 / count,
            seconds * 100.0 / sends.elapsed.as_secs_f64(),
        );
    }
}

fn report_latency(label: &str, summary: &Summary) {
    println!(
        "load: {label} count={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        summary.count,
        millis(summary.p50),
        millis(summary.p99),
        millis(summary.max),
    );
}

fn report_memory(label: &str, memory: Memory) {
    const MIB: f64 = 1024.0 * 1024.0;
    println!(
        "load: {label} rss_mib={:.1} peak_rss_mib={:.1}",
        memory.rss as f64 / MIB,
        memory.peak_rss as f64 / MIB,
    );
}
