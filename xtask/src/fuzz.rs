//! `cargo xtask fuzz [TARGET] [--time SECONDS]`: builds the libFuzzer targets in `fuzz/` and
//! runs each for a while, failing on the first crash.
//!
//! cargo-fuzz needs a nightly toolchain for its sanitizer flags. This task gets the same
//! coverage-guided libFuzzer build from the stable toolchain: the flags below turn on LLVM's
//! SanitizerCoverage pass, which is all libFuzzer needs, and `--target` keeps them off build
//! scripts and procedural macros. There is no AddressSanitizer, which needs nightly, so a
//! crash here is a panic, an abort, a stack overflow or a timeout. The project's crates deny
//! unsafe code, so only a dependency could cause a memory error that this build misses.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::e2e::process::target_dir;
use crate::{cargo, run_command, workspace_root};

/// The targets, in the order a run without a target name runs them.
const TARGETS: [&str; 6] = [
    "share_message",
    "share_link",
    "key_signing_request",
    "key_import_request",
    "envelope",
    "relay_request",
];

/// Seconds each target runs without `--time`.
const DEFAULT_SECONDS: u64 = 60;

/// The compiler flags of an instrumented build, as cargo-fuzz sets them, less the sanitizer.
const RUSTFLAGS: [&str; 8] = [
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// Builds and runs the fuzz targets named in `arguments`, or all of them.
pub(crate) fn fuzz(arguments: &[String]) -> anyhow::Result<()> {
    let (targets, seconds) = parse(arguments)?;
    let root = workspace_root();
    let work = target_dir().join("fuzz");

    eprintln!("fuzz: writing seed inputs");
    let seeds = work.join("seeds");
    let mut command = cargo()?;
    command
        .args([
            "run",
            "--quiet",
            "-p",
            "tigress-fuzz",
            "--bin",
            "tigress-fuzz-seeds",
            "--",
        ])
        .arg(&seeds)
        .arg(root.join("examples/credentials"));
    run_command(&mut command)?;

    let host = host_triple()?;
    eprintln!("fuzz: building the targets for {host} with coverage instrumentation");
    let build = work.join("build");
    let mut command = cargo()?;
    command
        .args(["build", "--release", "--bins", "--manifest-path"])
        .arg(root.join("fuzz/Cargo.toml"))
        .args(["--target", &host])
        .env("CARGO_TARGET_DIR", &build)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "));
    run_command(&mut command)?;

    let binaries = build.join(&host).join("release");
    for target in targets {
        eprintln!("fuzz: running {target} for {seconds} s");
        run_target(&binaries.join(target), target, seconds, &work, &seeds)?;
    }
    eprintln!("fuzz: no crash found");
    Ok(())
}

/// Reads `[TARGET] [--time SECONDS]`.
fn parse(arguments: &[String]) -> anyhow::Result<(Vec<&'static str>, u64)> {
    let mut targets = Vec::new();
    let mut seconds = DEFAULT_SECONDS;
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        if argument == "--time" {
            let value = rest.next().context("--time needs a number of seconds")?;
            seconds = value
                .parse()
                .ok()
                .filter(|&seconds| seconds > 0)
                .with_context(|| {
                    format!("invalid --time {value:?}: expected whole seconds above 0")
                })?;
        } else if let Some(&target) = TARGETS.iter().find(|&&target| target == argument) {
            targets.push(target);
        } else {
            bail!(
                "unknown fuzz target {argument:?}: expected one of {}",
                TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets.extend(TARGETS);
    }
    Ok((targets, seconds))
}

/// Runs one target over its growing corpus, its seeds and its saved inputs.
fn run_target(
    binary: &Path,
    target: &str,
    seconds: u64,
    work: &Path,
    seeds: &Path,
) -> anyhow::Result<()> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for folder in [&corpus, &artifacts] {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("failed to create {}", folder.display()))?;
    }
    let mut command = Command::new(binary);
    command
        .arg(format!("-max_total_time={seconds}"))
        .arg("-timeout=10")
        .arg("-print_final_stats=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&corpus)
        .arg(seeds.join(target));
    let regressions = workspace_root().join("fuzz/regressions").join(target);
    if regressions.is_dir() {
        command.arg(&regressions);
    }
    let status = command
        .status()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    if !status.success() {
        bail!(
            "{target} crashed ({status}); the input is in {}. Fix the cause, then copy the input \
             into fuzz/regressions/{target}/ so that `cargo xtask test` replays it",
            artifacts.display()
        );
    }
    Ok(())
}

/// Returns the host's target triple, from `rustc -vV`.
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("failed to run rustc -vV")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(arguments: &[&str]) -> Vec<String> {
        arguments
            .iter()
            .map(|&argument| argument.to_owned())
            .collect()
    }

    #[test]
    fn parse_defaults_to_every_target() {
        let (targets, seconds) = parse(&[]).unwrap();
        assert_eq!(targets, TARGETS);
        assert_eq!(seconds, DEFAULT_SECONDS);
    }

    #[test]
    fn parse_reads_target_and_time() {
        let (targets, seconds) = parse(&strings(&["envelope", "--time", "5"])).unwrap();
        assert_eq!(targets, ["envelope"]);
        assert_eq!(seconds, 5);
    }

    #[test]
    fn parse_rejects_bad_arguments() {
        let error = parse(&strings(&["nope"])).unwrap_err().to_string();
        assert!(error.contains("unknown fuzz target \"nope\""), "{error}");
        let error = parse(&strings(&["--time", "0"])).unwrap_err().to_string();
        assert!(error.contains("invalid --time \"0\""), "{error}");
        let error = parse(&strings(&["--time"])).unwrap_err().to_string();
        assert!(error.contains("--time needs"), "{error}");
    }
}
