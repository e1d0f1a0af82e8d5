//! `cargo xtask e2e`: the main job.
//!
//! It starts `tigress-relay` on a free loopback port with a temporary data folder and creates a
//! sender, a receiver and a second receiver home. Then it drives the `tigress` CLI as separate
//! processes: it transfers every credential in `examples/credentials/` and checks that the
//! exported bytes equal the originals, then runs the lifecycle scenarios (stateful share, link
//! shares, cancel, expiry). The relay is stopped and the folders removed even when a step
//! fails.

mod certificate;
pub(crate) mod process;
mod scenarios;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::{cargo, run_command, workspace_root};
use process::{Cli, Progress, RelayProcess, target_dir};

pub(crate) fn run(arguments: &[String]) -> anyhow::Result<()> {
    if let Some(argument) = arguments.first() {
        bail!("e2e takes no arguments, got {argument:?}");
    }
    let progress = Progress::start("e2e");

    progress.step("building tigress and tigress-relay");
    // With the test targets, features resolve as for `cargo xtask test`, so each command
    // reuses what the other built instead of compiling the dependencies twice.
    run_command(cargo()?.args(["build", "--workspace", "--bins", "--tests"]))?;
    let binaries = target_dir().join("debug");
    let built = progress.elapsed();

    let work = tempfile::tempdir().context("failed to create a temporary folder")?;
    progress.step("starting tigress-relay on 127.0.0.1 with a free port");
    let mut relay =
        RelayProcess::start(&binaries.join("tigress-relay"), &work.path().join("relay"))?;
    progress.step(&format!("relay listening at {}", relay.url));

    let outcome = run_against(
        &progress,
        &binaries.join("tigress"),
        &relay.url,
        work.path(),
    );
    if let Err(error) = &outcome {
        eprintln!(
            "e2e: failed: {error:#}\n--- relay log ---\n{}",
            relay.log_tail()
        );
    }
    progress.step("stopping the relay");
    let stopped = relay.stop();
    let summary = outcome?;
    stopped?;

    println!(
        "e2e: transfers={} bytes={} transfer_ms_mean={:.1} transfer_ms_max={:.1} scenarios={} certificate_check={:?} build_s={:.1} run_s={:.1}",
        summary.transfers,
        summary.bytes,
        summary.mean_ms(),
        summary.max_ms(),
        summary.scenarios,
        summary.verifier,
        built.as_secs_f64(),
        (progress.elapsed() - built).as_secs_f64()
    );
    Ok(())
}

/// Figures of the run.
#[derive(Default)]
struct Summary {
    transfers: usize,
    bytes: usize,
    durations: Vec<Duration>,
    scenarios: usize,
    verifier: &'static str,
}

impl Summary {
    fn mean_ms(&self) -> f64 {
        let total: Duration = self.durations.iter().sum();
        total.as_secs_f64() * 1000.0 / self.durations.len().max(1) as f64
    }

    fn max_ms(&self) -> f64 {
        self.durations
            .iter()
            .max()
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    }
}

/// Registers the devices, transfers every sample credential, then runs the scenarios.
fn run_against(
    progress: &Progress,
    tigress: &Path,
    relay_url: &str,
    work: &Path,
) -> anyhow::Result<Summary> {
    let sender = Cli::new(tigress, work.join("sender"));
    let receiver = Cli::new(tigress, work.join("receiver"));
    let second = Cli::new(tigress, work.join("second-receiver"));

    progress.step("tigress init (sender and receiver)");
    let sender_address = string_field(&sender.run(&["init", "--relay", relay_url])?, "address")?;
    let receiver_address =
        string_field(&receiver.run(&["init", "--relay", relay_url])?, "address")?;
    progress.step(&format!(
        "sender {sender_address}, receiver {receiver_address}"
    ));

    let credentials = sample_credentials()?;
    ensure!(
        !credentials.is_empty(),
        "no credentials found in examples/credentials"
    );
    let exports = work.join("exported");
    std::fs::create_dir_all(&exports)
        .with_context(|| format!("failed to create {}", exports.display()))?;

    let mut summary = Summary::default();
    for path in &credentials {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let original =
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
        progress.step(&format!("sharing {name} ({} bytes)", original.len()));

        let started = Instant::now();
        transfer_one(
            &sender,
            &receiver,
            &receiver_address,
            path,
            &exports.join(&name),
            &original,
        )?;
        let elapsed = started.elapsed();
        progress.step(&format!(
            "{name}: exported bytes match, share completed in {:.0} ms",
            elapsed.as_secs_f64() * 1000.0
        ));

        summary.transfers += 1;
        summary.bytes += original.len();
        summary.durations.push(elapsed);
    }

    let devices = scenarios::Devices {
        sender,
        receiver,
        second,
        receiver_address,
    };
    let (scenarios, verifier) = scenarios::run_all(progress, &devices, &credentials[0], work)?;
    summary.scenarios = scenarios;
    summary.verifier = verifier;
    Ok(summary)
}

/// share, sync, accept, export and sync again, checking each step's output.
fn transfer_one(
    sender: &Cli,
    receiver: &Cli,
    receiver_address: &str,
    file: &Path,
    export: &Path,
    original: &[u8],
) -> anyhow::Result<()> {
    let file_text = file.to_string_lossy();
    let share_id = string_field(
        &sender.run(&["share", "--to", receiver_address, &file_text])?,
        "share_id",
    )?;

    let events = receiver.run(&["sync"])?;
    let offer = find_event(&events, "offer_received", &share_id).with_context(|| {
        format!("receiver sync did not report the offer of share {share_id}: {events}")
    })?;
    ensure!(
        offer["size"] == original.len(),
        "offer of share {share_id} announces size {}, expected {}",
        offer["size"],
        original.len()
    );
    ensure!(
        offer["credential_type"] == "org.iso.18013.5.1.mDL",
        "offer of share {share_id} does not show the mDL document type: {offer}"
    );

    receiver.run(&["accept", &share_id])?;
    receiver.run(&["export", &share_id, "--out", &export.to_string_lossy()])?;
    let exported =
        std::fs::read(export).with_context(|| format!("failed to read {}", export.display()))?;
    ensure!(
        exported == original,
        "exported credential {} differs from {}",
        export.display(),
        file.display()
    );

    let events = sender.run(&["sync"])?;
    find_event(&events, "share_completed", &share_id).with_context(|| {
        format!("sender sync did not report share {share_id} completed: {events}")
    })?;
    let shares = sender.run(&["shares"])?;
    let listed = shares["shares"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|share| share["share_id"] == share_id.as_str());
    ensure!(
        listed.is_some_and(|share| share["state"] == "completed"),
        "sender does not list share {share_id} as completed: {shares}"
    );
    Ok(())
}

/// Lists the credential files in `examples/credentials` in name order, leaving out Markdown files.
fn sample_credentials() -> anyhow::Result<Vec<PathBuf>> {
    let folder = workspace_root().join("examples/credentials");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&folder)
        .with_context(|| format!("failed to list {}", folder.display()))?
    {
        let path = entry?.path();
        if path.is_file() && path.extension().is_none_or(|extension| extension != "md") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn find_event<'v>(events: &'v Value, kind: &str, share_id: &str) -> Option<&'v Value> {
    events["events"]
        .as_array()?
        .iter()
        .find(|event| event["kind"] == kind && event["share_id"] == share_id)
}

fn string_field(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("output has no {field:?}: {value}"))
}
