//! Share operations: offer a credential, accept an offer, export a provisioned credential, and
//! list the shares on both sides.
//!
//! Every message is encrypted and stored in the outbox in the same transaction that moves the
//! share's state, and flushed before it is sent. A message whose send fails stays in the outbox
//! and goes out on the next [`Device::sync`].

use std::time::{SystemTime, UNIX_EPOCH};

use tigress_core::share::state::{Role, ShareInput, ShareState, next_state};
use tigress_core::share::{
    DisplayInformation, MAX_PROVISIONING_INFORMATION_LEN, ShareBody, ShareId, ShareMessage,
    ShareMode, ShareOffer,
};
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Transaction};
use tigress_proto::relay::v1::{EnvelopeType, SendEnvelopeRequest};

use crate::device::Device;
use crate::error::{ClientError, Result};
use crate::records::{
    self, OUTBOX, OutboxPurpose, OutboxRecord, RECEIVED_SHARE, ReceivedShareRecord, SENT_SHARE,
    SentShareRecord, StoredDisplay,
};

/// A credential to offer to another device.
#[derive(Clone)]
pub struct NewShare {
    /// The receiving device.
    pub to: DeviceAddress,
    /// The credential document.
    pub credential: Vec<u8>,
    /// The description the receiver reads before accepting. `size_bytes` is set from the
    /// credential.
    pub display: DisplayInformation,
}

impl std::fmt::Debug for NewShare {
    /// Leaves out the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewShare")
            .field("to", &self.to)
            .field(
                "credential",
                &format_args!("<{} bytes>", self.credential.len()),
            )
            .field("display", &self.display)
            .finish()
    }
}

/// A share this device offered, as listed by [`Device::sent_shares`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentShare {
    /// The share.
    pub share_id: ShareId,
    /// The receiver.
    pub peer: String,
    /// The share's progress.
    pub state: ShareState,
    /// The description of the offered credential.
    pub display: DisplayInformation,
    /// When it was offered, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// A share offered to this device, as listed by [`Device::received_shares`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedShare {
    /// The share.
    pub share_id: ShareId,
    /// The sender.
    pub peer: String,
    /// The share's progress.
    pub state: ShareState,
    /// The sender's description of the credential.
    pub display: DisplayInformation,
    /// When the offer arrived, in milliseconds since the Unix epoch.
    pub received_at_ms: u64,
}

impl Device {
    /// Offers a credential to another device as a stateless share and returns the share's id.
    ///
    /// Fetches the receiver's prekey bundle first when there is no session with it.
    ///
    /// # Errors
    ///
    /// [`ClientError::EmptyCredential`], [`ClientError::CredentialTooLarge`],
    /// [`ClientError::InvalidDisplayInformation`], [`ClientError::UnknownAddress`],
    /// [`ClientError::RelayUnreachable`], or [`ClientError::NotDelivered`] when the share was
    /// stored but the relay did not take it.
    pub async fn share(&self, request: NewShare) -> Result<ShareId> {
        let NewShare {
            to,
            credential,
            mut display,
        } = request;
        check_credential(&credential)?;
        display.size_bytes = credential.len() as u64;
        display.validate().map_err(|error| match error {
            tigress_core::Error::InvalidShareMessage { reason } => {
                ClientError::InvalidDisplayInformation {
                    field: "display information",
                    rule: reason,
                }
            }
            other => other.into(),
        })?;

        let relay = self.relay().await?;
        let now = SystemTime::now();
        let has_session = self
            .store
            .transaction()
            .has_usable_session(&to.to_protocol_address(), now)?;
        let bundle = if has_session {
            None
        } else {
            Some(relay.bundle(&to).await?)
        };

        let (share_id, outbox) = {
            let mut rng = rand::rng();
            let txn = self.store.transaction();
            if let Some(bundle) = &bundle {
                txn.start_session(&to, bundle, now, &mut rng)?;
            }
            let share_id = ShareId::random(&mut rng);
            let offer = ShareOffer {
                mode: ShareMode::Stateless,
                display: display.clone(),
                provisioning_information: credential,
                expires_at_ms: None,
            };
            let message = ShareMessage {
                share_id,
                sent_at_ms: millis(now),
                body: ShareBody::Offer(offer),
            };
            let outbox = encrypt_to_outbox(&txn, &to, &message, OutboxPurpose::Offer, &mut rng)?;

            let record = SentShareRecord {
                share_id: share_id.as_bytes().to_vec(),
                peer: to.to_string(),
                state: ShareState::Offered.name().to_owned(),
                display: Some(StoredDisplay::from(&display)),
                created_at_ms: millis(now),
                updated_at_ms: millis(now),
            };
            records::write(&txn, records::sent_share_key(&share_id), &record);
            txn.commit(Durability::Flushed)?;
            (share_id, outbox)
        };

        let size = display.size_bytes;
        tracing::info!(share = %share_id, peer = %to, size, "share offered");
        self.deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })?;
        Ok(share_id)
    }

    /// Accepts a stateless share: provisions its credential on this device and sends the
    /// completion acknowledgement to the sender.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownShare`], [`tigress_core::Error::ShareOutOfOrder`] when the share
    /// is not waiting to be accepted, or [`ClientError::NotDelivered`] when the
    /// acknowledgement is stored but the relay did not take it.
    pub async fn accept(&self, share_id: ShareId) -> Result<()> {
        self.profile()?;
        let outbox = {
            let mut rng = rand::rng();
            let txn = self.store.transaction();
            let mut record = read_received(&txn, &share_id)?;
            let state = parse_state(&record.state, &share_id)?;
            let next = next_state(Role::Receiver, state, ShareInput::Accept)
                .map_err(|error| out_of_order(&share_id, error))?;
            let peer = parse_peer(&record.peer)?;

            record.state = next.name().to_owned();
            record.updated_at_ms = millis(SystemTime::now());
            records::write(&txn, records::received_share_key(&share_id), &record);
            let message = ShareMessage {
                share_id,
                sent_at_ms: millis(SystemTime::now()),
                body: ShareBody::Completed,
            };
            let outbox =
                encrypt_to_outbox(&txn, &peer, &message, OutboxPurpose::Completion, &mut rng)?;
            txn.commit(Durability::Flushed)?;
            outbox
        };

        tracing::info!(share = %share_id, "share accepted and credential provisioned");
        self.deliver(outbox)
            .await
            .map_err(|source| ClientError::NotDelivered {
                share_id,
                source: Box::new(source),
            })
    }

    /// Returns the credential of a provisioned share.
    ///
    /// # Errors
    ///
    /// [`ClientError::UnknownShare`], or [`ClientError::NotProvisioned`] before
    /// [`accept`](Self::accept).
    pub fn credential(&self, share_id: ShareId) -> Result<Vec<u8>> {
        let record = read_received(&self.store.transaction(), &share_id)?;
        let state = parse_state(&record.state, &share_id)?;
        match state {
            ShareState::Provisioned | ShareState::Completed => Ok(record.provisioning_information),
            ShareState::Offered => Err(ClientError::NotProvisioned {
                share_id,
                state: state.name(),
            }),
        }
    }

    /// Lists every share this device offered, oldest first.
    ///
    /// # Errors
    ///
    /// [`ClientError::Core`] when the store cannot be read or a record is damaged.
    pub fn sent_shares(&self) -> Result<Vec<SentShare>> {
        let mut shares: Vec<SentShare> =
            records::scan_committed::<SentShareRecord>(&self.store, SENT_SHARE)?
                .into_iter()
                .map(|record| {
                    let share_id = ShareId::from_slice(&record.share_id)?;
                    Ok(SentShare {
                        state: parse_state(&record.state, &share_id)?,
                        share_id,
                        peer: record.peer,
                        display: record
                            .display
                            .as_ref()
                            .map(DisplayInformation::from)
                            .unwrap_or_default(),
                        created_at_ms: record.created_at_ms,
                    })
                })
                .collect::<Result<_>>()?;
        shares.sort_by_key(|share| share.created_at_ms);
        Ok(shares)
    }

    /// Lists every share offered to this device, oldest first.
    ///
    /// # Errors
    ///
    /// [`ClientError::Core`] when the store cannot be read or a record is damaged.
    pub fn received_shares(&self) -> Result<Vec<ReceivedShare>> {
        let mut shares: Vec<ReceivedShare> =
            records::scan_committed::<ReceivedShareRecord>(&self.store, RECEIVED_SHARE)?
                .into_iter()
                .map(|record| {
                    let share_id = ShareId::from_slice(&record.share_id)?;
                    Ok(ReceivedShare {
                        state: parse_state(&record.state, &share_id)?,
                        share_id,
                        peer: record.peer,
                        display: record
                            .display
                            .as_ref()
                            .map(DisplayInformation::from)
                            .unwrap_or_default(),
                        received_at_ms: record.received_at_ms,
                    })
                })
                .collect::<Result<_>>()?;
        shares.sort_by_key(|share| share.received_at_ms);
        Ok(shares)
    }

    /// Sends every message still in the outbox and returns one event per message sent.
    pub(crate) async fn flush_outbox(&self) -> Result<Vec<crate::Event>> {
        let pending = records::scan_committed::<OutboxRecord>(&self.store, OUTBOX)?;
        let mut events = Vec::with_capacity(pending.len());
        for record in pending {
            let share_id = ShareId::from_slice(&record.share_id)?;
            let to = parse_peer(&record.destination)?;
            self.deliver(record).await?;
            events.push(crate::Event::MessageDelivered { share_id, to });
        }
        Ok(events)
    }

    /// Sends one outbox message, then removes it and applies what its sending means for the
    /// share.
    async fn deliver(&self, record: OutboxRecord) -> Result<()> {
        let relay = self.relay().await?;
        let request = SendEnvelopeRequest {
            destination: record.destination.clone(),
            client_message_id: record.client_message_id.clone(),
            r#type: record.envelope_type,
            content: record.content.clone(),
        };
        let response = relay.send(request).await?;
        tracing::debug!(
            envelope_id = response.envelope_id,
            duplicate = response.duplicate,
            "message sent"
        );

        let txn = self.store.transaction();
        txn.remove(records::outbox_key(&record.client_message_id));
        if OutboxPurpose::from_name(&record.purpose) == Some(OutboxPurpose::Completion) {
            mark_completion_sent(&txn, &ShareId::from_slice(&record.share_id)?)?;
        }
        // Losing this commit in a crash only means sending again, which the relay ignores.
        txn.commit(Durability::Buffered)?;
        Ok(())
    }
}

/// Moves a received share from provisioned to completed once its acknowledgement is sent.
fn mark_completion_sent(txn: &Transaction<'_>, share_id: &ShareId) -> Result<()> {
    let mut record = read_received(txn, share_id)?;
    let state = parse_state(&record.state, share_id)?;
    match next_state(Role::Receiver, state, ShareInput::CompletionSent) {
        Ok(next) => {
            record.state = next.name().to_owned();
            record.updated_at_ms = millis(SystemTime::now());
            records::write(txn, records::received_share_key(share_id), &record);
        }
        Err(error) => {
            tracing::warn!(share = %share_id, %error, "completion sent for a share in an unexpected state")
        }
    }
    Ok(())
}

/// Pads, encrypts and stores `message` in the outbox of `txn`.
fn encrypt_to_outbox(
    txn: &Transaction<'_>,
    to: &DeviceAddress,
    message: &ShareMessage,
    purpose: OutboxPurpose,
    rng: &mut rand::rngs::ThreadRng,
) -> Result<OutboxRecord> {
    let plaintext = message.encode_padded()?;
    let Ciphertext { kind, bytes } = txn.encrypt(to, &plaintext, SystemTime::now(), rng)?;
    let envelope_type = match kind {
        CiphertextKind::PreKey => EnvelopeType::PrekeyMessage,
        CiphertextKind::Whisper => EnvelopeType::SignalMessage,
    };
    let client_message_id: [u8; 16] = rand::Rng::random(rng);
    let record = OutboxRecord {
        client_message_id: client_message_id.to_vec(),
        destination: to.to_string(),
        envelope_type: envelope_type.into(),
        content: bytes,
        share_id: message.share_id.as_bytes().to_vec(),
        purpose: purpose.name().to_owned(),
    };
    records::write(txn, records::outbox_key(&client_message_id), &record);
    Ok(record)
}

fn check_credential(credential: &[u8]) -> Result<()> {
    if credential.is_empty() {
        return Err(ClientError::EmptyCredential);
    }
    if credential.len() > MAX_PROVISIONING_INFORMATION_LEN {
        return Err(ClientError::CredentialTooLarge {
            size: credential.len(),
            max: MAX_PROVISIONING_INFORMATION_LEN,
        });
    }
    Ok(())
}

pub(crate) fn read_received(
    txn: &Transaction<'_>,
    share_id: &ShareId,
) -> Result<ReceivedShareRecord> {
    records::read(txn, &records::received_share_key(share_id))?.ok_or(ClientError::UnknownShare {
        share_id: *share_id,
    })
}

pub(crate) fn parse_state(name: &str, share_id: &ShareId) -> tigress_core::Result<ShareState> {
    ShareState::from_name(name).ok_or_else(|| tigress_core::Error::CorruptRecord {
        key: format!("share {share_id}"),
        reason: format!("unknown state {name:?}"),
    })
}

pub(crate) fn parse_peer(address: &str) -> Result<DeviceAddress> {
    Ok(address.parse()?)
}

pub(crate) fn out_of_order(
    share_id: &ShareId,
    error: tigress_core::share::state::TransitionError,
) -> tigress_core::Error {
    tigress_core::Error::ShareOutOfOrder {
        share_id: share_id.to_string(),
        state: error.state.name(),
        input: error.input.name(),
    }
}

/// Converts a time to milliseconds since the Unix epoch.
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    })
}
