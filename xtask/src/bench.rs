//! `cargo xtask bench` and `cargo xtask load`: the benchmarks, built in release mode.
//!
//! `bench` runs the criterion benchmark of the ratchet hot path and then prints one line per
//! operation and payload size with the three stores side by side and the ratio of the core to
//! raw libsignal. `load` builds the relay and the load generator and runs it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, bail};

use crate::e2e::process::target_dir;
use crate::{cargo, run_command, workspace_root};

/// The operations of the ratchet benchmark, in table order.
const OPERATIONS: [&str; 4] = ["establish", "encrypt", "decrypt", "round"];
/// The payload sizes of the ratchet benchmark, in bytes.
const SIZES: [u32; 3] = [256, 4096, 65536];
/// Sizes at which the core must stay within [`TARGET_RATIO`] of raw libsignal.
const TARGET_SIZES: [u32; 2] = [256, 4096];
/// Operations the target applies to.
const TARGET_OPERATIONS: [&str; 2] = ["encrypt", "decrypt"];
/// The largest core-to-raw ratio the target allows.
const TARGET_RATIO: f64 = 1.5;

/// Criterion settings of `--quick`: short warm-up and measurement, fewer samples.
const QUICK: [&str; 6] = [
    "--warm-up-time",
    "1",
    "--measurement-time",
    "2",
    "--sample-size",
    "20",
];

/// Runs the ratchet benchmark and prints its table. `--quick` shortens every measurement; other
/// arguments go to criterion (a name filter, for example).
pub(crate) fn bench(arguments: &[String]) -> anyhow::Result<()> {
    let started = SystemTime::now();
    let mut command = cargo()?;
    command.args(["bench", "-p", "tigress-benches", "--bench", "ratchet", "--"]);
    for argument in arguments {
        if argument == "--quick" {
            command.args(QUICK);
        } else {
            command.arg(argument);
        }
    }
    run_command(&mut command)?;

    let table = Table::read(&target_dir().join("criterion"), started)?;
    println!();
    for line in table.lines() {
        println!("{line}");
    }
    println!("{}", table.verdict());
    Ok(())
}

/// Builds the relay and the load generator in release mode and runs the generator with
/// `arguments`, carrying a sample credential unless `--credential` is given.
pub(crate) fn load(arguments: &[String]) -> anyhow::Result<()> {
    let mut build = cargo()?;
    build.args([
        "build",
        "--release",
        "-p",
        "tigress-relay",
        "-p",
        "tigress-benches",
        "--bins",
    ]);
    run_command(&mut build)?;

    let binary = target_dir().join("release").join("tigress-load");
    let mut command = std::process::Command::new(&binary);
    command.args(arguments);
    if !arguments
        .iter()
        .any(|argument| argument.starts_with("--credential"))
    {
        command
            .arg("--credential")
            .arg(workspace_root().join("examples/credentials/mdl-device-response.cbor"));
    }
    run_command(&mut command)
}

/// One benchmark result: the median time of one operation, in microseconds.
type Micros = f64;

/// The results of one run, by operation, store and size.
struct Table {
    rows: Vec<Row>,
    flush: Micros,
}

struct Row {
    operation: &'static str,
    size: u32,
    raw: Micros,
    core: Micros,
    share: Micros,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.core / self.raw
    }
}

impl Table {
    /// Reads every result of the run that started at `since` from criterion's folder.
    fn read(criterion: &Path, since: SystemTime) -> anyhow::Result<Self> {
        let mut rows = Vec::new();
        for operation in OPERATIONS {
            for size in SIZES {
                let result = |store: &str| {
                    median_micros(
                        &criterion.join(operation).join(store).join(size.to_string()),
                        since,
                    )
                };
                rows.push(Row {
                    operation,
                    size,
                    raw: result("raw")?,
                    core: result("core")?,
                    share: result("share")?,
                });
            }
        }
        let flush = median_micros(&criterion.join("flush/core/256"), since)?;
        Ok(Self { rows, flush })
    }

    fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                format!(
                    "bench: op={} size={} raw_us={:.1} core_us={:.1} share_us={:.1} ratio={:.2} share_ratio={:.2}",
                    row.operation,
                    row.size,
                    row.raw,
                    row.core,
                    row.share,
                    row.ratio(),
                    row.share / row.raw,
                )
            })
            .collect();
        lines.push(format!(
            "bench: op=flush size=256 core_us={:.1}",
            self.flush
        ));
        lines
    }

    /// Says whether the core met its target against raw libsignal.
    fn verdict(&self) -> String {
        let misses: Vec<String> = self
            .rows
            .iter()
            .filter(|row| {
                TARGET_OPERATIONS.contains(&row.operation) && TARGET_SIZES.contains(&row.size)
            })
            .filter(|row| row.ratio() > TARGET_RATIO)
            .map(|row| format!("{} at {} B ({:.2}x)", row.operation, row.size, row.ratio()))
            .collect();
        if misses.is_empty() {
            format!(
                "bench: target met: core encrypt and decrypt within {TARGET_RATIO}x of raw libsignal at 256 B and 4 KiB"
            )
        } else {
            format!(
                "bench: target missed (over {TARGET_RATIO}x): {}",
                misses.join(", ")
            )
        }
    }
}

/// Reads the median of one benchmark from criterion's `new/estimates.json` in `folder`, which
/// must have been written after `since`.
fn median_micros(folder: &Path, since: SystemTime) -> anyhow::Result<Micros> {
    let path: PathBuf = folder.join("new").join("estimates.json");
    let modified = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .with_context(|| format!("no result at {}: did the benchmark run?", path.display()))?;
    if modified < since {
        bail!(
            "{} is from an earlier run: run the whole benchmark, without a filter",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let estimates: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let nanos = estimates["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median.point_estimate", path.display()))?;
    Ok(nanos / 1000.0)
}
