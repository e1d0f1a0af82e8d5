//! The relay under load: a `tigress-relay` child process on a loopback port, with a data folder
//! and a configuration of its own, whose memory is read from `/proc` and whose group-commit
//! flushes are read from its metrics endpoint.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
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
    /// The address of the relay's metrics endpoint.
    metrics: String,
    _folder: TempDir,
}

impl RelayProcess {
    /// Starts `binary` on a free loopback port with a new data folder.
    pub(crate) fn start(binary: &Path) -> anyhow::Result<Self> {
        let folder = tempfile::tempdir().context("failed to create the relay's folder")?;
        let config = folder.path().join("relay.toml");
        std::fs::write(&config, CONFIG).context("failed to write the relay's configuration")?;

        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .arg("--data-dir")
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
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix("address="));
                let listener = ["relay listening", "metrics listening"]
                    .into_iter()
                    .find(|message| line.contains(message));
                match (listener, address) {
                    (Some(listener), Some(address)) => {
                        drop(address_sender.send((listener, address.to_owned())))
                    }
                    _ if line.contains("ERROR") || line.contains("WARN") => {
                        eprintln!("relay: {line}")
                    }
                    _ => {}
                }
            }
        });

        let mut url = None;
        let mut metrics = None;
        // The relay logs each of its two listening addresses once.
        for _ in 0..2 {
            let Ok((listener, address)) = address_receiver.recv_timeout(START_TIMEOUT) else {
                let _ = child.kill();
                bail!("the relay did not log its addresses within {START_TIMEOUT:?}");
            };
            match listener {
                "relay listening" => url = Some(format!("http://{address}")),
                _ => metrics = Some(address),
            }
        }
        let (Some(url), Some(metrics)) = (url, metrics) else {
            let _ = child.kill();
            bail!("the relay logged one of its addresses twice and the other never");
        };
        Ok(Self {
            child,
            url,
            metrics,
            _folder: folder,
        })
    }

    /// Reads how many group-commit flushes the relay has made and the time they took.
    pub(crate) fn flushes(&self) -> anyhow::Result<Flushes> {
        let mut stream = TcpStream::connect(&self.metrics).with_context(|| {
            format!("failed to connect to the metrics endpoint {}", self.metrics)
        })?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        )?;
        let mut text = String::new();
        stream
            .read_to_string(&mut text)
            .context("failed to read the relay's metrics")?;
        Ok(Flushes {
            count: metric(&text, "tigress_flush_seconds_count")?,
            seconds: metric(&text, "tigress_flush_seconds_sum")?,
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
    /// The resident memory now.
    pub(crate) rss: u64,
    /// The peak resident memory.
    pub(crate) peak_rss: u64,
}

/// The relay's group-commit flushes so far.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flushes {
    /// Flushes made.
    pub(crate) count: f64,
    /// Time spent in them, in seconds.
    pub(crate) seconds: f64,
}

/// Reads the value of an unlabelled metric from Prometheus text.
fn metric(text: &str, name: &str) -> anyhow::Result<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("the relay's metrics have no {name} line"))
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
