//! Listening: keep a subscription open on the home's mailbox and on each open link share's
//! mailbox, and process every envelope as it arrives.
//!
//! Each envelope is processed and acknowledged as in a sync, so listening and syncing can
//! alternate freely. A subscription that fails is opened again after a pause that doubles from
//! [`FIRST_RETRY`] up to [`MAX_RETRY`]; every retry is logged.

use std::ops::ControlFlow;
use std::time::Duration;

use tigress_core::x509::CertificateAuthority;
use tigress_proto::relay::v1::subscribe_response;
use tokio::sync::mpsc;

use crate::device::Device;
use crate::error::{ClientError, Result};
use crate::event::Event;

/// The first pause before a failed subscription is opened again.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// The longest pause between attempts to open a subscription.
pub const MAX_RETRY: Duration = Duration::from_secs(30);

impl Device {
    /// Syncs, then listens for new envelopes, calling `on_event` for every event until it
    /// returns [`ControlFlow::Break`].
    ///
    /// # Errors
    ///
    /// The errors of [`sync`](Self::sync), and [`ClientError::UnknownToRelay`] when the relay no
    /// longer knows a mailbox. Other relay errors are retried.
    pub async fn listen(
        &self,
        mut on_event: impl FnMut(Event) -> ControlFlow<()> + Send,
    ) -> Result<()> {
        for event in self.sync().await? {
            if on_event(event).is_break() {
                return Ok(());
            }
        }
        let owner_ca = match self.owner_ca() {
            Ok(ca) => Some(ca),
            Err(ClientError::NoOwnerCa { .. }) => None,
            Err(error) => return Err(error),
        };

        let mut mailboxes = Vec::new();
        if self.is_registered()? {
            mailboxes.push(MailboxRef::Home(self));
        }
        for link in self.link_records()?.into_iter().filter(|link| !link.closed) {
            mailboxes.push(MailboxRef::Link(self.open_link(&link)?));
        }

        let (sender, mut receiver) = mpsc::channel::<Result<Event>>(64);
        let watchers = futures_util::future::join_all(mailboxes.iter().map(|mailbox| {
            mailbox
                .device()
                .watch_mailbox(owner_ca.as_ref(), sender.clone())
        }));
        drop(sender);
        let forward = async {
            while let Some(item) = receiver.recv().await {
                if on_event(item?).is_break() {
                    return Ok(());
                }
            }
            Ok(())
        };
        tokio::select! {
            result = forward => result,
            _ = watchers => Ok(()),
        }
    }

    /// Keeps a subscription on this device's mailbox open and sends what it finds to `events`,
    /// until `events` closes or the relay no longer knows the device.
    async fn watch_mailbox(
        &self,
        owner_ca: Option<&CertificateAuthority>,
        events: mpsc::Sender<Result<Event>>,
    ) {
        let mut pause = FIRST_RETRY;
        loop {
            match self.follow_subscription(owner_ca, &events).await {
                Ok(()) if events.is_closed() => return,
                Ok(()) => {
                    tracing::info!(home = %self.home.display(), "subscription ended by the relay; opening it again");
                    pause = FIRST_RETRY;
                }
                Err(
                    error
                    @ (ClientError::UnknownToRelay { .. } | ClientError::NotRegistered { .. }),
                ) => {
                    let _ = events.send(Err(error)).await;
                    return;
                }
                Err(error) => {
                    tracing::warn!(home = %self.home.display(), %error, retry_in_ms = pause.as_millis() as u64, "subscription failed; retrying");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY);
        }
    }

    /// Follows one subscription until it ends.
    async fn follow_subscription(
        &self,
        owner_ca: Option<&CertificateAuthority>,
        events: &mpsc::Sender<Result<Event>>,
    ) -> Result<()> {
        let address = self.profile()?.address;
        let mut stream = self.relay().await?.subscribe(&address).await?;
        tracing::debug!(home = %self.home.display(), "subscription open");
        loop {
            let message = stream.message().await.map_err(|status| {
                ClientError::from_status(
                    "Subscribe",
                    &self
                        .profile()
                        .map(|profile| profile.relay_url)
                        .unwrap_or_default(),
                    status,
                )
            })?;
            let Some(message) = message else {
                return Ok(());
            };
            let Some(subscribe_response::Event::Envelope(envelope)) = message.event else {
                continue;
            };
            let (found, _) = self
                .process_envelopes(std::slice::from_ref(&envelope), owner_ca)
                .await?;
            // Replies go out at once, so that the peer's next step is not held up.
            self.flush_outbox().await?;
            for event in found {
                if events.send(Ok(event)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// A mailbox to watch: the home device itself, or a link share's throwaway device.
enum MailboxRef<'a> {
    Home(&'a Device),
    Link(std::sync::Arc<Device>),
}

impl MailboxRef<'_> {
    fn device(&self) -> &Device {
        match self {
            Self::Home(device) => device,
            Self::Link(device) => device,
        }
    }
}
