//! The `tigress` command: a thin layer over the client SDK for sharing credentials from the
//! command line. Every command works on one device home (`--home` or `TIGRESS_HOME`) and can
//! print JSON for scripts (`--json`).

mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tigress_client::{Device, DeviceAddress, DisplayInformation, NewShare, ShareId};
use tracing_subscriber::EnvFilter;

use output::Output;

/// Share digital credentials (car, hotel and home keys, driving licences, passes) with other
/// devices, end to end encrypted, through a tigress relay.
#[derive(Debug, Parser)]
#[command(name = "tigress", version)]
struct Cli {
    /// The device's home folder, which contains its keys, sessions and credentials
    /// [default: ~/.tigress].
    #[arg(long, global = true, env = "TIGRESS_HOME")]
    home: Option<PathBuf>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create this device's keys, register with a relay and print the device's address.
    Init {
        /// The relay's URL, for example http://127.0.0.1:50051.
        #[arg(long)]
        relay: String,
    },
    /// Print this device's address, relay, identity key and safety number half.
    Whoami,
    /// Offer a credential file to another device as a stateless share; prints the share id.
    Share {
        /// The receiving device's address, UUID.DEVICE.
        #[arg(long, value_name = "ADDRESS")]
        to: DeviceAddress,
        /// Title shown to the receiver [default: the file name].
        #[arg(long)]
        title: Option<String>,
        /// The credential document to share (at most 60 KiB).
        file: PathBuf,
    },
    /// Send pending messages, then fetch, decrypt and store new ones; prints one line per event.
    Sync,
    /// Accept a received share: store its credential and tell the sender.
    Accept {
        /// The share's id, as `tigress inbox` lists it.
        share_id: ShareId,
    },
    /// List the shares offered to this device.
    Inbox,
    /// Write the credential of an accepted share to a file.
    Export {
        /// The share's id.
        share_id: ShareId,
        /// The file to create; an existing file is not overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List the shares this device offered.
    Shares,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let output = Output::new(cli.json);
    match run(cli, &output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output.error(&error);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, output: &Output) -> anyhow::Result<()> {
    let home = match cli.home {
        Some(home) => home,
        None => default_home()?,
    };
    if let Command::Init { relay } = &cli.command {
        let address = Device::open(&home)?.register(relay).await?;
        output.registered(&address, relay);
        return Ok(());
    }

    let device = Device::open_existing(&home)?;
    match cli.command {
        Command::Init { .. } => {}
        Command::Whoami => output.info(&device.info()?),
        Command::Share { to, title, file } => {
            let credential = std::fs::read(&file)
                .with_context(|| format!("failed to read credential file {}", file.display()))?;
            let display = display_for(&file, title);
            let share_id = device
                .share(NewShare {
                    to,
                    credential,
                    display,
                })
                .await?;
            output.shared(share_id);
        }
        Command::Sync => output.events(&device.sync().await?),
        Command::Accept { share_id } => {
            device.accept(share_id).await?;
            output.accepted(share_id);
        }
        Command::Inbox => output.inbox(&device.received_shares()?),
        Command::Export { share_id, out } => {
            let credential = device.credential(share_id)?;
            write_new_private_file(&out, &credential)?;
            output.exported(share_id, &out, credential.len());
        }
        Command::Shares => output.sent(&device.sent_shares()?),
    }
    Ok(())
}

/// `~/.tigress`, from the HOME environment variable.
fn default_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .context("no --home given and HOME is not set: pass --home DIR or set TIGRESS_HOME")?;
    Ok(PathBuf::from(home).join(".tigress"))
}

/// Display information for a file: its name, and the title given or the file name.
fn display_for(file: &Path, title: Option<String>) -> DisplayInformation {
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    DisplayInformation {
        title: title.unwrap_or_else(|| file_name.clone()),
        file_name,
        ..DisplayInformation::default()
    }
}

/// Creates `path` for a credential: never over an existing file, and on Unix readable by its
/// owner only.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists: choose another --out or remove it",
            path.display()
        ),
        _ => anyhow::Error::new(error).context(format!("failed to create {}", path.display())),
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

/// Sends logs to stderr at `warn` unless RUST_LOG sets another level, so that stdout carries
/// only the command's output.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}
