//! The processes of the end-to-end run: the `tigress` CLI on one home, the `tigress-relay`
//! server, and the progress lines.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::workspace_root;

/// How long the relay may take to start listening.
const RELAY_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the relay may take to stop after SIGTERM.
const RELAY_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tigress` CLI on one home.
pub(crate) struct Cli {
    pub(crate) binary: PathBuf,
    pub(crate) home: PathBuf,
}

impl Cli {
    /// Runs a command on a new home in `folder`.
    pub(crate) fn new(binary: &Path, home: PathBuf) -> Self {
        Self {
            binary: binary.to_owned(),
            home,
        }
    }

    /// Runs a command with `--json` that must fail, and returns its error message.
    pub(crate) fn run_failing(&self, arguments: &[&str]) -> anyhow::Result<String> {
        let output = self.execute(arguments)?;
        ensure!(
            !output.status.success(),
            "tigress {} succeeded, but must fail",
            arguments.join(" ")
        );
        let stderr: Value = serde_json::from_slice(&output.stderr).with_context(|| {
            format!(
                "tigress {} printed an error that is not one JSON line: {}",
                arguments.join(" "),
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        stderr["error"]
            .as_str()
            .map(str::to_owned)
            .context("error output has no \"error\" field")
    }

    fn execute(&self, arguments: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.binary)
            .arg("--home")
            .arg(&self.home)
            .arg("--json")
            .args(arguments)
            .env_remove("TIGRESS_HOME")
            .output()
            .with_context(|| format!("failed to start {}", self.binary.display()))
    }

    /// Runs a command with `--json` and returns its parsed output.
    pub(crate) fn run(&self, arguments: &[&str]) -> anyhow::Result<Value> {
        let output = self.execute(arguments)?;
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
pub(crate) struct RelayProcess {
    child: Option<Child>,
    pub(crate) url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RelayProcess {
    /// Starts the relay on port 0 and waits for the address it logs.
    pub(crate) fn start(binary: &Path, data_dir: &Path) -> anyhow::Result<Self> {
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
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
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
    pub(crate) fn log_tail(&self) -> String {
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
pub(crate) struct Progress {
    task: &'static str,
    started: Instant,
}

impl Progress {
    /// Starts the clock of `task`, the name each line begins with.
    pub(crate) fn start(task: &'static str) -> Self {
        Self {
            task,
            started: Instant::now(),
        }
    }

    pub(crate) fn step(&self, message: &str) {
        println!(
            "[{} {:>6.1}s] {message}",
            self.task,
            self.elapsed().as_secs_f64()
        );
        let _ = std::io::stdout().flush();
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Returns the cargo target folder: CARGO_TARGET_DIR when set, else `target` in the workspace.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}
