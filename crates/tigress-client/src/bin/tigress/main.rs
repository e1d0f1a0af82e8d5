//! The `tigress` command: a thin layer over the client SDK for sharing credentials from the
//! command line. Every command works on one device home (`--home` or `TIGRESS_HOME`) and can
//! print JSON for scripts (`--json`).

mod dev;
mod files;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tigress_client::{
    DEFAULT_OWNER_CA_NAME, Device, DeviceAddress, DisplayInformation, LinkContent, NewShare,
    NewStatefulShare, ShareId,
};
use tigress_core::duration::parse_duration;
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

    /// PEM file of the CA that an https:// relay's certificate chains to, when it is not a
    /// public CA; kept with the registration by `init`.
    #[arg(long, global = true, env = "TIGRESS_CA_FILE", value_name = "FILE")]
    ca_file: Option<PathBuf>,

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
    /// Manage the owner certificate authority that certifies keys in stateful shares.
    Owner {
        #[command(subcommand)]
        command: OwnerCommand,
    },
    /// Offer a credential to another device; prints the share id.
    Share {
        /// The receiving device's address, UUID.DEVICE.
        #[arg(long, value_name = "ADDRESS")]
        to: DeviceAddress,
        #[command(flatten)]
        offer: OfferArgs,
    },
    /// Create a link share for someone whose address you do not know; prints the link to send
    /// them over any channel.
    Invite {
        #[command(flatten)]
        offer: OfferArgs,
    },
    /// Send pending messages, then fetch, decrypt and store new ones; prints one line per event.
    Sync {
        /// When nothing is new, wait up to this many seconds for an event.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        wait: u64,
    },
    /// Keep the mailboxes open and print events as they happen, until interrupted.
    Listen,
    /// Accept a received share by its id, or claim a link share by its link.
    Accept {
        /// The share's id, as `tigress inbox` lists it, or a tigress://share link.
        share: String,
    },
    /// Decline a received share and tell the sender.
    Decline {
        /// The share's id.
        share_id: ShareId,
    },
    /// Certify the receiver's key of a stateful share that waits for approval.
    Approve {
        /// The share's id.
        share_id: ShareId,
    },
    /// Withdraw a share this device offered, before it completes.
    Cancel {
        /// The share's id.
        share_id: ShareId,
    },
    /// List the shares offered to this device.
    Inbox,
    /// List the shares this device offered.
    Shares,
    /// Write the credential of a provisioned share: a file for a document, a folder with
    /// cert.pem, key.pem and ca.pem for a certificate.
    Export {
        /// The share's id.
        share_id: ShareId,
        /// The file or folder to create; existing files are not overwritten.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Print the safety number of this device and another, to compare on both screens.
    Verify {
        /// The other device's address.
        address: DeviceAddress,
    },
    /// Print relay API requests with real keys, for writing relay clients in other languages.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Accept the new identity key of a device whose key changed, after comparing safety
    /// numbers.
    Trust {
        /// The device's address.
        address: DeviceAddress,
    },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Print a RegisterDeviceRequest for a challenge, as JSON with base64 bytes. The home keeps
    /// the identity, so later commands sign with the same key.
    RegistrationRequest {
        /// The challenge from CreateChallenge, in hex.
        #[arg(long)]
        challenge: String,
        /// One-time prekeys of each kind to include.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
    /// Print new one-time prekeys for an UploadPreKeysRequest, as JSON with base64 bytes.
    PrekeyUpload {
        /// One-time prekeys of each kind.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
}

#[derive(Debug, Subcommand)]
enum OwnerCommand {
    /// Create the owner certificate authority: a P-256 key and a self-signed certificate.
    Init {
        /// The certificate authority's common name.
        #[arg(long, default_value = DEFAULT_OWNER_CA_NAME)]
        name: String,
    },
    /// Write the owner certificate authority's certificate as PEM.
    Export {
        /// The file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// What to offer, for `share` and `invite`.
#[derive(Debug, clap::Args)]
struct OfferArgs {
    /// The credential document to share, at most 60 KiB; not used with --stateful.
    file: Option<PathBuf>,
    /// Title shown to the receiver [default: the file name]; for --stateful, also the subject
    /// common name of the certificate.
    #[arg(long)]
    title: Option<String>,
    /// How long the offer stays valid, such as 90s, 30m, 24h or 7d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h")]
    expires: Duration,
    /// Certify a key of the receiver with the owner certificate authority instead of sending a
    /// document.
    #[arg(long, value_name = "PROFILE")]
    stateful: Option<StatefulProfile>,
    /// With --stateful: the longest validity of the certificate, such as 30d.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30d")]
    valid_for: Duration,
    /// With --stateful: issue the certificate without waiting for `tigress approve`.
    #[arg(long)]
    auto_approve: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatefulProfile {
    /// A PKCS#10 request from the receiver, answered with an X.509 certificate.
    X509,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return report_usage_error(&error),
    };
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
    let explicit_home = cli.home.is_some();
    let home = match cli.home {
        Some(home) => home,
        None => default_home()?,
    };
    match cli.command {
        Command::Init { relay } => {
            // A bad URL leaves no half-made home behind.
            tigress_client::check_relay_url(&relay)?;
            let device = Device::open(&home)?;
            let address = match read_ca(cli.ca_file.as_deref())? {
                Some(ca) => device.register_with_ca(&relay, &ca).await?,
                None => device.register(&relay).await?,
            };
            output.registered(&address, &relay);
        }
        Command::Dev { command } => {
            if !explicit_home {
                anyhow::bail!(
                    "tigress dev needs --home DIR: a folder of its own for the developer identity, not a device home"
                );
            }
            let store = tigress_core::Store::open(&home)?;
            let value = match command {
                DevCommand::RegistrationRequest { challenge, count } => {
                    dev::registration_request(&store, &challenge, count)?
                }
                DevCommand::PrekeyUpload { count } => dev::prekey_upload(&store, count)?,
            };
            println!("{value}");
        }
        Command::Accept { share } if share.starts_with("tigress://") => {
            let ca = read_ca(cli.ca_file.as_deref())?;
            let share_id = Device::open(&home)?
                .accept_link_with_ca(&share, ca.as_deref())
                .await?;
            output.claimed(share_id);
        }
        command => run_on_existing(command, &Device::open_existing(&home)?, output).await?,
    }
    Ok(())
}

/// Runs a command that needs an existing home.
async fn run_on_existing(command: Command, device: &Device, output: &Output) -> anyhow::Result<()> {
    match command {
        Command::Init { .. } | Command::Dev { .. } => {}
        Command::Whoami => output.info(&device.info()?),
        Command::Owner {
            command: OwnerCommand::Init { name },
        } => {
            device.create_owner_ca(&name)?;
            output.owner_created(&name);
        }
        Command::Owner {
            command: OwnerCommand::Export { out },
        } => {
            files::write_new(&out, device.owner_ca_certificate_pem()?.as_bytes(), false)?;
            output.wrote(&out);
        }
        Command::Share { to, offer } => {
            let share_id = share(device, to, offer).await?;
            output.shared(share_id);
        }
        Command::Invite { offer } => {
            let (display, content) = link_content(offer.file.as_deref(), &offer)?;
            let invitation = device.invite(display, content, offer.expires).await?;
            output.invited(&invitation);
        }
        Command::Sync { wait } => output.events(&sync(device, wait).await?),
        Command::Listen => listen(device, output).await?,
        Command::Accept { share } => {
            let share_id: ShareId = share
                .parse()
                .context("expected a share id or a tigress://share link")?;
            let state = device.accept(share_id).await?;
            output.accepted(share_id, state);
        }
        Command::Decline { share_id } => {
            device.decline(share_id).await?;
            output.done("declined", share_id);
        }
        Command::Approve { share_id } => {
            device.approve(share_id).await?;
            output.done("approved", share_id);
        }
        Command::Cancel { share_id } => {
            device.cancel(share_id).await?;
            output.done("cancelled", share_id);
        }
        Command::Inbox => output.shares(&device.received_shares()?),
        Command::Shares => output.shares(&device.sent_shares()?),
        Command::Export { share_id, out } => {
            let written = files::export(&device.credential(share_id)?, &out)?;
            output.exported(share_id, &written);
        }
        Command::Verify { address } => {
            output.safety_number(&address, &device.verify(&address).await?)
        }
        Command::Trust { address } => {
            output.safety_number(&address, &device.trust(&address).await?)
        }
    }
    Ok(())
}

async fn share(device: &Device, to: DeviceAddress, offer: OfferArgs) -> anyhow::Result<ShareId> {
    let (display, content) = link_content(offer.file.as_deref(), &offer)?;
    let share_id = match content {
        LinkContent::Document(credential) => {
            let request = NewShare {
                to,
                credential,
                display,
                expires_in: offer.expires,
            };
            device.share(request).await?
        }
        LinkContent::Certificate {
            valid_for,
            auto_approve,
        } => {
            let request = NewStatefulShare {
                to,
                display,
                valid_for,
                expires_in: offer.expires,
                auto_approve,
            };
            device.share_stateful(request).await?
        }
    };
    Ok(share_id)
}

/// Reads what an offer holds from the arguments: the display information and the document or
/// certificate settings.
fn link_content(
    file: Option<&std::path::Path>,
    offer: &OfferArgs,
) -> anyhow::Result<(DisplayInformation, LinkContent)> {
    if offer.title.as_deref() == Some("") {
        bail!("--title must not be empty");
    }
    match (offer.stateful, file) {
        (Some(StatefulProfile::X509), Some(file)) => {
            bail!(
                "--stateful x509 certifies the receiver's own key and takes no file, got {}",
                file.display()
            )
        }
        (Some(StatefulProfile::X509), None) => {
            let title = offer
                .title
                .clone()
                .unwrap_or_else(|| "tigress key".to_owned());
            let display = DisplayInformation {
                title,
                credential_type: "x509".to_owned(),
                ..DisplayInformation::default()
            };
            Ok((
                display,
                LinkContent::Certificate {
                    valid_for: offer.valid_for,
                    auto_approve: offer.auto_approve,
                },
            ))
        }
        (None, None) => bail!("a credential FILE is required, or --stateful x509"),
        (None, Some(file)) => {
            let credential = files::read_credential(file)?;
            Ok((
                files::display_for(file, offer.title.clone(), &credential),
                LinkContent::Document(credential),
            ))
        }
    }
}

/// Syncs, and when nothing is new waits up to `wait_seconds` for the first event.
async fn sync(device: &Device, wait_seconds: u64) -> anyhow::Result<Vec<tigress_client::Event>> {
    let events = device.sync().await?;
    if !events.is_empty() || wait_seconds == 0 {
        return Ok(events);
    }
    let mut found = Vec::new();
    let wait = device.listen(|event| {
        found.push(event);
        std::ops::ControlFlow::Break(())
    });
    match tokio::time::timeout(Duration::from_secs(wait_seconds), wait).await {
        Ok(result) => result?,
        Err(_elapsed) => {}
    }
    Ok(found)
}

/// Prints events as they happen until SIGINT.
async fn listen(device: &Device, output: &Output) -> anyhow::Result<()> {
    let printing = device.listen(|event| {
        output.event(&event);
        std::ops::ControlFlow::Continue(())
    });
    tokio::select! {
        result = printing => result?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// Reads the CA file, if one was given.
fn read_ca(path: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("failed to read --ca-file {}", path.display()))
    })
    .transpose()
}

/// `~/.tigress`, from the HOME environment variable.
fn default_home() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .context("no --home given and HOME is not set: pass --home DIR or set TIGRESS_HOME")?;
    Ok(PathBuf::from(home).join(".tigress"))
}

/// Prints a usage error as one line with exit status 2, and help or version text as clap
/// formats it.
fn report_usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;

    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let first = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid arguments");
    let message = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("error: {message} (see `tigress --help`)");
    ExitCode::from(2)
}

/// Sends logs to stderr at `warn` unless RUST_LOG sets another level, so that stdout carries
/// only the command's output.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,libsignal_protocol_syft=off"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_arguments_are_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
