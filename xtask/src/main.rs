//! Project tasks, run as `cargo xtask TASK`:
//!
//! - `e2e`: builds the binaries and runs a real transfer of every sample credential between two
//!   CLI devices through a relay on a loopback port;
//! - `test [ARGS]`: runs the whole test suite (`cargo test --workspace ARGS`), then a relay
//!   client in Python (skipped without python3);
//! - `bench [--quick] [ARGS]`: runs the criterion benchmark of the ratchet hot path in release
//!   mode and prints its table with the ratios to raw libsignal;
//! - `load [ARGS]`: builds the relay and the load generator in release mode and measures the
//!   relay against a no-op baseline (`cargo xtask load --help` lists the arguments);
//! - `fuzz [TARGET] [--time SECONDS]`: builds the libFuzzer targets of `fuzz/` with the stable
//!   toolchain and runs each for the given time (60 s by default), failing on a crash;
//! - `protoc`: prints the path of the vendored `protoc`, for running cargo without xtask
//!   (`export PROTOC=$(cargo xtask protoc)`).
//!
//! Every cargo command started here gets `PROTOC` set to the `protoc` binary vendored by the
//! `protoc-bin-vendored` crate, so a machine needs nothing but the Rust toolchain.

mod bench;
mod e2e;
mod fuzz;
mod python;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &[String]) -> anyhow::Result<()> {
    let Some((task, rest)) = arguments.split_first() else {
        print_usage();
        bail!("no task given");
    };
    match task.as_str() {
        "e2e" => e2e::run(rest),
        "test" => test(rest),
        "bench" => bench::bench(rest),
        "load" => bench::load(rest),
        "fuzz" => fuzz::fuzz(rest),
        "protoc" => {
            println!("{}", protoc()?.display());
            Ok(())
        }
        "help" | "--help" | "-h" => {
            print_usage();
            Ok(())
        }
        other => {
            print_usage();
            bail!("unknown task {other:?}")
        }
    }
}

fn print_usage() {
    eprintln!(
        "usage: cargo xtask TASK\n\n\
         tasks:\n  \
         e2e           transfer every credential in examples/credentials between two CLI devices\n  \
         test [ARGS]   run the whole test suite; ARGS go to `cargo test`\n  \
         bench [--quick] [ARGS]\n                \
         benchmark the ratchet hot path against raw libsignal\n  \
         load [ARGS]   measure the relay under load (ARGS: see `cargo xtask load --help`)\n  \
         fuzz [TARGET] [--time SECONDS]\n                \
         run the libFuzzer targets, 60 s each by default\n  \
         protoc        print the path of the vendored protoc"
    );
}

/// Runs `cargo test --workspace` with any extra arguments, then the Python client test.
fn test(arguments: &[String]) -> anyhow::Result<()> {
    let mut command = cargo()?;
    command.args(["test", "--workspace"]).args(arguments);
    run_command(&mut command)?;
    python::run()
}

/// Returns the path of the vendored protoc binary.
fn protoc() -> anyhow::Result<PathBuf> {
    protoc_bin_vendored::protoc_bin_path()
        .context("no vendored protoc for this platform: install protoc and set PROTOC")
}

/// Builds a `cargo` command in the workspace root with `PROTOC` set, unless the caller set it.
fn cargo() -> anyhow::Result<Command> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    if std::env::var_os("PROTOC").is_none() {
        command.env("PROTOC", protoc()?);
    }
    Ok(command)
}

/// Runs a command to completion and fails unless it succeeds.
fn run_command(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("failed to start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Returns the workspace root, the parent of this crate's folder.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}
