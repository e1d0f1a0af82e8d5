//! Sync: send what waits in the outbox, then fetch, decrypt, apply and acknowledge every
//! envelope in the device's mailbox.
//!
//! Each envelope is processed exactly once. Its decryption, its effect on the share and a
//! "processed" marker for its client message id commit in one transaction, and the SDK
//! acknowledges it to the relay only after that commit is on disk. An envelope delivered again after a
//! crash finds its marker and is only acknowledged.

use std::time::SystemTime;

use tigress_core::share::state::{Role, ShareInput, next_state};
use tigress_core::share::{ShareBody, ShareId, ShareMessage, ShareOffer};
use tigress_core::{Ciphertext, CiphertextKind, DeviceAddress, Durability, Transaction};
use tigress_proto::relay::v1::{Envelope, EnvelopeType};

use crate::device::Device;
use crate::error::Result;
use crate::event::Event;
use crate::records::{self, ReceivedShareRecord, SentShareRecord, StoredDisplay};
use crate::shares::{millis, out_of_order, parse_state};

/// The decision on an envelope after trying to process it.
enum Outcome {
    /// Processed or dropped: acknowledge it, and report the event if there is one.
    Done(Option<Event>),
    /// Cannot be processed yet: leave it on the relay.
    Keep(Event),
}

impl Device {
    /// Sends pending outbox messages, then processes every envelope waiting on the relay, and
    /// returns what happened.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotRegistered`](crate::ClientError::NotRegistered), or a relay error.
    /// Envelopes that cannot be decrypted or decoded are not errors: they are dropped and
    /// reported as [`Event::EnvelopeRejected`].
    pub async fn sync(&self) -> Result<Vec<Event>> {
        let mut events = self.flush_outbox().await?;
        let address = self.profile()?.address;
        let relay = self.relay().await?;
        loop {
            let page = relay.fetch(&address).await?;
            let mut acknowledged = Vec::with_capacity(page.envelopes.len());
            let mut kept_on_relay = 0usize;
            for envelope in page.envelopes {
                match self.process(&envelope)? {
                    Outcome::Done(event) => {
                        acknowledged.push(envelope.id);
                        events.extend(event);
                    }
                    Outcome::Keep(event) => {
                        kept_on_relay += 1;
                        events.push(event);
                    }
                }
            }

            if !acknowledged.is_empty() {
                // Everything processed is on disk before the relay may forget it.
                self.store.flush()?;
                relay.acknowledge(&address, acknowledged).await?;
            }
            // Envelopes kept on the relay come back on every fetch, so stop when a page held
            // nothing new.
            if !page.more || kept_on_relay > 0 {
                break;
            }
        }
        Ok(events)
    }

    /// Decrypts and applies one envelope.
    fn process(&self, envelope: &Envelope) -> Result<Outcome> {
        let rejected = |reason: String| {
            tracing::warn!(envelope_id = envelope.id, source = %envelope.source, %reason, "envelope rejected");
            Ok(Outcome::Done(Some(Event::EnvelopeRejected {
                source: envelope.source.clone(),
                reason,
            })))
        };
        let source: DeviceAddress = match envelope.source.parse() {
            Ok(source) => source,
            Err(error) => return rejected(format!("invalid source address: {error}")),
        };
        let kind = match EnvelopeType::try_from(envelope.r#type) {
            Ok(EnvelopeType::PrekeyMessage) => CiphertextKind::PreKey,
            Ok(EnvelopeType::SignalMessage) => CiphertextKind::Whisper,
            _ => return rejected(format!("unknown envelope type {}", envelope.r#type)),
        };

        let processed_key = records::processed_key(&envelope.client_message_id, &envelope.source);
        let txn = self.store.transaction();
        if txn.get(&processed_key)?.is_some() {
            tracing::debug!(envelope_id = envelope.id, "envelope already processed");
            return Ok(Outcome::Done(None));
        }

        let ciphertext = Ciphertext {
            kind,
            bytes: envelope.content.clone(),
        };
        let plaintext = match txn.decrypt(&source, &ciphertext, &mut rand::rng()) {
            Ok(plaintext) => plaintext,
            Err(tigress_core::Error::DuplicateMessage { .. }) => {
                tracing::debug!(envelope_id = envelope.id, "duplicate message");
                return Ok(Outcome::Done(None));
            }
            Err(tigress_core::Error::IdentityChanged { address }) => {
                tracing::warn!(peer = %address, "message from a peer whose identity key changed");
                return Ok(Outcome::Keep(Event::IdentityChanged { address }));
            }
            Err(
                error @ (tigress_core::Error::Store { .. }
                | tigress_core::Error::StoreInProtocol { .. }),
            ) => {
                return Err(error.into());
            }
            Err(error) => return rejected(format!("cannot decrypt: {error}")),
        };

        // From here the session has advanced, so the transaction commits even when the
        // message inside is rejected.
        txn.insert(processed_key, Vec::new());
        let event = match ShareMessage::decode_padded(&plaintext)
            .and_then(|message| apply(&txn, &source, message))
        {
            Ok(event) => Some(event),
            Err(error) => {
                tracing::warn!(envelope_id = envelope.id, %source, %error, "share message rejected");
                Some(Event::EnvelopeRejected {
                    source: envelope.source.clone(),
                    reason: error.to_string(),
                })
            }
        };
        txn.commit(Durability::Buffered)?;
        Ok(Outcome::Done(event))
    }
}

/// Applies a decrypted share message from `source` to the share records in `txn`.
fn apply(
    txn: &Transaction<'_>,
    source: &DeviceAddress,
    message: ShareMessage,
) -> tigress_core::Result<Event> {
    let share_id = message.share_id;
    match message.body {
        ShareBody::Offer(offer) => receive_offer(txn, source, share_id, offer),
        ShareBody::Completed => receive_completion(txn, source, share_id),
    }
}

fn receive_offer(
    txn: &Transaction<'_>,
    source: &DeviceAddress,
    share_id: ShareId,
    offer: ShareOffer,
) -> tigress_core::Result<Event> {
    let key = records::received_share_key(&share_id);
    if txn.get(&key)?.is_some() {
        return Err(tigress_core::Error::ShareOutOfOrder {
            share_id: share_id.to_string(),
            state: "known",
            input: ShareInput::OfferReceived.name(),
        });
    }

    let now = millis(SystemTime::now());
    let record = ReceivedShareRecord {
        share_id: share_id.as_bytes().to_vec(),
        peer: source.to_string(),
        state: tigress_core::share::state::ShareState::Offered
            .name()
            .to_owned(),
        display: Some(StoredDisplay::from(&offer.display)),
        provisioning_information: offer.provisioning_information,
        expires_at_ms: offer.expires_at_ms.unwrap_or(0),
        received_at_ms: now,
        updated_at_ms: now,
    };
    records::write(txn, key, &record);
    tracing::info!(share = %share_id, peer = %source, size = offer.display.size_bytes, "share offer received");
    Ok(Event::OfferReceived {
        share_id,
        from: *source,
        display: offer.display,
    })
}

fn receive_completion(
    txn: &Transaction<'_>,
    source: &DeviceAddress,
    share_id: ShareId,
) -> tigress_core::Result<Event> {
    let key = records::sent_share_key(&share_id);
    let unknown = || tigress_core::Error::InvalidShareMessage {
        reason: format!("completion for unknown share {share_id}"),
    };
    let mut record: SentShareRecord = txn
        .get_decoded(&key, |bytes| {
            <SentShareRecord as prost::Message>::decode(bytes)
        })?
        .ok_or_else(unknown)?;
    if record.peer != source.to_string() {
        // Another device must not be able to complete someone else's share.
        return Err(unknown());
    }
    let state = parse_state(&record.state, &share_id)?;
    let next = next_state(Role::Sender, state, ShareInput::CompletionReceived)
        .map_err(|error| out_of_order(&share_id, error))?;

    record.state = next.name().to_owned();
    record.updated_at_ms = millis(SystemTime::now());
    records::write(txn, key, &record);
    tracing::info!(share = %share_id, peer = %source, "share completed");
    Ok(Event::ShareCompleted {
        share_id,
        peer: *source,
    })
}
