//! The Python client test of `cargo xtask test`: a relay API client in another language, with
//! stubs generated from `proto/` at test time.
//!
//! It makes a virtual environment in `target/python-venv` with grpcio and grpcio-tools from PyPI
//! on first use, starts a relay on a free loopback port, and runs `xtask/python/relay_api_test.py`.
//! Without python3 on the machine it is skipped with a message.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::e2e::process::{Progress, RelayProcess, target_dir};
use crate::{run_command, workspace_root};

/// What the test installs from PyPI.
const REQUIREMENTS: [&str; 2] = ["grpcio>=1.60,<2", "grpcio-tools>=1.60,<2"];

pub(crate) fn run() -> anyhow::Result<()> {
    let progress = Progress::start("python");
    if !python_available() {
        println!("xtask: skipping the Python client test: python3 was not found on PATH");
        return Ok(());
    }
    let venv = target_dir().join("python-venv");
    let python = venv.join("bin").join("python");
    if !python.exists() {
        progress.step("creating target/python-venv with grpcio and grpcio-tools from PyPI");
        run_command(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run_command(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(REQUIREMENTS),
        )
        .context("failed to install grpcio and grpcio-tools; the Python client test needs PyPI")?;
    }

    let binaries = target_dir().join("debug");
    let work = tempfile::tempdir().context("failed to create a temporary folder")?;
    progress.step("starting tigress-relay for the Python client test");
    let mut relay =
        RelayProcess::start(&binaries.join("tigress-relay"), &work.path().join("relay"))?;
    let outcome = run_script(&python, &binaries.join("tigress"), &relay.url);
    if outcome.is_err() {
        eprintln!("--- relay log ---\n{}", relay.log_tail());
    }
    let stopped = relay.stop();
    outcome?;
    stopped?;
    progress.step("Python client test passed");
    Ok(())
}

fn run_script(python: &Path, tigress: &Path, relay_url: &str) -> anyhow::Result<()> {
    let address = relay_url.trim_start_matches("http://");
    let status = Command::new(python)
        .arg(workspace_root().join("xtask/python/relay_api_test.py"))
        .env("TIGRESS_RELAY", address)
        .env("TIGRESS_BIN", tigress)
        .env("TIGRESS_PROTO", workspace_root().join("proto"))
        .status()
        .context("failed to start the Python client test")?;
    if !status.success() {
        bail!("the Python client test failed with {status}");
    }
    Ok(())
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}
