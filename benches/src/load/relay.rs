//! The relay under load: a `tigress-relay` child process on a loopback port, with a data folder
//! and a configuration of its own, whose memory is read from `/proc`.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tempfile::TempDir;

/// How long the relay may take to log its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Limits that let a load run through: no rate limit bites, and every mailbox can hold the
/// whole queued-envelope phase.
const CONFIG: &str = r#"
[limits]
max_queued_envelopes = 1000000
max_queued_bytes = 4294967296

[rate_limits]
send = { burst = 1000000000, per_minute = 1000000000 }
bundle_fetch = { burst = 1000000000, per_minute = 1000000000 }
registration = { burst = 1000000000, per_minute = 1000000000 }
"#;

/// A running relay, killed when dropped.
pub(crate) struct RelayProcess {
    child: Child,
    /// The relay's URL, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    _folder: TempDir,
}

impl RelayProcess {
    /// Starts `binary` on a free loopback port with a new data folder.
    pub(crate) fn start(binary: &Path) -> anyhow::Result<Self> {
        let folder = tempfile::tempdir().context("failed to create the relay's folder")?;
        let config = folder.path().join("relay.toml");
        std::fs::write(&config, CONFIG).context("failed to write the relay's configuration")?;

        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(folder.path().join("data"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn,tigress_relay=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;

        let stderr = child
            .stderr
            .take()
            .context("the relay's stderr is not piped")?;
        let (address_sender, address_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let address = line
                    .contains("relay listening")
                    .then(|| {
                        line.split_whitespace()
                            .find_map(|word| word.strip_prefix("address="))
                    })
                    .flatten();
                match address {
                    Some(address) => drop(address_sender.send(address.to_owned())),
                    None if line.contains("ERROR") || line.contains("WARN") => {
                        eprintln!("relay: {line}")
                    }
                    None => {}
                }
            }
        });

        let Ok(address) = address_receiver.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            bail!("the relay did not log its address within {START_TIMEOUT:?}");
        };
        Ok(Self {
            child,
            url: format!("http://{address}"),
            _folder: folder,
        })
    }

    /// Reads the relay's resident memory now and at its peak, in bytes.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let path = PathBuf::from(format!("/proc/{}/status", self.child.id()));
        let status = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        Ok(Memory {
            rss: status_kib(&status, "VmRSS:")? * 1024,
            peak_rss: status_kib(&status, "VmHWM:")? * 1024,
        })
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's resident memory, in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Memory {
    /// Resident now.
    pub(crate) rss: u64,
    /// The most ever resident.
    pub(crate) peak_rss: u64,
}

/// Reads a `kB` field of `/proc/PID/status`.
fn status_kib(status: &str, field: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no {field} line in /proc status"))
}

/// Returns the `tigress-relay` binary built beside this one.
pub(crate) fn sibling_binary() -> anyhow::Result<PathBuf> {
    let current = std::env::current_exe().context("failed to find this binary's path")?;
    let binary = current.with_file_name("tigress-relay");
    if !binary.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p tigress-relay`, or pass --relay",
            binary.display()
        );
    }
    Ok(binary)
}
