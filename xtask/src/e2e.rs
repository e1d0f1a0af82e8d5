//! `cargo xtask e2e`: the main job.
//!
//! It starts `tigress-relay` on a free loopback port with a temporary data folder and creates a
//! sender and a receiver home. Then it drives the `tigress` CLI as separate processes to
//! transfer every credential in `examples/credentials/`, and checks that the exported bytes equal
//! the originals. The relay is stopped and the folders removed even when a step fails.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::{cargo, run_command, workspace_root};

/// How long the relay may take to start listening.
const RELAY_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the relay may take to stop after SIGTERM.
const RELAY_STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn run(arguments: &[String]) -> anyhow::Result<()> {
    if let Some(argument) = arguments.first() {
        bail!("e2e takes no arguments, got {argument:?}");
    }
    let progress = Progress::start();

    progress.step("building tigress and tigress-relay");
    run_command(cargo()?.args([
        "build",
        "--bins",
        "--package",
        "tigress-relay",
        "--package",
        "tigress-client",
    ]))?;
    let binaries = target_dir().join("debug");

    let work = tempfile::tempdir().context("failed to create a temporary folder")?;
    progress.step("starting tigress-relay on 127.0.0.1 with a free port");
    let mut relay =
        RelayProcess::start(&binaries.join("tigress-relay"), &work.path().join("relay"))?;
    progress.step(&format!("relay listening at {}", relay.url));

    let outcome = transfer_all(
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
        "e2e: transfers={} bytes={} transfer_ms_mean={:.1} transfer_ms_max={:.1} total_s={:.1}",
        summary.transfers,
        summary.bytes,
        summary.mean_ms(),
        summary.max_ms(),
        progress.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Figures of the run.
#[derive(Default)]
struct Summary {
    transfers: usize,
    bytes: usize,
    durations: Vec<Duration>,
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

/// Registers two devices and transfers every sample credential from one to the other.
fn transfer_all(
    progress: &Progress,
    tigress: &Path,
    relay_url: &str,
    work: &Path,
) -> anyhow::Result<Summary> {
    let sender = Cli {
        binary: tigress.to_owned(),
        home: work.join("sender"),
    };
    let receiver = Cli {
        binary: tigress.to_owned(),
        home: work.join("receiver"),
    };

    progress.step("tigress init (sender)");
    let sender_address = string_field(&sender.run(&["init", "--relay", relay_url])?, "address")?;
    progress.step("tigress init (receiver)");
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
    for path in credentials {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let original =
            std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        progress.step(&format!("sharing {name} ({} bytes)", original.len()));

        let started = Instant::now();
        transfer_one(
            &sender,
            &receiver,
            &receiver_address,
            &path,
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

/// The `tigress` CLI on one home.
struct Cli {
    binary: PathBuf,
    home: PathBuf,
}

impl Cli {
    /// Runs a command with `--json` and returns its parsed output.
    fn run(&self, arguments: &[&str]) -> anyhow::Result<Value> {
        let output = Command::new(&self.binary)
            .arg("--home")
            .arg(&self.home)
            .arg("--json")
            .args(arguments)
            .env_remove("TIGRESS_HOME")
            .output()
            .with_context(|| format!("failed to start {}", self.binary.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!(
                "tigress {} failed ({}): {}",
                arguments.join(" "),
                output.status,
                stderr.trim()
            );
        }
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "tigress {} printed invalid JSON: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

/// A `tigress-relay` child process, stopped on drop.
struct RelayProcess {
    child: Option<Child>,
    url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RelayProcess {
    /// Starts the relay on port 0 and waits for the address it logs.
    fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;

        let stderr = child.stderr.take().context("relay stderr is not piped")?;
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (address_sender, address_receiver) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("relay listening") {
                    if let Some(address) = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                    {
                        let _ = address_sender.send(address.to_owned());
                    }
                }
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });

        let mut relay = Self {
            child: Some(child),
            url: String::new(),
            log,
        };
        match address_receiver.recv_timeout(RELAY_START_TIMEOUT) {
            Ok(address) => relay.url = format!("http://{address}"),
            Err(_) => bail!(
                "relay did not log its address within {RELAY_START_TIMEOUT:?}:\n{}",
                relay.log_tail()
            ),
        }
        Ok(relay)
    }

    /// Sends SIGTERM, waits for a clean exit, and fails if the relay did not exit with 0.
    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let terminated = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if !terminated.is_ok_and(|status| status.success()) {
            child.kill().context("failed to kill the relay")?;
        }
        let deadline = Instant::now() + RELAY_STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                ensure!(
                    status.success(),
                    "relay exited with {status}:\n{}",
                    self.log_tail()
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                child.kill().context("failed to kill the relay")?;
                child.wait()?;
                bail!("relay did not stop within {RELAY_STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Returns the relay's last 40 log lines.
    fn log_tail(&self) -> String {
        let lines = self
            .log
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Prints numbered steps with the time since the start.
struct Progress {
    started: Instant,
}

impl Progress {
    fn start() -> Self {
        Self {
            started: Instant::now(),
        }
    }

    fn step(&self, message: &str) {
        println!("[e2e {:>6.1}s] {message}", self.elapsed().as_secs_f64());
        let _ = std::io::stdout().flush();
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Returns the cargo target folder: CARGO_TARGET_DIR when set, else `target` in the workspace.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}
