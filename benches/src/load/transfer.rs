//! Whole stateless transfers through the SDK. The sender fetches a new receiver's bundle, runs
//! PQXDH, encrypts and sends the offer. The receiver syncs, decrypts and acknowledges it, then
//! accepts, and the sender syncs the completion acknowledgement.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tigress_benches::stats::Summary;
use tigress_client::{Device, DisplayInformation, Event, NewShare};

use crate::progress::Progress;

/// Syncs a device may need before an expected event arrives.
const MAX_SYNCS: usize = 50;

/// Latencies of whole transfers.
pub(crate) struct TransferResult {
    /// From the start of the share to the offer decrypted and acknowledged on the receiver.
    pub(crate) delivered: Summary,
    /// From the start of the share to the completion acknowledgement processed by the sender.
    pub(crate) completed: Summary,
}

/// Runs `count` transfers of `credential` from one sender to a new receiver each time, so that
/// every transfer fetches a bundle and runs PQXDH.
pub(crate) async fn run(
    url: &str,
    count: u64,
    credential: &[u8],
) -> anyhow::Result<TransferResult> {
    let folder = tempfile::tempdir().context("failed to create the devices' folder")?;
    let sender = Device::open(folder.path().join("sender"))?;
    sender
        .register(url)
        .await
        .context("failed to register the sender")?;

    let progress = Progress::start("transfer", count);
    let done = progress.counter();
    let mut delivered = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut completed = Vec::with_capacity(delivered.capacity());
    for index in 0..count {
        let home = folder.path().join(format!("receiver-{index}"));
        let receiver = Device::open(&home)?;
        let address = receiver
            .register(url)
            .await
            .context("failed to register a receiver")?;

        let (to_offer, to_completion) = transfer(&sender, &receiver, address, credential).await?;
        delivered.push(to_offer);
        completed.push(to_completion);
        done.fetch_add(1, Ordering::Relaxed);

        drop(receiver);
        std::fs::remove_dir_all(&home)
            .with_context(|| format!("failed to remove {}", home.display()))?;
    }
    progress.finish();
    Ok(TransferResult {
        delivered: Summary::of(&mut delivered),
        completed: Summary::of(&mut completed),
    })
}

/// Runs one transfer and returns the time to the delivered offer and to the completion.
async fn transfer(
    sender: &Device,
    receiver: &Device,
    to: tigress_client::DeviceAddress,
    credential: &[u8],
) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let share_id = sender
        .share(NewShare {
            to,
            credential: credential.to_vec(),
            display: DisplayInformation {
                title: "Load test credential".to_owned(),
                file_name: "credential.cbor".to_owned(),
                ..DisplayInformation::default()
            },
            expires_in: Duration::from_secs(3600),
        })
        .await
        .context("share failed")?;

    sync_until(
        receiver,
        "the offer",
        |event| matches!(event, Event::OfferReceived { share_id: id, .. } if *id == share_id),
    )
    .await?;
    let delivered = started.elapsed();

    receiver.accept(share_id).await.context("accept failed")?;
    sync_until(
        sender,
        "the completion",
        |event| matches!(event, Event::ShareCompleted { share_id: id, .. } if *id == share_id),
    )
    .await?;
    Ok((delivered, started.elapsed()))
}

/// Syncs `device` until an event matches `expected`.
async fn sync_until(
    device: &Device,
    what: &str,
    expected: impl Fn(&Event) -> bool,
) -> anyhow::Result<()> {
    for _ in 0..MAX_SYNCS {
        if device
            .sync()
            .await
            .context("sync failed")?
            .iter()
            .any(&expected)
        {
            return Ok(());
        }
    }
    bail!("{what} did not arrive within {MAX_SYNCS} syncs")
}
